"""One agent run on a local checkout: sandbox, setup, tests before, the loop, tests after,
and the three artifacts. Nothing here talks to a forge or pushes."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from astraforge import policy
from astraforge.agent.loop import Budget, Conversation, LoopEnd, run_loop
from astraforge.agent.model import Message, RetryHook, make_model
from astraforge.agent.model import describe as describe_model
from astraforge.agent.outcome import Outcome, Status, TestRun, file_changes, sha256
from astraforge.agent.tools import TOOLS, Toolbox
from astraforge.agent.trajectory import Trajectory
from astraforge.config import Config
from astraforge.context.prompt import build_prompt
from astraforge.context.sanitize import clean, fence
from astraforge.engines.run import run_round
from astraforge.engines.session import engine_mount, engine_prompt, external_engine
from astraforge.errors import AstraForgeError, SandboxError
from astraforge.git import head_commit
from astraforge.policy.model import Policy
from astraforge.progress import Progress
from astraforge.redact import Redactor, secrets_from_env
from astraforge.sandbox import Sandbox, open_sandbox
from astraforge.sandbox.base import Changes
from astraforge.sandbox.config import WORKSPACE
from astraforge.task import Task

if TYPE_CHECKING:
    from astraforge.gateway.service import Gateway

TRAJECTORY = "trajectory.jsonl"
DIFF = "diff.patch"


@dataclass(frozen=True)
class Start:
    """Where a sandbox starts when not at the checkout: a commit, and a git object store
    holding it (a follow-up's branch, fetched beside the checkout)."""

    commit: str
    objects: Path


@dataclass
class AgentRun:
    """An agent run's outcome and artifacts folder, and the error that ended it."""

    outcome: Outcome
    out: Path
    error: BaseException | None = None


def run_tests(sandbox: Sandbox, phase: str, command: str, trajectory: Trajectory) -> TestRun:
    """The runner's own run of the test command, recorded in the trajectory."""
    result = sandbox.run(f"cd {WORKSPACE} && {command}")
    run = TestRun.of(phase, command, result)
    trajectory.write("test", **run.model_dump())
    return run


VERIFY_ROUNDS = 2  # times the agent is told its change fails the runner's tests
RED = (
    "The runner ran the tests after your change and they failed (exit code {code}). Find "
    "out why, fix it, and finish again. The test output:\n{output}"
)


def run_agent(
    task: Task,
    config: Config,
    repo: Path,
    out: Path,
    *,
    env: Mapping[str, str],
    messages: list[Message] | None = None,
    rules: Policy | None = None,
    run_id: str | None = None,
    progress: Progress | None = None,
    start: Start | None = None,
) -> AgentRun:
    """Run the agent on a copy of ``repo`` (at ``start``, else its checked-out commit); write
    outcome.json, diff.patch and the trajectory into ``out``, also when the run fails. The
    runner's own test run after the change decides: when it fails, the agent gets the
    failure back and may go on, within budget."""
    out.mkdir(parents=True, exist_ok=True)
    progress = progress or Progress()
    run_id = run_id or secrets.token_hex(6)
    redact = Redactor(secrets_from_env(env))
    trajectory = Trajectory(out / TRAJECTORY, redact)
    rules = rules or policy.default()
    budget = Budget(policy.capped_budgets(config.budgets, rules), config.model.price())
    exclude = list(rules.paths.read_denied)
    if out.resolve().is_relative_to(repo.resolve()):
        exclude.append("/" + out.resolve().relative_to(repo.resolve()).as_posix())
    spec = config.sandbox.spec(rules.sandbox, exclude)
    toolbox: Toolbox | None = None
    test_command = config.test_command
    end: LoopEnd | None = None
    changes: Changes | None = None
    before = after = None
    error: BaseException | None = None
    gateway: Gateway | None = None
    stack = contextlib.ExitStack()
    try:
        model = (
            make_model(config.model, env, on_retry=_retries(trajectory, progress))
            if config.engine == "builtin"
            else None  # an engine reaches the model through the gateway only
        )
        trajectory.write(
            "start",
            run_id=run_id,
            model=describe_model(config.model),
            engine=config.engine,
            task=task.public_dict(),
            base_commit=start.commit if start else head_commit(repo),
            setup=config.setup,
            test_command=test_command,
            budgets=budget.limits.model_dump(),
            sandbox=spec.model_dump(),
            tools=list(TOOLS) if config.engine == "builtin" else [],
        )
        from astraforge.gateway.run import open_gateway

        gateway = open_gateway(config, rules, env, budget, trajectory, progress)
        if gateway is not None:
            stack.callback(gateway.stop)
        engine = external_engine(config, gateway)
        sandbox = open_sandbox(spec, repo, run_id=run_id, progress=progress)
        sandbox.door = gateway
        if engine is not None:
            sandbox.mounts = [engine_mount(engine, spec, progress)]
        if start is not None:
            sandbox.commit, sandbox.objects = start.commit, start.objects
        sandbox.start_soon()  # the container starts while the context is gathered
        try:
            if messages is None:
                messages, test_command = _prompt(task, repo, config, env, trajectory, progress)
        except BaseException:
            sandbox.stop()
            raise
        conversation = Conversation(messages, trajectory)
        with sandbox:
            try:
                _setup(sandbox, config.setup, trajectory)
                if test_command:
                    progress.phase("tests_before", f"`{test_command}`")
                    before = run_tests(sandbox, "before", test_command, trajectory)
                toolbox = Toolbox(
                    sandbox,
                    check_command=policy.command_check(rules),
                    check_path=policy.read_check(rules),
                    default_timeout=spec.command_timeout,
                )
                progress.phase("agent")
                progress.start_heartbeat(budget.report)
                red: str | None = None
                for verify_round in range(VERIFY_ROUNDS + 1):
                    try:
                        if engine is not None and gateway is not None:
                            ended = run_round(
                                engine,
                                sandbox,
                                config.model.name,
                                engine_prompt(conversation.messages, test_command, red),
                                budget,
                                gateway,
                                trajectory,
                                progress,
                            )
                        else:
                            assert model is not None
                            ended = run_loop(
                                model,
                                toolbox,
                                conversation,
                                budget,
                                trajectory,
                                redact,
                                max_output=config.model.max_output_tokens,
                                context_window=config.model.context_window,
                                progress=progress,
                            )
                    except Exception as exc:
                        if verify_round == 0:
                            raise
                        # A round after a finished change failed: keep the change, unverified.
                        trajectory.write("verify", ended=f"error: {exc}")
                        ended = LoopEnd("error")
                    if verify_round == 0 or ended.how == "finished":
                        end = ended
                    changes = sandbox.changes()
                    if end is None or end.how != "finished" or changes.empty or not test_command:
                        break
                    progress.phase("tests_after", f"`{test_command}`")
                    after = run_tests(sandbox, "after", test_command, trajectory)
                    if after.passed or verify_round == VERIFY_ROUNDS or ended.how != "finished":
                        break
                    progress.say(f"tests after the change failed: exit {after.exit_code}")
                    red = RED.format(
                        code=after.exit_code,
                        output=fence("test output", clean(after.output, 4000)),
                    )
                    if engine is None:
                        conversation.add({"role": "user", "content": red})
                    progress.phase("agent", "fixing what the tests found")
            except BaseException as exc:
                error = exc
            finally:
                progress.stop_heartbeat()
            if changes is None or error is not None:
                try:
                    changes = sandbox.changes()
                except Exception as exc:
                    error = error or exc
    except BaseException as exc:
        error = error or exc
    finally:
        stack.close()
    outcome = _outcome(run_id, end, changes, error, budget, config)
    outcome = outcome.model_copy(
        update={
            "tests_before": before,
            "tests_after": after,
            "test_command": test_command,
            "refusals": toolbox.refusals if toolbox else [],
            "skipped": changes.skipped if changes else [],
            "gateway": gateway.report() if gateway else {},
        }
    )
    (out / DIFF).write_text(changes.patch if changes else "", encoding="utf-8")
    outcome.write(out)
    trajectory.write("end", outcome=outcome.model_dump(mode="json"))
    trajectory.close()
    if error is not None and not isinstance(error, Exception):
        raise error  # KeyboardInterrupt, SystemExit: the artifacts are written; stop now
    return AgentRun(outcome, out, error)


def _prompt(
    task: Task,
    repo: Path,
    config: Config,
    env: Mapping[str, str],
    trajectory: Trajectory,
    progress: Progress,
) -> tuple[list[Message], str | None]:
    """The first messages, and the test command (configured, or detected with the context)."""
    prompt = build_prompt(task, repo, config, env)
    trajectory.write(
        "context",
        tokens=prompt.tokens,
        omitted=prompt.omitted,
        notes=prompt.context.notes,
        frames=[f"{w.path}:{w.lineno}" for w in prompt.context.windows],
        test_command=prompt.context.test_command,
    )
    progress.phase("context", f"{len(prompt.context.windows)} frame(s) mapped")
    return prompt.messages, config.test_command or prompt.context.test_command


def _retries(trajectory: Trajectory, progress: Progress) -> RetryHook:
    def hook(attempt: int, failure: str, wait: float) -> None:
        trajectory.write("retry", attempt=attempt, failure=failure, wait=round(wait, 3))
        progress.retry(attempt, failure, wait)

    return hook


def _setup(sandbox: Sandbox, commands: list[str], trajectory: Trajectory) -> None:
    if not commands:
        return
    for command, result in zip(commands, sandbox.setup(commands), strict=False):
        trajectory.write(
            "setup",
            command=command,
            exit_code=result.exit_code,
            timed_out=result.timed_out,
            output=(result.stdout + result.stderr)[-4000:],
        )
        if not result.ok:
            raise SandboxError(
                f"setup command {command!r} failed with exit code {result.exit_code}",
                "fix `setup:` in .astraforge.yml; the sandbox has network during setup only "
                "when sandbox.setup_network allows it",
            )


def _outcome(
    run_id: str,
    end: LoopEnd | None,
    changes: Changes | None,
    error: BaseException | None,
    budget: Budget,
    config: Config,
) -> Outcome:
    changed = changes is not None and not changes.empty
    finish = end.finish if end else None
    if error is not None:
        message = error.one_line() if isinstance(error, AstraForgeError) else repr(error)
        status, reason = Status.ERROR, message
    elif end is None:
        status, reason = Status.ERROR, "the agent did not run"
    elif end.how == "budget":
        status, reason = Status.BUDGET_EXHAUSTED, f"the {end.budget} budget ran out"
    elif end.how == "text_only":
        status, reason = Status.NO_CHANGE, "the model stopped calling tools after a reminder"
    elif changed:
        status, reason = Status.FIXED, "the agent finished with a change"
    else:
        status, reason = Status.NO_CHANGE, "the agent finished without changing any file"
    return Outcome(
        status=status,
        reason=reason,
        summary=finish.summary if finish else None,
        root_cause=finish.root_cause if finish else None,
        tests_reported=finish.tests if finish else None,
        files=file_changes(changes) if changes else [],
        diff_sha256=sha256(changes.patch) if changes else None,
        base_tree=changes.base_tree if changes else None,
        budget=end.budget if end else None,
        usage=budget.report(),
        model=describe_model(config.model),
        engine=config.engine,
        error=reason if status is Status.ERROR else None,
        run_id=run_id,
    )
