"""What an agent run produces: ``outcome.json``, ``diff.patch`` and ``trajectory.jsonl``."""

from __future__ import annotations

import hashlib
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from astraforge import diff
from astraforge.sandbox.base import Changes, ExecResult

OUTPUT_TAIL = 4000


class Status(StrEnum):
    """How an agent run ended."""

    FIXED = "fixed"
    NO_CHANGE = "no_change"
    BUDGET_EXHAUSTED = "budget_exhausted"
    ERROR = "error"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TestRun(_Model):
    """The runner's own run of the configured test command."""

    __test__ = False  # not a pytest test class

    phase: str = Field(description="before or after the agent's change")
    command: str
    exit_code: int
    passed: bool
    timed_out: bool = False
    seconds: float
    output: str = Field(description="the tail of stdout and stderr")

    @classmethod
    def of(cls, phase: str, command: str, result: ExecResult) -> TestRun:
        return cls(
            phase=phase,
            command=command,
            exit_code=result.exit_code,
            passed=result.ok,
            timed_out=result.timed_out,
            seconds=round(result.duration, 3),
            output=result.output[-OUTPUT_TAIL:],
        )


class FileChange(_Model):
    """One changed file with its line counts."""

    path: str
    change: str = Field(description="added, modified or deleted")
    added_lines: int = 0
    deleted_lines: int = 0


class Outcome(_Model):
    """What an agent run produced (outcome.json)."""

    status: Status
    reason: str = Field(description="one line: why the run ended this way")
    summary: str | None = None
    root_cause: str | None = None
    tests_reported: str | None = Field(
        default=None, description="what the agent said it tested (never counted as evidence)"
    )
    tests_before: TestRun | None = None
    tests_after: TestRun | None = None
    test_command: str | None = Field(
        default=None, description="what the runner ran as the tests (configured or detected)"
    )
    files: list[FileChange] = Field(default_factory=list)
    diff_sha256: str | None = None
    base_tree: str | None = Field(default=None, description="git tree id of the starting files")
    budget: str | None = Field(default=None, description="the budget that ran out, if one did")
    refusals: list[str] = Field(
        default_factory=list, description="commands and paths the policy refused during the run"
    )
    skipped: list[str] = Field(
        default_factory=list,
        description="files left out of the change: special files, nested .git, odd names",
    )
    usage: dict[str, Any] = Field(default_factory=dict)
    gateway: dict[str, Any] = Field(
        default_factory=dict,
        description="the gateway's calls and tokens, and every connection the sandbox asked "
        "for (host, port, bytes, decision)",
    )
    model: dict[str, Any] = Field(default_factory=dict)
    engine: str = "builtin"
    error: str | None = None
    run_id: str

    def write(self, out: Path) -> Path:
        path = out / "outcome.json"
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path


def file_changes(changes: Changes) -> list[FileChange]:
    """Per-file line counts, read from the patch."""
    counts = {f.path: (len(f.added), f.removed) for f in diff.parse(changes.patch)}
    kinds = {
        **{p: "added" for p in changes.added},
        **{p: "modified" for p in changes.modified},
        **{p: "deleted" for p in changes.deleted},
    }
    return [
        FileChange(
            path=p,
            change=kind,
            added_lines=counts.get(p, (0, 0))[0],
            deleted_lines=counts.get(p, (0, 0))[1],
        )
        for p, kind in sorted(kinds.items())
    ]


def sha256(text: str) -> str:
    """The hex SHA-256 of a patch's text."""
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
