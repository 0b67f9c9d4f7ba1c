"""The one orchestrator: event -> decision -> permission -> status comment -> sandboxed agent ->
policy -> push and PR -> status comment, job summary and outputs.

Every exit path (skipped, refused, fixed, no_change, budget_exhausted, blocked, error) leaves a
clear status on the issue, in the log and in the outputs, and leaves report.json next to the
run's diff.patch and trajectory.jsonl.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astraforge import __version__, credentials, events, policy, render, telemetry
from astraforge import config as config_mod
from astraforge.agent.outcome import Outcome, Status, sha256
from astraforge.agent.run import DIFF, TRAJECTORY, run_agent
from astraforge.ci import detect
from astraforge.ci.log import CI, current
from astraforge.errors import AstraForgeError, PolicyError, UsageError
from astraforge.forges import open_forge
from astraforge.forges.base import Forge
from astraforge.git import head_commit
from astraforge.publish import Links, Published, post_status, publish, status_text
from astraforge.redact import Redactor, secrets_from_env
from astraforge.task import Task
from astraforge.trigger import decide

REPORT = "report.json"
SUMMARY = "summary.md"


@dataclass
class Options:
    repo: Path
    out: Path
    event: Path | None = None
    forge: str | None = None  # github | gitlab | local; default from the CI
    forge_dir: Path | None = None
    config_file: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted config fields
    dry_run: bool | None = None


@dataclass
class Result:
    conclusion: str
    reason: str
    task: Task | None = None
    outcome: Outcome | None = None
    published: Published | None = None
    checks: list[policy.Check] = field(default_factory=list)
    error: AstraForgeError | None = None
    report: Path | None = None

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return self.error.exit_code
        return PolicyError.exit_code if self.conclusion == "blocked" else 0


def run(
    options: Options, env: Mapping[str, str] | None = None, *, publish_from: Path | None = None
) -> Result:
    """The whole flow; with ``publish_from``, only verify and publish a dry run's artifacts."""
    env = dict(os.environ if env is None else env)
    options.out.mkdir(parents=True, exist_ok=True)
    redact = Redactor(secrets_from_env(env))
    ci = current(env, redact, options.out)
    for secret in secrets_from_env(env):
        ci.mask(secret)
    ci_env = detect.detect(env)
    links = Links(run=ci_env.run_url, trajectory=_trajectory_link(ci_env, options.out))
    state = _State(options, env, ci, links)
    try:
        if publish_from is not None:
            state.go_publish(publish_from)
        else:
            state.go()
    except AstraForgeError as exc:
        state.fail(exc)
    except Exception as exc:
        state.fail(AstraForgeError(f"internal error: {exc!r}", "report it with the run log"))
        raise
    finally:
        state.finish()
    return state.result


class _State:
    def __init__(self, options: Options, env: dict[str, str], ci: CI, links: Links) -> None:
        self.options, self.env, self.ci, self.links = options, env, ci, links
        self.result = Result("error", "the run did not start")
        self.forge: Forge | None = None
        self.dry_run = False

    def say(self, line: str) -> None:
        self.ci.info(line)

    def go(self) -> None:
        o = self.options
        with self.ci.group("AstraForge: event and configuration"):
            cfg = config_mod.load(o.repo, file=o.config_file, env=self.env, cli=o.overrides)
            self.dry_run = cfg.dry_run if o.dry_run is None else o.dry_run
            rules = config_mod.load_policy(o.repo, cfg, self.env)
            for warning in cfg.warnings:
                self.ci.annotate("warning", warning)
            task = self._event_task(cfg)
            self.result.task = task
            telemetry.tag_task(task.fingerprint)
            self.say(f"AstraForge {__version__}: {task.source.value} {task.event}: {task.title}")
            decision = decide(task, cfg.trigger, rules.triggers)
            self.say(f"decision: {'run' if decision.run else 'skip'} ({decision.reason})")
            if not decision.run:
                self.conclude("skipped", decision.reason)
                return
        with self.ci.group("AstraForge: permission"):
            self.forge = self._open_forge(task)
            auth = policy.authorize(task, rules.triggers, self.forge)
            self.say(f"requester: {auth.reason}")
            if not auth.allowed:
                self.conclude("refused", auth.reason)
                self.status("refused", reason=auth.reason)
                return
            self.status("working")
        with self.ci.group("AstraForge: agent in the sandbox"):
            agent = run_agent(task, cfg, o.repo, o.out, env=self.env, rules=rules)
            outcome = self.result.outcome = agent.outcome
            self.say(f"agent: {outcome.status.value} ({outcome.reason})")
            if outcome.summary:
                self.ci.untrusted(f"summary: {outcome.summary}")
            for refusal in outcome.refusals:
                self.ci.annotate("warning", f"refused by policy: {refusal}")
            if outcome.skipped:
                self.ci.annotate(
                    "warning",
                    f"left out of the change ({len(outcome.skipped)}): "
                    + ", ".join(repr(p) for p in outcome.skipped[:10]),
                )
            if agent.error is not None:
                raise agent.error
        if outcome.status is not Status.FIXED:
            reason = (
                outcome.reason
                if outcome.status is not Status.NO_CHANGE
                else (outcome.summary or outcome.reason)
            )
            self.conclude(outcome.status.value, reason)
            self.status(outcome.status.value, reason=reason, outcome=outcome)
            return
        patch = (o.out / DIFF).read_text(encoding="utf-8", errors="surrogateescape")
        self.check_and_publish(task, outcome, patch, cfg, rules)

    def go_publish(self, artifacts: Path) -> None:
        """The publish half of a hardened workflow: verify a dry run's patch, then publish."""
        o = self.options
        with self.ci.group("AstraForge: the agent job's artifacts"):
            try:
                report = json.loads((artifacts / REPORT).read_text())
                patch = (artifacts / DIFF).read_text(encoding="utf-8", errors="surrogateescape")
            except (OSError, ValueError) as exc:
                raise UsageError(
                    f"{artifacts} does not hold a run's report.json and diff.patch ({exc})",
                    "download the agent job's artifact into that directory",
                ) from None
            if report.get("conclusion") != "fixed" or not report.get("dry_run"):
                self.conclude(
                    str(report.get("conclusion")), "the agent job made nothing to publish"
                )
                self.say(f"nothing to publish: {report.get('reason')}")
                return
            cfg = config_mod.load(o.repo, file=o.config_file, env=self.env, cli=o.overrides)
            rules = config_mod.load_policy(o.repo, cfg, self.env)
            for warning in cfg.warnings:
                self.ci.annotate("warning", warning)
            # Who asked comes from the event this job was triggered by, never from the agent
            # job's report: that job ran model output.
            task = self._event_task(cfg)
            reported = Task.model_validate(report["task"])
            if reported.fingerprint != task.fingerprint:
                raise UsageError(
                    f"the artifacts are for {reported.fingerprint}, but this job was triggered "
                    f"by {task.fingerprint}",
                    "publish the artifacts of the agent job of the same workflow run",
                )
            outcome = Outcome.model_validate(report["outcome"])
            self.result.task, self.result.outcome = task, outcome
            if outcome.diff_sha256 != sha256(patch):
                raise UsageError(
                    "diff.patch does not match the report's diff hash",
                    "publish the artifacts of one run, unmodified",
                )
            self.say(f"{task.source.value} {task.event}: {task.title}")
            (o.out / DIFF).write_text(patch, encoding="utf-8", errors="surrogateescape")
        with self.ci.group("AstraForge: permission"):
            self.forge = self._open_forge(task)
            auth = policy.authorize(task, rules.triggers, self.forge)
            self.say(f"requester: {auth.reason}")
            if not auth.allowed:
                self.conclude("refused", auth.reason)
                self.status("refused", reason=auth.reason)
                return
        self.check_and_publish(task, outcome, patch, cfg, rules)

    def check_and_publish(
        self, task: Task, outcome: Outcome, patch: str, cfg: config_mod.Config, rules: policy.Policy
    ) -> None:
        o = self.options
        with self.ci.group("AstraForge: policy checks"):
            from astraforge.publish import commit_message, pr_body

            body, _ = pr_body(task, outcome, self.links)
            checks = policy.check_patch(
                patch,
                rules,
                commit_message=commit_message(task, outcome, self.links),
                pr_body=body,
                known_secrets=secrets_from_env(self.env),
                extra_protected=[cfg.policy] if cfg.policy else [],
            )
            self.result.checks = checks
            for check in checks:
                self.say(f"{'pass ' if check.passed else 'BLOCK'}  {check.name}: {check.detail}")
            failed = policy.blocked(checks)
            if failed:
                reason = "blocked by " + ", ".join(c.rule for c in failed)
                self.ci.annotate("error", f"{reason}: {failed[0].detail}")
                self.conclude("blocked", reason)
                self.status("blocked", reason=reason, outcome=outcome)
                return
        with self.ci.group("AstraForge: publish"):
            if self.dry_run:
                self.conclude("fixed", "dry run: the change was not pushed")
                self.say("dry run: nothing is written to the forge")
                return
            assert self.forge is not None
            start = head_commit(o.repo)
            if start is None:
                raise UsageError(f"{o.repo} is not a git checkout", "run in the repository")
            published = publish(
                self.forge,
                o.repo,
                task,
                outcome,
                patch,
                base_commit=start,
                config=cfg.publish,
                links=self.links,
                policy=[c.as_dict() for c in checks],
                credentials=credentials.for_run(self.env),
            )
            self.result.published = published
            for write in published.writes or ["nothing changed since the last run: no write"]:
                self.say(write)
            url = published.pr.url if published.pr else ""
            self.conclude("fixed", f"pull request {url}")
            self.status("fixed", outcome=outcome)

    def _event_task(self, cfg: config_mod.Config) -> Task:
        """The Task of the triggering event: the --event file, or the CI job's own."""
        syntax = cfg.trigger.syntax()
        if self.options.event is not None:
            return events.parse_file(self.options.event, syntax=syntax)
        return detect.task_from_ci(self.env, syntax)

    def _open_forge(self, task: Task) -> Forge | None:
        kind = self.options.forge or detect.detect(self.env).name
        if kind not in ("github", "gitlab", "local"):
            raise UsageError("no forge to talk to", "pass --forge github|gitlab|local")
        repository = task.repository.full_name if task.repository else None
        return open_forge(
            kind, repository=repository, env=self.env, forge_dir=self.options.forge_dir
        )

    def status(
        self, state: str, *, reason: str | None = None, outcome: Outcome | None = None
    ) -> None:
        task = self.result.task
        if self.forge is None or task is None or task.number is None:
            return
        text = status_text(
            state,
            task=task,
            links=self.links,
            outcome=outcome,
            published=self.result.published,
            reason=reason,
        )
        if self.dry_run:
            self.say(f"dry run: would set the status comment on #{task.number}")
            return
        try:
            if post_status(self.forge, task, text):
                self.say(f"status comment on #{task.number}: {state}")
        except AstraForgeError as exc:
            self.ci.annotate("warning", f"could not update the status comment: {exc.one_line()}")

    def conclude(self, conclusion: str, reason: str) -> None:
        self.result.conclusion, self.result.reason = conclusion, reason

    def fail(self, error: AstraForgeError) -> None:
        self.result.error = error
        self.conclude("error", error.one_line())
        self.ci.annotate("error", error.one_line())
        self.status("error", reason=error.message, outcome=self.result.outcome)

    def finish(self) -> None:
        r, out = self.result, self.options.out
        pr = r.published.pr if r.published else None
        report = {
            "version": 1,
            "conclusion": r.conclusion,
            "reason": r.reason,
            "dry_run": self.dry_run,
            "task": r.task.public_dict() if r.task else None,
            "outcome": r.outcome.model_dump(mode="json") if r.outcome else None,
            "checks": [c.as_dict() for c in r.checks],
            "branch": r.published.branch if r.published else None,
            "pr_url": pr.url if pr else None,
            "pr_number": pr.number if pr else None,
            "writes": r.published.writes if r.published else [],
            "run_url": self.links.run,
        }
        r.report = out / REPORT
        r.report.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        if not (out / DIFF).exists():
            (out / DIFF).write_text("")
        outputs = {
            "conclusion": r.conclusion,
            "pr_url": pr.url if pr else "",
            "pr_number": str(pr.number) if pr else "",
            "branch": r.published.branch if r.published else "",
            "trajectory_file": str(out / TRAJECTORY) if (out / TRAJECTORY).exists() else "",
        }
        for key, value in outputs.items():
            self.ci.set_output(key, value)
        summary = render.render(
            "templates",
            "job_summary.md.j2",
            result=r,
            report=report,
            links=self.links,
            out=str(out),
        )
        (out / SUMMARY).write_text(self.ci.redact(summary))
        self.ci.summary(summary)
        self.say(f"conclusion: {r.conclusion} ({r.reason}); artifacts in {out}")


def _trajectory_link(ci_env: detect.CIEnvironment, out: Path) -> str | None:
    if ci_env.name == "github" and ci_env.run_url:
        return f"{ci_env.run_url}#artifacts"
    if ci_env.name == "gitlab" and ci_env.run_url:
        return f"{ci_env.run_url}/artifacts/browse"
    return str(out / TRAJECTORY)
