"""The bubblewrap backend, for runners without a Docker daemon.

The same protocol and, wherever bwrap can express them, the same defaults: every namespace
unshared (so no network but ``lo``), all capabilities dropped, no new user namespaces inside,
read-only system directories, only a short list of the host's /etc (users and hosts are the
sandbox's own), size-capped tmpfs for /tmp, $HOME and the workspace (the starting files are
copied in from a read-only staging directory), a clean environment, and death with the
runner. As
root, the sandbox runs under a dedicated unprivileged host uid (so the process limit counts
only its own processes) and inside memory and pids cgroups when the host lets us create them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from astraforge.errors import SandboxError
from astraforge.progress import Progress
from astraforge.sandbox.base import ExecResult, Sandbox
from astraforge.sandbox.config import HOME, SANDBOX_UID, TMP, WORKSPACE, BwrapConfig
from astraforge.sandbox.door import Channel, nsenter
from astraforge.sandbox.session import STDERR, STDOUT, ShellSession
from astraforge.sandbox.tree import tar_stream

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


class BwrapSandbox(Sandbox):
    """A sandbox made with bubblewrap, for runners without Docker."""

    start_in_thread = False  # --die-with-parent: bwrap ends with the thread that ran it

    config: BwrapConfig

    def __init__(
        self,
        config: BwrapConfig,
        workspace: os.PathLike[str] | str,
        *,
        run_id: str | None = None,
        progress: Progress | None = None,
    ) -> None:
        super().__init__(config, Path(workspace), run_id=run_id, progress=progress)
        self._root: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._cgroups: _Cgroups | None = None
        self._lock = threading.Lock()
        self._bwrap = "bwrap"
        self._as_root = False
        self._online = False
        self._child: int | None = None  # host pid of the sandbox's pid 1
        self._oom_seen = 0

    def _launch(self, files: Iterable[bytes]) -> tuple[ShellSession, int]:
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxError(
                "bubblewrap (bwrap) is not installed",
                "apt-get install bubblewrap, or use the docker backend",
            )
        self._root = Path(tempfile.mkdtemp(prefix=f"astraforge-bwrap-{self.run_id}-"))
        os.chmod(self._root, 0o755)  # noqa: S103 - the sandbox uid must traverse it
        self._write_etc(self._root / "etc")
        self._bwrap, self._as_root = bwrap, os.geteuid() == 0
        if self._as_root:
            self._cgroups = _Cgroups(
                f"astraforge-{self.run_id}", self.config.memory_mb * 2**20, self.config.pids
            )
        return self._spawn(files, network=self.config.setup_network)

    def _write_etc(self, etc: Path) -> None:
        """The sandbox's own /etc files: its users and hosts, nothing of the host's."""
        etc.mkdir(mode=0o755)
        files = {
            "passwd": f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
            f"sandbox:x:{SANDBOX_UID}:{SANDBOX_UID}:sandbox:{HOME}:/bin/sh\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
            "group": f"root:x:0:\nsandbox:x:{SANDBOX_UID}:\nnogroup:x:65534:\n",
            "hosts": "127.0.0.1 localhost sandbox\n::1 localhost\n",
            "hostname": "sandbox\n",
        }
        for name, text in files.items():
            (etc / name).write_text(text)
            os.chmod(etc / name, 0o644)

    def _spawn(self, files: Iterable[bytes], network: bool) -> tuple[ShellSession, int]:
        """Start the shell (with the host network for setup only, else loopback only), and
        extract the tar stream ``files`` into the size-capped workspace through a pipe."""
        info_read, info_write = os.pipe()
        data_read, data_write = os.pipe()
        if self._as_root:  # the sandbox's uid reopens the pipe by /proc/self/fd
            os.fchown(data_read, HOST_UID, HOST_UID)
        argv = self._argv(self._bwrap, self._as_root, network, info_write)
        cgroups = self._cgroups
        self._online = network
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={},
                start_new_session=True,
                pass_fds=(info_write, data_read),
                preexec_fn=cgroups.join if cgroups else None,
            )
        finally:
            os.close(info_write)
            os.close(data_read)
        with os.fdopen(info_read, "rb") as info:
            data = info.read()
        try:
            self._child = int(json.loads(data)["child-pid"])
        except (ValueError, KeyError):
            self._child = None
        writer = threading.Thread(target=_write_all, args=(data_write, files), daemon=True)
        writer.start()
        session = ShellSession(self._send, self._interrupt, self.config.output_limit, WORKSPACE)
        for stream, pipe in ((STDOUT, self._proc.stdout), (STDERR, self._proc.stderr)):
            threading.Thread(target=self._pump, args=(stream, pipe, session), daemon=True).start()
        said = session.start(
            timeout=self.config.setup_timeout,
            prelude=(
                f'tar -xf /proc/self/fd/{data_read} -C "$AF_WORKSPACE" || exit 91; '
                'echo "__AF_COPIED $(date +%s)"'
            ),
        )
        writer.join()
        copied = [line for line in said.splitlines() if line.startswith("__AF_COPIED ")]
        return session, int(copied[-1].split()[1]) if copied else int(time.time())

    def _interrupt(self) -> None:
        """SIGUSR1 to the sandbox's shell (the child of its pid 1): its trap kills the
        command."""
        if self._child is None:
            return
        with contextlib.suppress(OSError, ValueError):
            children = Path(f"/proc/{self._child}/task/{self._child}/children").read_text()
            for pid in children.split()[:1]:
                os.kill(int(pid), signal.SIGUSR1)

    def _kill_shell(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                self._proc.wait(timeout=10)
            self._proc = None

    def _door_channel(self, binary: Path, args: list[str]) -> Channel | None:
        """``nsenter`` into the sandbox's network namespace only, once it is its own."""
        if self._online or self._child is None or self._root is None:
            return None
        local = self._root / "astraforge-forward"  # readable by the unprivileged uid
        if not local.exists():
            shutil.copyfile(binary, local)
            os.chmod(local, 0o755)  # noqa: S103 - the forwarder's uid runs it
        return nsenter(self._child, local, args, self._as_root)

    def _go_offline(self) -> None:
        if not self._online:
            return
        # A network namespace cannot be taken back: carry the workspace over to a new,
        # offline sandbox (the listing and the fetch never follow a link).
        entries = self._fetch(sorted(self._listing()[0]))
        self._kill_shell()
        self._session, _ = self._spawn(tar_stream(entries, SANDBOX_UID), network=False)

    def _argv(self, bwrap: str, as_root: bool, network: bool, info_fd: int) -> list[str]:
        cfg = self.config
        assert self._root is not None
        limits = [
            "prlimit",
            f"--nofile={cfg.nofile}",
            "--core=0",
            f"--nproc={cfg.pids}",
            # Without cgroups (an unprivileged runner) the address space is the memory
            # limit; with them the cgroup limits memory, and Node's WebAssembly (which
            # reserves ~10 GiB of address space per instance) can run.
            *([] if as_root else [f"--as={cfg.memory_mb * 2**20 * 4}"]),
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
            "--info-fd",
            str(info_fd),
        ]
        if network:
            args.append("--share-net")
        for path in cfg.ro_binds:
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.exists(path):
                args += ["--ro-bind", path, path]
        for path in cfg.etc:
            if os.path.lexists(path):
                args += ["--ro-bind", path, path]
        if network:
            args += ["--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"]
        for mount in self.mounts:
            args += ["--ro-bind", str(mount.source), mount.target]
        for name in ("passwd", "group", "hosts", "hostname"):
            args += ["--ro-bind", str(self._root / "etc" / name), f"/etc/{name}"]
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
            "--size",
            str(cfg.workspace_mb * 2**20),
            "--tmpfs",
            WORKSPACE,
            "--remount-ro",
            "/",
            "--chdir",
            WORKSPACE,
            "--clearenv",
        ]
        for key, value in self.environment().items():
            args += ["--setenv", key, value]
        return [*limits, *drop, *args, "/bin/sh"]

    def _send(self, data: bytes) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise SandboxError("the sandbox shell is gone")
        with self._lock:
            try:
                proc.stdin.write(data)
                proc.stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                raise SandboxError(f"the sandbox shell is gone ({exc})") from None

    @staticmethod
    def _pump(stream: int, pipe: IO[bytes] | None, session: ShellSession) -> None:
        assert pipe is not None
        while chunk := pipe.read1(1 << 16):  # type: ignore[attr-defined]
            session.feed(stream, chunk)
        session.close()

    def _teardown(self) -> None:
        self._kill_shell()
        if self._cgroups is not None:
            self._cgroups.remove()
            self._cgroups = None
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def _oom_since(self, since: float) -> bool:
        return bool(self._cgroups and self._cgroups.oom_kills() > self._oom_seen)

    def _exec(self, cmd: str, timeout: float, env: dict[str, str] | None = None) -> ExecResult:
        self._oom_seen = self._cgroups.oom_kills() if self._cgroups else 0
        return super()._exec(cmd, timeout, env)


def _write_all(fd: int, chunks: Iterable[bytes]) -> None:
    """Write a stream to a pipe and close it (a reader that stopped ends the writing)."""
    with os.fdopen(fd, "wb") as pipe:
        try:
            for chunk in chunks:
                pipe.write(chunk)
        except (BrokenPipeError, OSError):
            pass
