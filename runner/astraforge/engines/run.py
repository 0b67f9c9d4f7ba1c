"""One round of an external engine in a started sandbox: its configuration into ``$HOME``,
the prompt on stdin, the run under the wall-time budget, its output into the trajectory, and
how it ended as a :class:`~astraforge.agent.loop.LoopEnd`."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from astraforge.agent.loop import Budget, LoopEnd
from astraforge.agent.tools import Finish
from astraforge.agent.trajectory import Trajectory
from astraforge.engines.base import ENGINE_ROOT, SCRATCH, Engine, Settings, sections
from astraforge.engines.install import bin_dir
from astraforge.errors import EngineError
from astraforge.progress import Progress
from astraforge.sandbox import Sandbox
from astraforge.sandbox.config import HOME, WORKSPACE

if TYPE_CHECKING:
    from astraforge.gateway.service import Gateway

PROMPT = f"{SCRATCH}/prompt.md"
OUTPUT = f"{SCRATCH}/output.jsonl"
ERRORS = f"{SCRATCH}/stderr.log"
MIN_SECONDS = 5.0


def command_line(engine: Engine, settings: Settings) -> str:
    """The shell line that runs the engine in the workspace, prompt in, events out."""
    variables = {
        "PATH": f"{ENGINE_ROOT}/{bin_dir(engine)}:{ENGINE_ROOT}/lib/bin:$PATH",
        **engine.environment(settings),
    }
    assignments = " ".join(
        f"{key}={value}" if key == "PATH" else f"{key}={shlex.quote(value)}"
        for key, value in variables.items()
    )
    argv = " ".join(shlex.quote(a) for a in engine.argv(settings))
    return f"cd {WORKSPACE} && env {assignments} {argv} <{PROMPT} >{OUTPUT} 2>{ERRORS}"


def run_round(
    engine: Engine,
    sandbox: Sandbox,
    model: str,
    prompt: str,
    budget: Budget,
    gateway: Gateway,
    trajectory: Trajectory,
    progress: Progress,
) -> LoopEnd:
    """Run the engine once on ``prompt``; raises :class:`EngineError` when it failed for a
    reason of its own (a refused budget or the deadline is a budget end, not an error)."""
    settings = Settings(model=model, env=sandbox.environment())
    for path, text in engine.home_files(settings).items():
        sandbox.write_private(f"{HOME}/{path}", text.encode())
    sandbox.write_private(PROMPT, prompt.encode())
    line = command_line(engine, settings)
    calls_before = len(gateway.calls)
    trajectory.write("engine", name=engine.name, version=engine.package.version, command=line)
    timeout = max(budget.time_left(), MIN_SECONDS)
    result = sandbox.run(line, timeout=timeout)
    output = sandbox.read_private(OUTPUT).decode("utf-8", "replace")
    errors = sandbox.read_private(ERRORS).decode("utf-8", "replace")
    transcript = engine.read(output)
    for event in transcript.events:
        if event["type"] == "message":
            trajectory.write(
                "message",
                message={"role": event["role"], "content": event["content"]},
                engine=engine.name,
            )
        else:
            fields = {k: v for k, v in event.items() if k != "type"}
            trajectory.write("tool", engine=engine.name, **fields)
            progress.tool_call(str(event["name"]), _brief(event["arguments"]), None, 0.0, True)
    trajectory.write(
        "engine_exit",
        name=engine.name,
        exit_code=result.exit_code,
        timed_out=result.timed_out,
        model_calls=len(gateway.calls) - calls_before,
        tool_calls=len(transcript.tool_calls),
        error=transcript.error,
        stderr=errors[-4000:],
    )
    if gateway.exhausted:
        return LoopEnd("budget", budget=gateway.exhausted)
    if result.timed_out or budget.time_left() <= 0:
        return LoopEnd("budget", budget="time")
    if result.exit_code != 0 or (transcript.error and not transcript.final):
        why = transcript.error or _last_line(errors) or f"exit code {result.exit_code}"
        raise EngineError(f"{engine.name} failed: {why}")
    final = transcript.final or ""
    parts = sections(final)
    summary = parts.get("summary") or final.strip() or f"{engine.name} finished without a message"
    return LoopEnd(
        "finished",
        finish=Finish(
            summary=summary[:4000],
            root_cause=parts.get("root cause"),
            tests=parts.get("tests"),
        ),
    )


def _brief(arguments: object) -> str:
    text = arguments if isinstance(arguments, str) else str(arguments)
    return " ".join(text.split())[:80]


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
