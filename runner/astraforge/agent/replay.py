"""Replay: re-execute a trajectory's tool calls in a fresh sandbox, without a model, and
check that the resulting diff is identical to the recorded one."""

from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astraforge.agent.model import REPLAY_PREFIX, Message, Reply
from astraforge.agent.outcome import sha256
from astraforge.agent.tools import Toolbox
from astraforge.agent.trajectory import read_events
from astraforge.errors import ModelError, PayloadError, UsageError
from astraforge.git import head_commit, run_git
from astraforge.sandbox import open_sandbox
from astraforge.sandbox.config import SandboxSpec


@dataclass(frozen=True)
class ReplayResult:
    """Whether re-executing a run's tool calls gave the same diff."""

    identical: bool
    calls: int
    expected_sha256: str
    actual_sha256: str
    patch: str
    base_tree_matches: bool


def replay(trajectory: Path, repo: Path, spec: SandboxSpec | None = None) -> ReplayResult:
    """Re-execute a trajectory's tool calls in a fresh sandbox, without a model."""
    events = list(read_events(trajectory))
    start = events[0]
    end = next((e for e in reversed(events) if e["type"] == "end"), None)
    if end is None:
        raise PayloadError(
            f"{trajectory}: the run has no end event (it crashed), so there is no diff to compare"
        )
    engine = str(start.get("engine") or "builtin")
    if engine != "builtin":
        raise PayloadError(
            f"{trajectory}: a run of the {engine} engine, whose tool calls only {engine} can "
            "make again",
            f"replay it with `astraforge agent --engine {engine} --model replay:{trajectory}`",
        )
    outcome: dict[str, Any] = end["outcome"]
    expected = outcome.get("diff_sha256")
    if not expected:
        raise PayloadError(f"{trajectory}: the run recorded no diff (status {outcome['status']})")
    if spec is None:
        from pydantic import TypeAdapter

        spec = TypeAdapter(SandboxSpec).validate_python(start["sandbox"])
    calls = [e for e in events if e["type"] == "tool" and not e.get("refused")]
    with (
        _starting_tree(repo, start.get("base_commit")) as workspace,
        open_sandbox(spec, workspace) as sandbox,
    ):
        if start.get("setup"):
            sandbox.setup(start["setup"])
        toolbox = Toolbox(sandbox, default_timeout=spec.command_timeout)
        for call in calls:
            toolbox.call(call["name"], call["arguments"])
        changes = sandbox.changes()
    actual = sha256(changes.patch)
    return ReplayResult(
        identical=actual == expected,
        calls=len(calls),
        expected_sha256=expected,
        actual_sha256=actual,
        patch=changes.patch,
        base_tree_matches=changes.base_tree == outcome.get("base_tree"),
    )


@contextmanager
def _starting_tree(repo: Path, commit: str | None) -> Iterator[Path]:
    """The repository as the run saw it: the checkout itself when it is at the recorded
    commit, else that commit exported to a temporary directory."""
    if not repo.is_dir():
        raise UsageError(f"{repo}: not a directory", "pass the repository with --repo")
    if commit is None or head_commit(repo) == commit:
        yield repo
        return
    if run_git(["cat-file", "-e", f"{commit}^{{commit}}"], repo, check=False).returncode:
        raise UsageError(
            f"{repo} does not have commit {commit[:12]}, where the run started",
            "fetch it, or pass the checkout the run used",
        )
    archive = run_git(["archive", "--format=tar", commit], repo).stdout
    tmp = Path(tempfile.mkdtemp(prefix="astraforge-replay-"))
    try:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class ReplayModel:
    """Answers with the replies recorded in a trajectory, in order; needs no network."""

    def __init__(self, path: Path) -> None:
        self.name = f"{REPLAY_PREFIX}{path}"
        self._replies = [
            Reply.from_json(e["reply"]) for e in read_events(path) if e["type"] == "response"
        ]
        if not self._replies:
            raise ModelError(f"{path}: the trajectory holds no model replies to replay")
        self._next = 0

    def complete(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]],
        *,
        max_output: int,
        deadline: float,
    ) -> Reply:
        if self._next >= len(self._replies):
            raise ModelError(
                f"the replayed trajectory has only {len(self._replies)} replies",
                "the run took a different path than the recorded one",
            )
        reply = self._replies[self._next]
        self._next += 1
        return reply
