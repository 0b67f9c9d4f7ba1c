"""The Sandbox protocol and its result types."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self

from astraforge.errors import SandboxError
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
    base_tree: str = ""  # git tree id of the starting workspace

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


class Lifecycle:
    """What every backend shares: context management, cleanup on a failed start, setup."""

    config: SandboxConfig

    def _start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def _session_run(self, cmd: str, timeout: float, env: dict[str, str] | None) -> ExecResult:
        raise NotImplementedError

    def _go_offline(self) -> None:
        raise NotImplementedError

    def run(
        self, cmd: str, timeout: float | None = None, env: dict[str, str] | None = None
    ) -> ExecResult:
        """Run one agent-phase command: the sandbox goes offline first if setup had network."""
        if getattr(self, "_session", None) is None:
            raise SandboxError("the sandbox is not started")
        self._go_offline()
        return self._session_run(cmd, timeout or self.config.command_timeout, env)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def setup(self, commands: list[str]) -> list[ExecResult]:
        """Run setup commands (with network if the config allows it), then go offline."""
        results = []
        for command in commands:
            result = self._session_run(command, self.config.setup_timeout, None)
            results.append(result)
            if not result.ok:
                break
        self._go_offline()
        return results
