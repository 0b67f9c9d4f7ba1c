"""The one orchestrator. A run is a sequence of small named steps:

    load -> event -> decide -> authorize -> announce -> agent -> check -> publish -> report

Each step is a function of explicit inputs that returns its result, or raises :class:`Stop`
to end the run early with a :class:`~astraforge.conclusion.Conclusion`. :func:`run` chains
them; the hardened publish job (:func:`run` with ``publish_from``) reads a dry run's
artifacts instead of running the agent, then goes through the same steps. Every exit path
leaves a status comment, a line in the log, the outputs, and the artifacts (see
:mod:`astraforge.report`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astraforge import __version__, credentials, events, policy, report, telemetry
from astraforge import config as config_mod
from astraforge.agent.outcome import Outcome, Status, sha256
from astraforge.agent.run import DIFF, run_agent
from astraforge.ci import detect
from astraforge.ci.log import CI, current
from astraforge.conclusion import Conclusion
from astraforge.diff import parse
from astraforge.errors import AstraForgeError, UsageError
from astraforge.forges import open_forge
from astraforge.forges.base import Forge
from astraforge.git import head_commit
from astraforge.publish import Links, Published, Texts, post_status, publish, status_text, texts
from astraforge.redact import Redactor, secrets_from_env
from astraforge.task import Task
from astraforge.trigger import decide

__all__ = ["Options", "Result", "run"]


@dataclass
class Options:
    """What a run is asked to do (the `astraforge run` flags)."""

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
    """How a run ended, and what it made: the content of report.json."""

    conclusion: Conclusion = Conclusion.ERROR
    reason: str = "the run did not start"
    task: Task | None = None
    outcome: Outcome | None = None
    published: Published | None = None
    checks: list[policy.Check] = field(default_factory=list)
    error: AstraForgeError | None = None
    report: Path | None = None
    dry_run: bool = False

    @property
    def exit_code(self) -> int:
        return self.conclusion.exit_code(self.error)


class Stop(Exception):
    """A step ends the run early with a conclusion."""

    def __init__(self, conclusion: Conclusion, reason: str) -> None:
        super().__init__(reason)
        self.conclusion, self.reason = conclusion, reason


@dataclass(frozen=True)
class Run:
    """What every step may read: the options, the environment and the CI log, made once."""

    options: Options
    env: Mapping[str, str]
    ci: CI
    links: Links
    secrets: list[str]

    def say(self, line: str) -> None:
        self.ci.info(line)


@dataclass(frozen=True)
class Loaded:
    """The configuration and the policy, from the trusted side and the base commit."""

    config: config_mod.Config
    rules: policy.Policy
    dry_run: bool


# -- the steps --------------------------------------------------------------------------------


def start(options: Options, env: Mapping[str, str] | None) -> Run:
    """The CI log, with every secret masked, and the links a report points at."""
    env = dict(os.environ if env is None else env)
    options.out.mkdir(parents=True, exist_ok=True)
    secrets = secrets_from_env(env)
    ci = current(env, Redactor(secrets), options.out)
    for secret in secrets:
        ci.mask(secret)
    ci_env = detect.detect(env)
    links = Links(run=ci_env.run_url, trajectory=report.trajectory_link(ci_env, options.out))
    return Run(options, env, ci, links, secrets)


def load(run: Run) -> Loaded:
    """The configuration and policy; each ignored setting of the repository is a warning."""
    o = run.options
    cfg = config_mod.load(o.repo, file=o.config_file, env=run.env, cli=o.overrides)
    rules = config_mod.load_policy(o.repo, cfg, run.env)
    for warning in cfg.warnings:
        run.ci.annotate("warning", warning)
    return Loaded(cfg, rules, cfg.dry_run if o.dry_run is None else o.dry_run)


def event(run: Run, loaded: Loaded) -> Task:
    """The Task of the triggering event: the --event file, or the CI job's own."""
    syntax = loaded.config.trigger.syntax()
    if run.options.event is not None:
        task = events.parse_file(run.options.event, syntax=syntax)
    else:
        task = detect.task_from_ci(run.env, syntax)
    telemetry.tag_task(task.fingerprint)
    run.say(f"AstraForge {__version__}: {task.source.value} {task.event}: {task.title}")
    return task


def decide_step(run: Run, loaded: Loaded, task: Task) -> None:
    """Whether the event asks for a run; a skip ends the run."""
    decision = decide(task, loaded.config.trigger, loaded.rules.triggers)
    run.say(f"decision: {'run' if decision.run else 'skip'} ({decision.reason})")
    if not decision.run:
        raise Stop(Conclusion.SKIPPED, decision.reason)


def forge_for(run: Run, task: Task) -> Forge:
    """The forge to ask and publish to: --forge, or the CI's own."""
    kind = run.options.forge or detect.detect(run.env).name
    if kind not in ("github", "gitlab", "local"):
        raise UsageError("no forge to talk to", "pass --forge github|gitlab|local")
    repository = task.repository.full_name if task.repository else None
    return open_forge(kind, repository=repository, env=run.env, forge_dir=run.options.forge_dir)


def authorize(run: Run, loaded: Loaded, task: Task, forge: Forge) -> None:
    """Whether the requester may start a run; the forge tells their permission."""
    triggers = loaded.rules.triggers
    login = policy.permission_needed(task, triggers)
    permission = forge.permission(login) if login else None
    auth = policy.authorize(task, triggers, permission)
    run.say(f"requester: {auth.reason}")
    if not auth.allowed:
        raise Stop(Conclusion.REFUSED, auth.reason)


def announce(run: Run, loaded: Loaded, task: Task, forge: Forge) -> None:
    """The status comment says a run is under way."""
    status(run, loaded, task, forge, "working", Result(task=task))


def agent(run: Run, loaded: Loaded, task: Task) -> tuple[Outcome, str]:
    """The agent in the sandbox; a run without a change ends here."""
    done = run_agent(
        task, loaded.config, run.options.repo, run.options.out, env=run.env, rules=loaded.rules
    )
    outcome = done.outcome
    run.say(f"agent: {outcome.status.value} ({outcome.reason})")
    if outcome.summary:
        run.ci.untrusted(f"summary: {outcome.summary}")
    for refusal in outcome.refusals:
        run.ci.annotate("warning", f"refused by policy: {refusal}")
    if outcome.skipped:
        run.ci.annotate(
            "warning",
            f"left out of the change ({len(outcome.skipped)}): "
            + ", ".join(repr(p) for p in outcome.skipped[:10]),
        )
    if done.error is not None:
        raise done.error
    return outcome, (run.options.out / DIFF).read_text(encoding="utf-8", errors="surrogateescape")


def outcome_stop(outcome: Outcome) -> Stop | None:
    """The early end of a run whose agent made no change to publish."""
    if outcome.status is Status.FIXED:
        return None
    reason = outcome.reason
    if outcome.status is Status.NO_CHANGE:
        reason = outcome.summary or outcome.reason
    return Stop(Conclusion(outcome.status.value), reason)


def check(
    run: Run, loaded: Loaded, task: Task, outcome: Outcome, patch: str
) -> tuple[list[policy.Check], Texts]:
    """The policy's checks of the change, and the texts to publish, rendered once: the body
    states the checks (the secret scan as passed, which it must be for anything to be
    published), and that same body is scanned."""
    files = parse(patch)
    extra = [loaded.config.policy] if loaded.config.policy else []
    checks = policy.check_diff(files, loaded.rules, extra_protected=extra)
    passed = policy.Check("secrets", True, policy.checks.NO_SECRET)
    written = texts(task, outcome, run.links, policy=[c.as_dict() for c in [*checks, passed]])
    scanned = {"the commit message": written.message, "the PR body": written.body}
    checks.append(policy.check_secrets(files, loaded.rules, scanned, run.secrets))
    for item in checks:
        run.say(item.line())
    failed = policy.blocked(checks)
    if failed:
        reason = "blocked by " + ", ".join(c.rule for c in failed)
        run.ci.annotate("error", f"{reason}: {failed[0].detail}")
        raise Stop(Conclusion.BLOCKED, reason)
    return checks, written


def publish_step(
    run: Run, loaded: Loaded, task: Task, written: Texts, patch: str, forge: Forge
) -> Published:
    """The branch and the one PR/MR; a dry run writes nothing."""
    if loaded.dry_run:
        run.say("dry run: nothing is written to the forge")
        raise Stop(Conclusion.FIXED, "dry run: the change was not pushed")
    base = head_commit(run.options.repo)
    if base is None:
        raise UsageError(f"{run.options.repo} is not a git checkout", "run in the repository")
    published = publish(
        forge,
        run.options.repo,
        task,
        written,
        patch,
        base_commit=base,
        config=loaded.config.publish,
        credentials=credentials.for_run(run.env),
    )
    for write in published.writes or ["nothing changed since the last run: no write"]:
        run.say(write)
    return published


def artifacts(run: Run, loaded: Loaded, task: Task, folder: Path) -> tuple[Outcome, str]:
    """The hardened publish job's input: a dry run's report and patch, checked against each
    other and against the event this job was triggered by."""
    try:
        earlier = json.loads((folder / report.REPORT).read_text())
        patch = (folder / DIFF).read_text(encoding="utf-8", errors="surrogateescape")
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"{folder} does not hold a run's report.json and diff.patch ({exc})",
            "download the agent job's artifact into that directory",
        ) from None
    if earlier.get("conclusion") != Conclusion.FIXED or not earlier.get("dry_run"):
        run.say(f"nothing to publish: {earlier.get('reason')}")
        raise Stop(Conclusion(earlier.get("conclusion") or "error"), "the agent job made nothing")
    # Who asked comes from this job's own event, never from the agent job's report.
    reported = Task.model_validate(earlier["task"])
    if reported.fingerprint != task.fingerprint:
        raise UsageError(
            f"the artifacts are for {reported.fingerprint}, but this job was triggered by "
            f"{task.fingerprint}",
            "publish the artifacts of the agent job of the same workflow run",
        )
    outcome = Outcome.model_validate(earlier["outcome"])
    if outcome.diff_sha256 != sha256(patch):
        raise UsageError(
            "diff.patch does not match the report's diff hash",
            "publish the artifacts of one run, unmodified",
        )
    (run.options.out / DIFF).write_text(patch, encoding="utf-8", errors="surrogateescape")
    return outcome, patch


def status(
    run: Run, loaded: Loaded | None, task: Task, forge: Forge | None, state: str, result: Result
) -> None:
    """Create or edit the one status comment on the task's issue."""
    if forge is None or task.number is None:
        return
    text = status_text(
        state,
        task=task,
        links=run.links,
        outcome=result.outcome,
        published=result.published,
        reason=result.reason,
    )
    if loaded is None or loaded.dry_run:
        run.say(f"dry run: would set the status comment on #{task.number}")
        return
    try:
        if post_status(forge, task, text):
            run.say(f"status comment on #{task.number}: {state}")
    except AstraForgeError as exc:
        run.ci.annotate("warning", f"could not update the status comment: {exc.one_line()}")


# -- the run ----------------------------------------------------------------------------------


def run(
    options: Options, env: Mapping[str, str] | None = None, *, publish_from: Path | None = None
) -> Result:
    """The whole flow; with ``publish_from``, only check and publish a dry run's artifacts."""
    current_run = start(options, env)
    result = Result()
    loaded: Loaded | None = None
    forge: Forge | None = None
    try:
        with current_run.ci.group("AstraForge: event and configuration"):
            loaded = load(current_run)
            result.dry_run = loaded.dry_run
            task = result.task = event(current_run, loaded)
            if publish_from is None:
                decide_step(current_run, loaded, task)
        with current_run.ci.group("AstraForge: permission"):
            forge = forge_for(current_run, task)
            authorize(current_run, loaded, task, forge)
        if publish_from is None:
            announce(current_run, loaded, task, forge)
            with current_run.ci.group("AstraForge: agent in the sandbox"):
                outcome, patch = agent(current_run, loaded, task)
                result.outcome = outcome
                stop = outcome_stop(outcome)
                if stop is not None:
                    raise stop
        else:
            with current_run.ci.group("AstraForge: the agent job's artifacts"):
                outcome, patch = artifacts(current_run, loaded, task, publish_from)
                result.outcome = outcome
        with current_run.ci.group("AstraForge: policy checks"):
            result.checks, written = check(current_run, loaded, task, outcome, patch)
        with current_run.ci.group("AstraForge: publish"):
            result.published = publish_step(current_run, loaded, task, written, patch, forge)
            pr = result.published.pr
            result.conclusion, result.reason = (
                Conclusion.FIXED,
                f"pull request {pr.url if pr else ''}".strip(),
            )
    except Stop as stop:
        result.conclusion, result.reason = stop.conclusion, stop.reason
    except AstraForgeError as exc:
        result.error, result.conclusion, result.reason = exc, Conclusion.ERROR, exc.one_line()
        current_run.ci.annotate("error", exc.one_line())
    except Exception as exc:
        error = AstraForgeError(f"internal error: {exc!r}", "report it with the run log")
        result.error, result.conclusion, result.reason = error, Conclusion.ERROR, error.one_line()
        raise
    finally:
        if result.task is not None and result.conclusion.comments:
            reason = result.error.message if result.error else result.reason
            shown = Result(**{**result.__dict__, "reason": reason})
            status(current_run, loaded, result.task, forge, result.conclusion.value, shown)
        report.write(current_run, result)
    return result
