"""The sandbox contract, and everything the backends share.

:class:`Sandbox` is the one abstract base: a backend only creates its isolated process with a
shell on stdin (:meth:`_launch`), copies the starting files in, and tears it down. Running
commands, the file operations, setup, the change list and the lifecycle are written once
here, on top of the persistent :class:`~astraforge.sandbox.session.ShellSession`.
"""

from __future__ import annotations

import base64
import shlex
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from astraforge.errors import SandboxError
from astraforge.progress import Progress
from astraforge.sandbox.config import WORKSPACE, BwrapConfig, DockerConfig, Mount
from astraforge.sandbox.copyin import Prefetch, starting_files
from astraforge.sandbox.paths import confine, private, raise_for
from astraforge.sandbox.session import ShellSession
from astraforge.sandbox.shadow import JUNK_DIRS, Changes, Shadow
from astraforge.sandbox.tree import EXECUTABLE, SYMLINK, Entry, Source, read_tar

if TYPE_CHECKING:
    from astraforge.sandbox.door import Channel, Door

SandboxConfig = DockerConfig | BwrapConfig
MAX_FILE = 32 * 1024 * 1024  # bytes of one file read through the session
MAX_CHANGES = 512 * 1024 * 1024  # bytes of changed files fetched back
FILE_TIMEOUT = 120.0

__all__ = ["Changes", "ExecResult", "Mount", "Sandbox", "SandboxConfig", "confine"]


@dataclass(frozen=True)
class ExecResult:
    """A command's exit code, capped output and timing."""

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

    @property
    def output(self) -> str:
        """stdout, then stderr, on a new line when both have text."""
        return self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr


@dataclass(frozen=True)
class _Stat:
    inode: str
    size: int
    mtime: str
    ctime: str
    mode: int  # st_mode


# The listing a change set is computed from: every non-directory outside .git and build
# leftovers, with inode, size, mtime, ctime and mode; names holding a newline are listed
# apart (NUL-separated) and never taken.
_PRUNE = " -o ".join(f"-name {shlex.quote(n)}" for n in (".git", *JUNK_DIRS))
LISTING = (
    f"cd {WORKSPACE} && "
    f'find . \\( {_PRUNE} -o -name "*$__af_nl*" \\) -prune -o ! -type d '
    "-exec stat -c '%i %s %Y %Z %f %n' {} + && "
    f'find . \\( -name .git -o -name "*$__af_nl*" \\) ! -path ./.git -print0 >&2'
)


class Sandbox(ABC):
    """A started sandbox holds a copy of the starting files and one shell session."""

    config: SandboxConfig

    def __init__(
        self,
        config: SandboxConfig,
        workspace: Path | str,
        *,
        run_id: str | None = None,
        progress: Progress | None = None,
    ) -> None:
        import uuid

        self.progress = progress or Progress()
        self.config = config
        self.workspace = Path(workspace)
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self._session: ShellSession | None = None
        self._shadow: Shadow | None = None
        self._copied_at = 0  # the sandbox's clock (seconds) once the files were in
        self._starter: threading.Thread | None = None
        self._start_error: BaseException | None = None
        self.commit: str | None = None  # the commit to start from (default: the checkout's)
        self.objects: Path | None = None  # a git object store holding it (default: checkout's)
        self.door: Door | None = None  # the gateway, reached from inside on loopback
        self._door: Channel | None = None
        self.mounts: list[Mount] = []  # read-only folders of the runner, set before start

    # -- what a backend provides ------------------------------------------------------------
    start_in_thread = True  # False when the sandbox's process dies with its thread

    @abstractmethod
    def _launch(self, files: Iterable[bytes]) -> tuple[ShellSession, int]:
        """Create the isolated process with its shell, extract the tar stream ``files`` into
        the workspace, and return the started session and the sandbox's clock (seconds)
        once the files are in."""

    @abstractmethod
    def _teardown(self) -> None:
        """Remove everything the sandbox made; safe to call more than once."""

    def _go_offline(self) -> None:  # noqa: B027 - optional: most sandboxes start offline
        """Leave the setup network, if the sandbox had one."""

    def _oom_since(self, since: float) -> bool:
        """Whether the sandbox hit its memory limit since ``since`` (time.time())."""
        return False

    def _door_channel(self, binary: Path, args: list[str]) -> Channel | None:
        """Start the gateway's forwarder in the sandbox's network namespace; None while
        that namespace is not yet the sandbox's own (bubblewrap's setup on the host
        network)."""
        raise SandboxError(f"the {self.config.type} backend cannot reach the gateway")

    def environment(self) -> dict[str, str]:
        """The sandbox's environment: the config's, plus the gateway's variables."""
        return self.config.environment(self.door.environment() if self.door else None)

    def _open_door(self) -> None:
        """Join the gateway to the sandbox once its network namespace is its own."""
        if self.door is None or self._door is not None:
            return
        from astraforge.gateway import forwarder

        channel = self._door_channel(forwarder.binary(), self.door.forwarder_args())
        if channel is not None:
            self._door = channel
            self.door.attach(channel)

    def _close_door(self) -> None:
        if self._door is not None:
            self._door.close()
            self._door = None

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> Self:
        if self._starter is None and self._session is None:
            self.start()
        elif self._starter is not None:
            self._join_starter()
            if self._start_error is not None:
                raise self._start_error
        return self

    def start_soon(self) -> None:
        """Start in a thread, so the caller can do other work meanwhile (the runner gathers
        the prompt's context); entering the sandbox waits for it and raises what failed.
        A backend whose process dies with the thread that made it starts at once."""
        if not self.start_in_thread:
            self.start()
            return

        def start() -> None:
            try:
                self.start()
            except BaseException as exc:
                self._start_error = exc

        self._starter = threading.Thread(target=start, name=f"start-{self.run_id}", daemon=True)
        self._starter.start()

    def _join_starter(self) -> None:
        if self._starter is not None and self._starter is not threading.current_thread():
            self._starter.join()
            self._starter = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Create the sandbox and copy the starting files in; cleans up if that fails."""
        try:
            source = Source(
                self.workspace,
                exclude=self.config.exclude,
                include=self.config.include,
                commit=self.commit,
                objects=self.objects,
            )
            shadow = self._shadow = Shadow(source.objects)
            prefetch = Prefetch(lambda: starting_files(source, shadow))
            try:
                self._session, self._copied_at = self._launch(prefetch)
            finally:
                prefetch.close()
            if source.commit is None:
                shadow.seal()
            self._open_door()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self._join_starter()
        self._close_door()
        self._teardown()
        self._session = None
        if self._shadow is not None:
            self._shadow.close()
            self._shadow = None

    def _live(self) -> ShellSession:
        if self._session is None:
            raise SandboxError("the sandbox is not started")
        return self._session

    # -- commands ---------------------------------------------------------------------------
    def _exec(self, cmd: str, timeout: float, env: dict[str, str] | None = None) -> ExecResult:
        import time

        started = time.time()
        raw = self._live().run(cmd, timeout, env)
        oom = raw.exit_code == 137 and not raw.timed_out and self._oom_since(started)
        return ExecResult(
            exit_code=raw.exit_code,
            stdout=raw.stdout,
            stderr=raw.stderr,
            truncated=raw.truncated,
            duration=raw.duration,
            timed_out=raw.timed_out,
            oom_killed=oom,
        )

    def run(
        self, cmd: str, timeout: float | None = None, env: dict[str, str] | None = None
    ) -> ExecResult:
        """Run one agent-phase command: the sandbox goes offline first if setup had network."""
        self._live()
        self._go_offline()
        self._open_door()
        return self._exec(cmd, timeout or self.config.command_timeout, env)

    def setup(self, commands: list[str]) -> list[ExecResult]:
        """Run setup commands (with network if the config allows it), then go offline."""
        results = []
        for command in commands:
            result = self._exec(command, self.config.setup_timeout)
            results.append(result)
            if not result.ok:
                break
        self._go_offline()
        return results

    # -- files ------------------------------------------------------------------------------
    def _path(self, path: str) -> str:
        return "/".join([WORKSPACE, *confine(path)])

    def resolve(self, path: str) -> str:
        """Where ``path`` really is, relative to the workspace ("" for its root): symlinks
        are followed only while they stay inside it."""
        target = self._path(path)
        raw = self._live().call(
            f'__af_real {shlex.quote(target)} {shlex.quote(path)} && printf %s "$__af_r"',
            FILE_TIMEOUT,
        )
        raise_for(raw.exit_code, raw.stderr, path)
        real = raw.data.decode("utf-8", "surrogateescape")
        return "" if real == WORKSPACE else real[len(WORKSPACE) + 1 :]

    def read_file(self, path: str) -> bytes:
        """A regular file's bytes; symlinks are followed only inside the workspace, and a
        FIFO, socket or device is refused at once."""
        target = self._path(path)
        raw = self._live().call(
            f"__af_read {shlex.quote(target)} {shlex.quote(path)}", FILE_TIMEOUT, limit=MAX_FILE
        )
        raise_for(raw.exit_code, raw.stderr, path)
        if raw.truncated:
            raise OSError(f"{path} is larger than {MAX_FILE // 2**20} MiB")
        return raw.data

    def write_file(self, path: str, data: bytes) -> None:
        """Create or overwrite a regular file; an existing file keeps its mode."""
        target = self._path(path)
        if target == WORKSPACE:
            raise IsADirectoryError(path)
        self._pipe_in(f"__af_write {shlex.quote(target)} {shlex.quote(path)}", data, path)

    def write_private(self, path: str, data: bytes) -> None:
        """Write a file of the sandbox's own, under ``$HOME`` or ``/tmp`` (never the
        workspace): an engine's configuration, a prompt."""
        target = private(path)
        folder = shlex.quote(target.rsplit("/", 1)[0])
        self._pipe_in(f"mkdir -p -- {folder} && base64 -d > {shlex.quote(target)}", data, path)

    def _pipe_in(self, command: str, data: bytes, path: str) -> None:
        """Run ``command`` with ``data`` on its stdin, as base64 in a here-document."""
        encoded = base64.encodebytes(data).decode()
        raw = self._live().call(f"{command} <<'__AF_B64__'\n{encoded}__AF_B64__", FILE_TIMEOUT)
        raise_for(raw.exit_code, raw.stderr, path)

    def read_private(self, path: str) -> bytes:
        """A file of the sandbox's own under ``$HOME`` or ``/tmp`` (an engine's output); an
        empty result when it does not exist."""
        target = shlex.quote(private(path))
        raw = self._live().call(
            f"[ ! -f {target} ] || cat -- {target} </dev/null", FILE_TIMEOUT, limit=MAX_FILE
        )
        raise_for(raw.exit_code, raw.stderr, path)
        return raw.data

    def list_files(self) -> list[str]:
        """Every file and symlink in the workspace, outside .git and build leftovers."""
        return sorted(self._listing()[0])

    # -- changes ----------------------------------------------------------------------------
    def _listing(self) -> tuple[dict[str, _Stat], list[str]]:
        raw = self._live().call(LISTING, FILE_TIMEOUT, limit=MAX_CHANGES)
        if raw.exit_code != 0 or raw.truncated:
            raise SandboxError(f"listing the workspace failed: {raw.stderr.strip()[-300:]}")
        found: dict[str, _Stat] = {}
        for line in raw.data.decode("utf-8", "surrogateescape").split("\n"):
            if not line:
                continue
            fields = line.split(" ", 5)
            if len(fields) != 6 or not fields[5].startswith("./"):
                raise SandboxError(f"unexpected line in the workspace listing: {line[:200]!r}")
            inode, size, mtime, ctime, mode, name = fields
            found[name[2:]] = _Stat(inode, int(size), mtime, ctime, int(mode, 16))
        odd = [p.removeprefix("./") for p in raw.stderr.split("\0") if p.startswith("./")]
        return found, odd

    def changes(self) -> Changes:
        """The workspace's diff against its starting files, as a git patch. Only files whose
        inode, size, times or mode changed are fetched; modes, symlinks and deletions are
        exact, and a link is never followed on the runner."""
        if self._shadow is None:
            raise SandboxError("the sandbox is not started")
        now, odd = self._listing()
        wanted = []
        skipped = list(odd)
        for path, stat in now.items():
            kind = stat.mode & 0o170000
            if kind not in (0o100000, 0o120000):
                skipped.append(path)  # FIFOs, sockets, devices
            elif self._changed(path, stat):
                wanted.append(path)
        fetched = self._fetch(wanted) if wanted else []
        present = [p for p in now if p not in skipped]
        return self._shadow.diff(present, fetched, skipped)

    def _changed(self, path: str, stat: _Stat) -> bool:
        """Whether a file may differ from its starting copy: a new path, another size or
        kind or executable bit, a written file (every file starts with mtime 0), or a status
        change after the copy. Only these are fetched; the shadow compares their content."""
        assert self._shadow is not None
        start = self._shadow.files.get(path)
        if start is None or stat.size != start.size or stat.mtime != "0":
            return True
        link = stat.mode & 0o170000 == 0o120000
        if link != (start.mode == SYMLINK) or (
            not link and bool(stat.mode & 0o100) != (start.mode == EXECUTABLE)
        ):
            return True
        return int(stat.ctime) > self._copied_at

    def _fetch(self, paths: list[str]) -> list[Entry]:
        """The content and mode of ``paths``, as one tar streamed through the session."""
        listing = " ".join(shlex.quote("./" + p) for p in paths)
        raw = self._live().call(
            f"cd {WORKSPACE} && tar -cf - -- {listing}", FILE_TIMEOUT, limit=MAX_CHANGES
        )
        if raw.exit_code != 0 or raw.truncated:
            raise SandboxError(
                f"fetching the changed files failed: {raw.stderr.strip()[-300:]}",
                "the change may be too large, or the image lacks tar",
            )
        return read_tar(raw.data)
