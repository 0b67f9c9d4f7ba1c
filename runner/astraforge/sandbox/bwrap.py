"""The bubblewrap backend, for runners without a Docker daemon.

The same protocol and, wherever bwrap can express them, the same defaults: every namespace
unshared (so no network but ``lo``), all capabilities dropped, no new user namespaces inside,
read-only system directories, size-capped tmpfs for /tmp and $HOME, a copy of the workspace
as the only writable host directory, a clean environment, and death with the runner. As
root, the sandbox runs under a dedicated unprivileged host uid (so the process limit counts
only its own processes) and inside memory and pids cgroups when the host lets us create them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path
from typing import IO

from astraforge.errors import SandboxError
from astraforge.sandbox.base import Changes, ExecResult, Lifecycle
from astraforge.sandbox.config import HOME, SANDBOX_UID, TMP, WORKSPACE, BwrapConfig
from astraforge.sandbox.session import STDERR, STDOUT, ShellSession
from astraforge.sandbox.workspace import Shadow, extract, pack, resolve_nofollow

HOST_UID = 61000  # the unprivileged host account a root runner drops to
CGROUP_ROOT = Path("/sys/fs/cgroup")


class _Cgroups:
    """Memory and pids limits through cgroup v1 or v2, when the host allows it."""

    def __init__(self, name: str, memory_bytes: int, pids: int) -> None:
        self.dirs: list[Path] = []
        self.memory: Path | None = None
        v2 = (CGROUP_ROOT / "cgroup.controllers").exists()
        with contextlib.suppress(OSError):
            if v2:
                group = CGROUP_ROOT / name
                group.mkdir()
                self.dirs.append(group)
                (group / "memory.max").write_text(str(memory_bytes))
                (group / "memory.swap.max").write_text("0")
                (group / "pids.max").write_text(str(pids))
                self.memory = group
            else:
                for controller, files in (
                    ("memory", {"memory.limit_in_bytes": memory_bytes}),
                    ("pids", {"pids.max": pids}),
                ):
                    group = CGROUP_ROOT / controller / name
                    group.mkdir()
                    self.dirs.append(group)
                    for key, value in files.items():
                        (group / key).write_text(str(value))
                    if controller == "memory":
                        self.memory = group
                        with contextlib.suppress(OSError):
                            (group / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))

    def join(self) -> None:
        """Called in the child before exec: move it into every group."""
        for group in self.dirs:
            with contextlib.suppress(OSError):
                (group / "cgroup.procs").write_text(str(os.getpid()))

    def oom_kills(self) -> int:
        if self.memory is None:
            return 0
        for name, key in (("memory.events", "oom_kill"), ("memory.oom_control", "oom_kill")):
            with contextlib.suppress(OSError):
                for line in (self.memory / name).read_text().splitlines():
                    field, _, value = line.partition(" ")
                    if field == key:
                        return int(value)
        return 0

    def remove(self) -> None:
        for group in reversed(self.dirs):
            procs = group / "cgroup.procs"
            with contextlib.suppress(OSError):
                for pid in procs.read_text().split():
                    os.kill(int(pid), signal.SIGKILL)
            for _ in range(50):
                try:
                    group.rmdir()
                    break
                except OSError:
                    threading.Event().wait(0.05)


class BwrapSandbox(Lifecycle):
    config: BwrapConfig

    def __init__(
        self, config: BwrapConfig, workspace: os.PathLike[str] | str, *, run_id: str | None = None
    ) -> None:
        self.config = config
        self.source = Path(workspace)
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self._root: Path | None = None
        self._ws: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._session: ShellSession | None = None
        self._shadow: Shadow | None = None
        self._cgroups: _Cgroups | None = None
        self._lock = threading.Lock()
        self._bwrap = "bwrap"
        self._as_root = False
        self._online = False

    def _start(self) -> None:
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxError(
                "bubblewrap (bwrap) is not installed",
                "apt-get install bubblewrap, or use the docker backend",
            )
        self._root = Path(tempfile.mkdtemp(prefix=f"astraforge-bwrap-{self.run_id}-"))
        self._ws = self._root / "workspace"
        self._ws.mkdir()
        with tempfile.TemporaryFile() as archive:
            pack(self.source, archive, exclude=self.config.exclude)
            self._shadow = Shadow(archive)
            archive.seek(0)
            extract(archive, self._ws)
        as_root = os.geteuid() == 0
        if as_root:
            os.chmod(self._root, 0o755)  # noqa: S103 - the sandbox uid must traverse it
            for path in [self._ws, *self._ws.rglob("*")]:
                os.lchown(path, HOST_UID, HOST_UID)
            self._cgroups = _Cgroups(
                f"astraforge-{self.run_id}", self.config.memory_mb * 2**20, self.config.pids
            )
        self._bwrap, self._as_root = bwrap, as_root
        self._spawn(network=self.config.setup_network)

    def _spawn(self, network: bool) -> None:
        """Start the shell: with the host network for setup only, else loopback only."""
        argv = self._argv(self._bwrap, self._as_root, network)
        cgroups = self._cgroups
        self._online = network
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={},
            start_new_session=True,
            preexec_fn=cgroups.join if cgroups else None,
        )
        session = ShellSession(self._send, self.config.output_limit, WORKSPACE)
        self._session = session
        for stream, pipe in ((STDOUT, self._proc.stdout), (STDERR, self._proc.stderr)):
            threading.Thread(target=self._pump, args=(stream, pipe, session), daemon=True).start()
        session.start()

    def _kill_shell(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                self._proc.wait(timeout=10)
            self._proc = None

    def _go_offline(self) -> None:
        if self._online:
            # A network namespace cannot be taken back: replace the shell with an offline one.
            self._kill_shell()
            self._spawn(network=False)

    def _argv(self, bwrap: str, as_root: bool, network: bool) -> list[str]:
        cfg = self.config
        limits = [
            "prlimit",
            f"--nofile={cfg.nofile}",
            "--core=0",
            f"--nproc={cfg.pids}",
            f"--as={cfg.memory_mb * 2**20 * 4}",
            "--",
        ]
        drop = (
            ["setpriv", f"--reuid={HOST_UID}", f"--regid={HOST_UID}", "--clear-groups", "--"]
            if as_root
            else []
        )
        args = [
            bwrap,
            "--unshare-all",
            "--unshare-user",
            "--disable-userns",
            "--uid",
            str(SANDBOX_UID),
            "--gid",
            str(SANDBOX_UID),
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--hostname",
            "sandbox",
        ]
        if network:
            args.append("--share-net")
        for path in cfg.ro_binds:
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.exists(path):
                args += ["--ro-bind", path, path]
        args += [
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--size",
            str(cfg.tmp_mb * 2**20),
            "--tmpfs",
            TMP,
            "--size",
            str(cfg.home_mb * 2**20),
            "--tmpfs",
            HOME,
            "--bind",
            str(self._ws),
            WORKSPACE,
            "--remount-ro",
            "/",
            "--chdir",
            WORKSPACE,
            "--clearenv",
        ]
        env = cfg.environment()
        for key, value in env.items():
            args += ["--setenv", key, value]
        return [*limits, *drop, *args, "/bin/sh"]

    def _send(self, data: bytes) -> None:
        assert self._proc is not None
        assert self._proc.stdin is not None
        with self._lock:
            try:
                self._proc.stdin.write(data)
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                raise SandboxError(f"the sandbox shell is gone ({exc})") from None

    @staticmethod
    def _pump(stream: int, pipe: IO[bytes] | None, session: ShellSession) -> None:
        assert pipe is not None
        while chunk := pipe.read1(1 << 16):  # type: ignore[attr-defined]
            session.feed(stream, chunk)
        session.close()

    def stop(self) -> None:
        self._kill_shell()
        if self._cgroups is not None:
            self._cgroups.remove()
            self._cgroups = None
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
        if self._shadow is not None:
            self._shadow.close()
            self._shadow = None
        self._session = None

    def _session_run(self, cmd: str, timeout: float, env: dict[str, str] | None) -> ExecResult:
        if self._session is None:
            raise SandboxError("the sandbox is not started")
        before = self._cgroups.oom_kills() if self._cgroups else 0
        result = self._session.run(cmd, timeout, env)
        if self._cgroups and self._cgroups.oom_kills() > before:
            result = ExecResult(**{**result.__dict__, "oom_killed": True})
        return result

    def _host_path(self, path: str) -> tuple[Path, str]:
        if self._ws is None:
            raise SandboxError("the sandbox is not started")
        return self._ws, path

    def read_file(self, path: str) -> bytes:
        root, rel = self._host_path(path)
        fd = resolve_nofollow(root, rel, os.O_RDONLY)
        with os.fdopen(fd, "rb") as handle:
            return handle.read()

    def write_file(self, path: str, data: bytes) -> None:
        root, rel = self._host_path(path)
        fd = resolve_nofollow(
            root,
            rel,
            os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
            create_dirs=True,
            owner=HOST_UID if os.geteuid() == 0 else None,
        )
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)

    def list_files(self) -> list[str]:
        root, _ = self._host_path(".")
        found = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d != ".git"]
            base = Path(dirpath)
            found += [str((base / n).relative_to(root)) for n in filenames]
            found += [
                str((base / d).relative_to(root)) for d in dirnames if (base / d).is_symlink()
            ]
        return sorted(found)

    def changes(self) -> Changes:
        root, _ = self._host_path(".")
        if self._shadow is None:
            raise SandboxError("the sandbox is not started")
        with tempfile.TemporaryFile() as archive:
            pack(root, archive)
            return self._shadow.diff(archive)
