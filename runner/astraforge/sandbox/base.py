"""The Sandbox protocol and its result types."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self

from astraforge.sandbox.config import BwrapConfig, DockerConfig

SandboxConfig = DockerConfig | BwrapConfig


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str
    truncated: bool = False
    duration: float = 0.0
    timed_out: bool = False
    oom_killed: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


@dataclass(frozen=True)
class Changes:
    """The workspace against its starting point."""

    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    patch: str = ""
    skipped: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.modified or self.deleted)


class Sandbox(Protocol):
    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def setup(self, commands: list[str]) -> list[ExecResult]: ...

    def run(
        self, cmd: str, timeout: float | None = None, env: dict[str, str] | None = None
    ) -> ExecResult: ...

    def read_file(self, path: str) -> bytes: ...

    def write_file(self, path: str, data: bytes) -> None: ...

    def list_files(self) -> list[str]: ...

    def changes(self) -> Changes: ...
