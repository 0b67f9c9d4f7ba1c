"""`astraforge agent` and `astraforge replay`: the agent alone on a local checkout."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from astraforge.agent.replay import ReplayResult, replay
from astraforge.agent.run import AgentRun, run_agent
from astraforge.commands.common import load_config, say, task_from
from astraforge.commands.sandbox import spec


def agent(
    env: Mapping[str, str],
    *,
    repo: Path,
    text: str | None,
    event_file: Path | None,
    config_file: Path | None,
    overrides: dict[str, Any],
    out: Path,
) -> AgentRun:
    """Run only the agent: no forge, no push; the artifacts are written also on failure."""
    cfg = load_config(repo, env, file=config_file, overrides=overrides)
    task = task_from(cfg.trigger.syntax(), env, event_file=event_file, text=text)
    result = run_agent(task, cfg, repo, out, env=env)
    outcome, usage = result.outcome, result.outcome.usage
    changed = f"{len(outcome.files)} file(s) changed" if outcome.files else "no file changed"
    say(
        f"{outcome.status.value}: {outcome.reason}; {changed}; "
        f"{usage.get('turns', 0)} turn(s), {usage.get('total_tokens', 0)} tokens; "
        f"artifacts in {out}"
    )
    return result


def replay_run(
    trajectory: Path, repo: Path, backend: str | None, image: str | None
) -> ReplayResult:
    """Re-execute a run's tool calls without a model."""
    result = replay(trajectory, repo, spec(backend, image))
    if not result.base_tree_matches:
        say("warning: the replay started from different files than the run")
    return result


def replay_and_show(trajectory: Path, repo: Path, backend: str | None, image: str | None) -> int:
    """:func:`replay_run`, saying whether the diff is identical; 0 when it is, else 1."""
    result = replay_run(trajectory, repo, backend, image)
    if result.identical:
        sys.stdout.write(
            f"identical: {result.calls} tool call(s) replayed, diff {result.actual_sha256}\n"
        )
        return 0
    say(
        f"different: {result.calls} tool call(s) replayed; diff {result.actual_sha256}, "
        f"recorded {result.expected_sha256}"
    )
    return 1
