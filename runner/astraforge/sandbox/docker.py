"""The Docker backend: a hardened container per run, the workspace copied in and out as tar.

Works against a local socket and a remote daemon (``DOCKER_HOST=tcp://...``, as with
GitLab's docker:dind): nothing is bind-mounted, so the container never sees the runner's
files. The workspace lives on a per-run volume (``put_archive`` cannot write into a tmpfs
or a read-only root), everything else is read-only or a size-capped tmpfs.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import os
import socket
import struct
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from astraforge.errors import SandboxError
from astraforge.progress import Progress
from astraforge.sandbox.base import Sandbox
from astraforge.sandbox.config import SANDBOX_UID, WORKSPACE, DockerConfig
from astraforge.sandbox.copyin import take
from astraforge.sandbox.daemon import LABEL, client
from astraforge.sandbox.door import Channel, Sidecar, recv_exact
from astraforge.sandbox.hardening import host_config, verify
from astraforge.sandbox.session import ShellSession
from astraforge.sandbox.volumes import provide

PULL_REPORT = 3.0  # seconds between lines about an image pull
SMALL_COPY = 1 << 20  # a starting tree up to this size is copied through the shell
COPY_TIMEOUT = 600.0


class DockerSandbox(Sandbox):
    """A hardened container per run."""

    config: DockerConfig

    def __init__(
        self,
        config: DockerConfig,
        workspace: os.PathLike[str] | str,
        *,
        run_id: str | None = None,
        progress: Progress | None = None,
    ) -> None:
        super().__init__(config, Path(workspace), run_id=run_id, progress=progress)
        self.name = f"astraforge-{self.run_id}"
        self._docker: Any = None
        self._container: Any = None
        self._volume: Any = None
        self._sock: Any = None
        self._send_lock = threading.Lock()
        self._online = config.setup_network
        self._labels: dict[str, str] = {}
        self._sidecar: Sidecar | None = None
        self._readonly: dict[str, str] = {}

    # -- lifecycle --------------------------------------------------------------------------
    def _launch(self, files: Iterable[bytes]) -> tuple[ShellSession, int]:
        import docker.errors

        self._docker = client(self.config)
        labels = self._labels = {
            LABEL: "1",
            f"{LABEL}.run": self.run_id,
            f"{LABEL}.host": socket.gethostname(),
            f"{LABEL}.pid": str(os.getpid()),
            f"{LABEL}.created": str(int(time.time())),
        }
        self._ensure_image(docker.errors)
        self._readonly = provide(self._docker, self.config.image, self.mounts, self.progress)
        # A tmpfs-backed volume: owned by the sandbox user, size-capped, and writable once
        # the container runs.
        self._volume = self._docker.volumes.create(
            name=f"{self.name}-ws",
            labels=labels,
            driver="local",
            driver_opts={
                "type": "tmpfs",
                "device": "tmpfs",
                "o": f"size={self.config.workspace_mb}m,uid={SANDBOX_UID},"
                f"gid={SANDBOX_UID},mode=0755",
            },
        )
        # The shell is the container's main process (under docker-init): the session reads
        # its stdin through one attach stream, with no exec per command.
        self._container = self._docker.containers.create(
            self.config.image,
            ["/bin/sh"],
            name=self.name,
            labels=labels,
            environment=self.environment(),
            working_dir=WORKSPACE,
            stdin_open=True,
            tty=False,
            detach=True,
            **host_config(self.config, self._volume.name, self._readonly),
        )
        if self.door is not None:  # the gateway's sidecar is made while the sandbox starts
            from astraforge.gateway import forwarder

            args = self.door.forwarder_args()
            self._sidecar = self._prepare_sidecar(forwarder.binary(), args)
        problems = verify(self._container.attrs, self.config, self._volume.name, self._readonly)
        if problems:
            raise SandboxError(
                "the sandbox container is not locked down: " + "; ".join(problems),
                "report this as a bug",
            )
        sock = self._docker.api.attach_socket(
            self._container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
        )
        self._sock = getattr(sock, "_sock", sock)
        self._sock.settimeout(None)
        session = ShellSession(self._send, self._interrupt, self.config.output_limit, WORKSPACE)
        threading.Thread(target=self._read_frames, args=(session,), daemon=True).start()
        self._container.start()
        chunks = iter(files)
        head, whole = take(chunks, SMALL_COPY)
        if whole:
            session.start()
            return session, self._copy_small(session, b"".join(head))
        copy = self._copy_exec()  # the daemon spawns it while the shell starts
        session.start()
        return session, self._copy_in(copy, itertools.chain(head, chunks))

    def _copy_small(self, session: ShellSession, data: bytes) -> int:
        """A small tree goes through the shell itself, as a here-document: no exec to
        spawn (the Engine takes ~50 ms for one)."""
        raw = session.call(
            "if command -v tar >/dev/null && command -v base64 >/dev/null; then\n"
            f"base64 -d <<'__AF_B64__' | tar -xf - -C {WORKSPACE} && date +%s\n"
            f"{base64.encodebytes(data).decode()}__AF_B64__\n"
            "else (exit 99); fi",
            COPY_TIMEOUT,
        )
        if raw.exit_code == 99:  # no tar or base64 in the image
            return self._put_archive([data])
        if raw.exit_code != 0:
            raise SandboxError(
                f"copying the workspace into the sandbox failed: {raw.stderr.strip()[-300:]}",
                "raise sandbox.disk_mb if the repository is larger than the workspace cap",
            )
        return int(raw.stdout.split()[-1]) if raw.stdout.split() else int(time.time())

    def _copy_exec(self) -> tuple[str, Any, _Frames]:
        """Start the exec that unpacks the starting files: one for the whole copy, far
        faster than the Engine's own archive upload. It says ``go`` once it runs, or ends
        with 99 when the image has no tar."""
        api = self._docker.api
        command = (
            f"command -v tar >/dev/null || exit 99; echo go; tar -xf - -C {WORKSPACE} && date +%s"
        )
        exec_id = api.exec_create(
            self._container.id,
            ["/bin/sh", "-c", command],
            stdin=True,
            user=f"{SANDBOX_UID}:{SANDBOX_UID}",
            workdir=WORKSPACE,
        )["Id"]
        attached = api.exec_start(exec_id, socket=True)
        raw = getattr(attached, "_sock", attached)
        return exec_id, raw, _Frames(raw)

    def _copy_in(self, copy: tuple[str, Any, _Frames], files: Iterable[bytes]) -> int:
        """Stream the tar into the copy exec; the sandbox's clock after it."""
        exec_id, raw, reader = copy
        if reader.started():
            try:
                for chunk in files:
                    raw.sendall(chunk)
                raw.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # tar stopped reading: its exit code and message say why
        out, err = reader.result()
        code = self._docker.api.exec_inspect(exec_id).get("ExitCode")
        with contextlib.suppress(OSError):
            raw.close()
        if code == 99:
            return self._put_archive(files)
        if code != 0:
            raise SandboxError(
                f"copying the workspace into the sandbox failed: {err.strip()[-300:]}",
                "raise sandbox.disk_mb if the repository is larger than the workspace cap",
            )
        return int(out.split()[-1]) if out.split() else int(time.time())

    def _put_archive(self, files: Iterable[bytes]) -> int:
        """The copy for images without tar: the Engine's archive upload."""
        if not self._container.put_archive(WORKSPACE, files):
            raise SandboxError("copying the workspace into the sandbox failed")
        return int(time.time())

    def _ensure_image(self, errors: Any) -> None:
        try:
            self._docker.images.get(self.config.image)
        except errors.ImageNotFound:
            try:
                self._pull()
            except errors.APIError as exc:
                raise SandboxError(
                    f"sandbox image {self.config.image!r} is not available ({exc.explanation})",
                    "pull or build the image, or set sandbox.image",
                ) from None

    def _pull(self) -> None:
        """Pull the image, saying how far it got every few seconds."""
        image = self.config.image
        self.progress.pull(f"pulling {image}")
        layers: dict[str, str] = {}
        last = time.monotonic()
        for event in self._docker.api.pull(image, stream=True, decode=True):
            if "error" in event:
                raise SandboxError(
                    f"sandbox image {image!r} could not be pulled ({event['error']})",
                    "check the image name and the registry, or set sandbox.image",
                )
            if event.get("id") and event.get("status"):
                layers[str(event["id"])] = str(event["status"])
            if time.monotonic() - last >= PULL_REPORT:
                last = time.monotonic()
                done = sum(s in ("Pull complete", "Already exists") for s in layers.values())
                self.progress.pull(f"pulling {image}: {done}/{len(layers)} layers done")
        self.progress.pull(f"pulled {image}")

    def _send(self, data: bytes) -> None:
        with self._send_lock:
            try:
                self._sock.sendall(data)
            except (OSError, AttributeError) as exc:
                raise SandboxError(f"the sandbox shell is gone ({exc})") from None

    def _interrupt(self) -> None:
        """SIGUSR1 to the shell (docker-init forwards it): its trap kills the command."""
        with contextlib.suppress(Exception):
            self._container.kill(signal="SIGUSR1")

    def _read_frames(self, session: ShellSession) -> None:
        sock = self._sock
        try:
            while True:
                header = recv_exact(sock, 8)
                if header is None:
                    break
                stream, size = header[0], struct.unpack(">I", header[4:])[0]
                remaining = size
                while remaining:
                    chunk = sock.recv(min(remaining, 1 << 16))
                    if not chunk:
                        return
                    remaining -= len(chunk)
                    session.feed(stream, chunk)
        except OSError:
            pass
        finally:
            session.close()

    def _teardown(self) -> None:
        if self._sidecar is not None:
            self._sidecar.remove()
            self._sidecar = None
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.remove(force=True)
            self._container = None
        if self._volume is not None:
            with contextlib.suppress(Exception):
                self._volume.remove(force=True)
            self._volume = None

    # -- the protocol -----------------------------------------------------------------------
    def _door_channel(self, binary: Path, args: list[str]) -> Channel:
        """A sidecar sharing the container's network namespace (works with remote daemons:
        everything goes through the Engine API), prepared while the sandbox started."""
        if self._sidecar is None:
            self._sidecar = self._prepare_sidecar(binary, args)
        return self._sidecar.channel()

    def _prepare_sidecar(self, binary: Path, args: list[str]) -> Sidecar:
        image, labels = self.config.image, self._labels
        return Sidecar(self._docker, self._container, image, binary, args, labels)

    def _go_offline(self) -> None:
        """Disconnect every network; the agent phase runs with loopback only."""
        if not self._online:
            return
        self._container.reload()
        for name in list(self._container.attrs["NetworkSettings"]["Networks"]):
            self._docker.networks.get(name).disconnect(self._container, force=True)
        self._container.reload()
        left = self._container.attrs["NetworkSettings"]["Networks"]
        if left:
            raise SandboxError(f"the sandbox is still on networks {sorted(left)} after setup")
        self._online = False

    def _oom_since(self, since: float) -> bool:
        events = self._docker.api.events(
            since=int(since) - 1,
            until=int(time.time()) + 1,
            decode=True,
            filters={"container": self._container.id, "event": "oom"},
        )
        try:
            return any(True for _ in events)
        finally:
            events.close()


class _Frames:
    """Reads a hijacked Docker stream (8-byte frame headers) to its end, in a thread."""

    def __init__(self, sock: Any) -> None:
        self._parts: dict[int, list[bytes]] = {1: [], 2: []}
        self._first = threading.Event()  # some stdout arrived, or the stream ended
        self._thread = threading.Thread(target=self._read, args=(sock,), daemon=True)
        self._thread.start()

    def _read(self, sock: Any) -> None:
        try:
            while (header := recv_exact(sock, 8)) is not None:
                size = struct.unpack(">I", header[4:])[0]
                data = recv_exact(sock, size) or b""
                self._parts.setdefault(header[0], []).append(data)
                if header[0] == 1:
                    self._first.set()
        except OSError:
            pass
        finally:
            self._first.set()

    def started(self, timeout: float = 120.0) -> bool:
        """Whether the process printed something before its stream ended."""
        self._first.wait(timeout)
        return self._thread.is_alive() or bool(self._parts[1])

    def result(self, timeout: float = 600.0) -> tuple[str, str]:
        """(stdout, stderr) once the stream ended."""
        self._thread.join(timeout)
        return (
            b"".join(self._parts[1]).decode(errors="replace"),
            b"".join(self._parts[2]).decode(errors="replace"),
        )
