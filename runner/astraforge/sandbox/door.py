"""The gateway's door into a sandbox: the forwarder run beside the sandbox, sharing only its
network namespace, with its stdio as the tunnel's channel.

- Docker (local or remote daemon): a sidecar container from the sandbox's own image with
  ``network_mode=container:<sandbox>``, the static forwarder copied in, every capability
  dropped, and its stdio on one attach stream. Nothing depends on what the image contains.
- bubblewrap: ``nsenter`` into the sandbox's network namespace only (as an unprivileged
  uid when the runner is root), so the sandbox's processes can neither see nor signal it.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import struct
import subprocess
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from astraforge.errors import SandboxError

NOBODY = 65534
FORWARDER = "/astraforge-forward"


class Channel(Protocol):
    """The forwarder's stdio, however the backend reaches it."""

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes of the forwarder's stdout; b"" once it ended."""

    def write(self, data: bytes) -> None:
        """Bytes to the forwarder's stdin."""

    def close(self) -> None:
        """Stop the forwarder and release the stream."""


class Door(Protocol):
    """What a sandbox needs of the gateway: its variables, its forwarder's arguments, and
    a place for the channel."""

    def environment(self) -> dict[str, str]: ...

    def forwarder_args(self) -> list[str]: ...

    def attach(self, channel: Channel) -> None: ...


class PipeChannel:
    """The forwarder as a local process: its pipes are the channel."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc

    def read(self, size: int) -> bytes:
        assert self.proc.stdout is not None
        return os.read(self.proc.stdout.fileno(), size)

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=5)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()


def nsenter(child_pid: int, binary: Path, args: list[str], as_root: bool) -> PipeChannel:
    """Run the forwarder in the network namespace of ``child_pid`` (bubblewrap's pid 1)."""
    enter = ["nsenter", f"--target={child_pid}", "--net"]
    if as_root:  # root may enter any namespace; the forwarder itself needs no privilege
        enter += ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
    else:  # an unprivileged runner owns bwrap's user namespace and may enter it
        enter[3:3] = ["--user", "--preserve-credentials"]
    proc = subprocess.Popen(
        [*enter, str(binary), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        start_new_session=True,
    )
    return PipeChannel(proc)


class AttachChannel:
    """The sidecar's stdio over one Docker attach stream (8-byte frame headers out)."""

    def __init__(self, sock: Any, remove: Callable[[], None]) -> None:
        self.sock = sock
        self.remove = remove
        self._left = 0
        self._stream = 1

    def read(self, size: int) -> bytes:
        while True:
            if self._left == 0:
                head = recv_exact(self.sock, 8)
                if head is None:
                    return b""
                self._stream, self._left = head[0], struct.unpack(">I", head[4:])[0]
                continue
            data: bytes = self.sock.recv(min(size, self._left))
            if not data:
                return b""
            self._left -= len(data)
            if self._stream == 1:
                return data

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()
        self.remove()


class Sidecar:
    """The forwarder in a sidecar container sharing the sandbox's network namespace. It is
    created, filled and attached in a thread while the sandbox starts; :meth:`channel`
    starts it once the sandbox runs."""

    def __init__(
        self,
        docker: Any,
        container: Any,
        image: str,
        binary: Path,
        args: list[str],
        labels: dict[str, str],
    ) -> None:
        self._side: Any = None
        self._sock: Any = None
        self._error: BaseException | None = None
        settings = {
            "entrypoint": [FORWARDER],
            "name": f"{container.name}-door",
            "labels": labels,
            "network_mode": f"container:{container.id}",
            "user": f"{NOBODY}:{NOBODY}",
            "stdin_open": True,
            "tty": False,
            "detach": True,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "pids_limit": 16,
            "mem_limit": "64m",
            "environment": {},
        }
        self._thread = threading.Thread(
            target=self._prepare,
            args=(docker, image, args, settings, binary),
            name="sidecar",
            daemon=True,
        )
        self._thread.start()

    def _prepare(
        self, docker: Any, image: str, args: list[str], settings: dict[str, Any], binary: Path
    ) -> None:
        try:
            self._side = docker.containers.create(image, args, **settings)
            data = io.BytesIO()
            with tarfile.open(fileobj=data, mode="w") as tar:
                info = tarfile.TarInfo(FORWARDER.lstrip("/"))
                info.size, info.mode = binary.stat().st_size, 0o755
                with binary.open("rb") as handle:
                    tar.addfile(info, handle)
            if not self._side.put_archive("/", data.getvalue()):
                raise SandboxError("copying the gateway's forwarder into its sidecar failed")
            params = {"stdin": 1, "stdout": 1, "stream": 1}
            raw = docker.api.attach_socket(self._side.id, params=params)
            self._sock = getattr(raw, "_sock", raw)
            self._sock.settimeout(None)
        except BaseException as exc:
            self._error = exc

    def channel(self) -> AttachChannel:
        """Start the prepared sidecar; its stdio as the tunnel's channel."""
        self._thread.join()
        if self._error is not None:
            self.remove()
            raise self._error
        try:
            self._side.start()
        except Exception:
            self.remove()
            raise
        return AttachChannel(self._sock, self.remove)

    def remove(self) -> None:
        """Remove the sidecar; safe to call more than once."""
        self._thread.join()
        if self._side is not None:
            with contextlib.suppress(Exception):
                self._side.remove(force=True)
            self._side = None


def recv_exact(sock: socket.socket, size: int) -> bytes | None:
    """Exactly ``size`` bytes from a socket, or None when it ends first."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data
