"""The one orchestrator. A run is a sequence of small named steps:

    load -> event -> decide -> authorize -> [follow-up] -> announce -> agent -> verify
         -> check -> publish -> report

A follow-up (a comment, review or failed CI run on a pull/merge request) adds one step that
decides whether the PR may be continued and fetches its branch; it then publishes on top of
that branch (:mod:`astraforge.followup`).

Each step is a function of explicit inputs that returns its result, or raises :class:`Stop`
to end the run early with a :class:`~astraforge.conclusion.Conclusion`. :func:`run` chains
them; the hardened publish job (:func:`run` with ``publish_from``) reads a dry run's
artifacts instead of running the agent, then goes through the same steps. Every exit path
leaves a status comment, a line in the log, the outputs, and the artifacts (see
:mod:`astraforge.report`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from astraforge import __version__, credentials, events, policy, report, telemetry
from astraforge import config as config_mod
from astraforge.agent.outcome import Outcome, Status, sha256
from astraforge.agent.run import DIFF, Start, run_agent
from astraforge.branches import FetchedBranch
from astraforge.ci import detect
from astraforge.conclusion import Conclusion
from astraforge.diff import parse
from astraforge.errors import AstraForgeError, UsageError
from astraforge.followup import reply
from astraforge.followup.resolve import resolve
from astraforge.forges import open_forge
from astraforge.forges.base import Forge
from astraforge.git import head_commit
from astraforge.progress import Progress
from astraforge.publish import Published, Texts, post_status, publish, status_text, texts
from astraforge.runs import Loaded, Options, Result, Run, Stop, start
from astraforge.status import LiveStatus
from astraforge.task import Kind, Task
from astraforge.trigger import decide

__all__ = ["Options", "Result", "run"]


# -- the steps --------------------------------------------------------------------------------


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
    config = loaded.config
    decision = decide(task, config.trigger, loaded.rules.triggers, config.ci_fix)
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


def announce(run: Run, loaded: Loaded, task: Task, forge: Forge) -> Progress:
    """The status comment becomes a live checklist of the run; the returned Progress
    reports each step to the log and, rate-limited, to that comment."""
    live: LiveStatus | None = None
    if task.number is not None and not loaded.dry_run:
        header = status_text("working", task=task, links=run.links)

        def post(text: str) -> None:
            try:
                post_status(forge, task, text)
            except AstraForgeError as exc:
                run.ci.annotate("warning", f"could not update the status comment: {exc}")

        live = LiveStatus(post, header)
        live.phase("context")
    return Progress(
        run.say,
        on_phase=live.phase if live else None,
        on_update=live.update if live else None,
    )


def agent(
    run: Run, loaded: Loaded, task: Task, progress: Progress, branch: FetchedBranch | None = None
) -> tuple[Outcome, str]:
    """The agent in the sandbox (on a follow-up's branch tip); a run without a change ends
    here."""
    done = run_agent(
        task,
        loaded.config,
        run.options.repo,
        run.options.out,
        env=run.env,
        rules=loaded.rules,
        progress=progress,
        start=Start(branch.tip, branch.objects) if branch else None,
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


def verify(run: Run, loaded: Loaded, outcome: Outcome) -> str | None:
    """Why the change is not verified by the runner's own tests, or None when they passed.
    The agent's own claims never count. With ``on_unverified: block`` nothing is published."""
    after, command = outcome.tests_after, outcome.test_command
    if not command:
        why = "not verified: no test command"
    elif after is None:
        why = "not verified: the runner did not run the tests after the change"
    elif not after.passed:
        how = "timed out" if after.timed_out else f"failed with exit code {after.exit_code}"
        why = f"not verified: `{command}` {how} after the change"
    else:
        run.say(f"verified: `{command}` passed after the change")
        return None
    run.ci.annotate("warning", why)
    if loaded.config.on_unverified == "block":
        raise Stop(Conclusion.BLOCKED, f"{why} (on_unverified: block)")
    return why


def check(
    run: Run,
    loaded: Loaded,
    task: Task,
    outcome: Outcome,
    patch: str,
    unverified: str | None = None,
) -> tuple[list[policy.Check], Texts]:
    """The policy's checks of the change, and the texts to publish, rendered once: the body
    states the checks (the secret scan as passed, which it must be for anything to be
    published), and that same body is scanned."""
    files = parse(patch)
    extra = [loaded.config.policy] if loaded.config.policy else []
    checks = policy.check_diff(files, loaded.rules, extra_protected=extra)
    passed = policy.Check("secrets", True, policy.checks.NO_SECRET)
    shown = [c.as_dict() for c in [*checks, passed]]
    written = texts(task, outcome, run.links, policy=shown, unverified=unverified)
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
    run: Run,
    loaded: Loaded,
    task: Task,
    written: Texts,
    patch: str,
    forge: Forge,
    unverified: str | None = None,
    branch: FetchedBranch | None = None,
) -> Published:
    """The branch and the one PR/MR (a draft when unverified), or a follow-up's commit on
    its branch; a dry run writes nothing."""
    if loaded.dry_run:
        run.say("dry run: nothing is written to the forge")
        if unverified:
            raise Stop(Conclusion.UNVERIFIED, f"dry run: the change was not pushed; {unverified}")
        raise Stop(Conclusion.FIXED, "dry run: the change was not pushed")
    if branch is not None:
        published = reply.publish(forge, task, written, patch, branch, loaded.config.publish)
        for write in published.writes:
            run.say(write)
        return published
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
        draft=unverified is not None,
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
    branch: FetchedBranch | None = None
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
        if task.kind in (Kind.FOLLOW_UP, Kind.CI_FAILURE):
            with current_run.ci.group("AstraForge: the pull request"):
                task, branch = resolve(current_run, loaded, task, forge)
                result.task = task
        progress = Progress(current_run.say)
        if publish_from is None:
            progress = announce(current_run, loaded, task, forge)
            with current_run.ci.group("AstraForge: agent in the sandbox"):
                outcome, patch = agent(current_run, loaded, task, progress, branch)
                result.outcome = outcome
                stop = outcome_stop(outcome)
                if stop is not None:
                    raise stop
        else:
            with current_run.ci.group("AstraForge: the agent job's artifacts"):
                outcome, patch = artifacts(current_run, loaded, task, publish_from)
                result.outcome = outcome
        with current_run.ci.group("AstraForge: verification and policy checks"):
            progress.phase("policy")
            unverified = verify(current_run, loaded, outcome)
            result.checks, written = check(current_run, loaded, task, outcome, patch, unverified)
        with current_run.ci.group("AstraForge: publish"):
            progress.phase("publish")
            result.published = publish_step(
                current_run, loaded, task, written, patch, forge, unverified, branch
            )
            pr = result.published.pr
            where = f"pull request {pr.url if pr else ''}".strip()
            result.conclusion, result.reason = (
                (Conclusion.UNVERIFIED, f"draft {where} ({unverified})")
                if unverified
                else (Conclusion.FIXED, where)
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
        if branch is not None:
            reply.conclude(current_run, loaded, forge, result, branch)
        if result.task is not None and result.conclusion.comments:
            reason = result.error.message if result.error else result.reason
            shown = Result(**{**result.__dict__, "reason": reason})
            status(current_run, loaded, result.task, forge, result.conclusion.value, shown)
        report.write(current_run, result)
    return result
