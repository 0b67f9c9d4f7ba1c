"""The runner's end of the forwarder: frames over one byte stream, one thread per side.

A :class:`~astraforge.sandbox.door.Channel` is the forwarder's stdin and stdout, however
the backend reaches it (a
subprocess's pipes, or a Docker attach stream). :class:`Tunnel` reads the forwarder's frames
and joins each connection made inside the sandbox to one of the gateway's unix sockets.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable

from astraforge.errors import GatewayError
from astraforge.sandbox.door import Channel

READY, OPEN, DATA, CLOSE = 0, 1, 2, 3
HEAD = struct.Struct(">BII")
CHUNK = 65536
READY_TIMEOUT = 30.0


class _Reader:
    """Exact reads over a channel."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.buffer = bytearray()

    def exactly(self, size: int) -> bytes | None:
        while len(self.buffer) < size:
            data = self.channel.read(CHUNK)
            if not data:
                return None
            self.buffer += data
        head = bytes(self.buffer[:size])
        del self.buffer[:size]
        return head


class Tunnel:
    """Joins every connection the forwarder accepts to ``targets[port index]``."""

    def __init__(
        self, channel: Channel, targets: list[str], on_error: Callable[[str], None] | None = None
    ) -> None:
        self.channel = channel
        self.targets = targets
        self.on_error = on_error or (lambda _line: None)
        self._conns: dict[int, socket.socket] = {}
        self._lock = threading.Lock()  # one frame at a time on the channel
        self._ready = threading.Event()
        self._ended = False
        self._thread = threading.Thread(target=self._read, name="gateway-tunnel", daemon=True)

    def start(self) -> None:
        """Start reading and wait until the forwarder listens."""
        self._thread.start()
        if not self._ready.wait(READY_TIMEOUT) or self._ended:
            self.close()
            raise GatewayError(
                "the gateway's forwarder did not start in the sandbox",
                "run with -v to see its error; the sandbox's network namespace may be gone",
            )

    def close(self) -> None:
        self._ended = True
        with contextlib.suppress(Exception):
            self.channel.close()
        for conn in list(self._conns.values()):
            with contextlib.suppress(OSError):
                conn.close()
        self._conns.clear()

    def _send(self, kind: int, ident: int, data: bytes = b"") -> None:
        with self._lock, contextlib.suppress(OSError, ValueError):
            self.channel.write(HEAD.pack(kind, ident, len(data)) + data)

    def _read(self) -> None:
        reader = _Reader(self.channel)
        try:
            while True:
                head = reader.exactly(HEAD.size)
                if head is None:
                    return
                kind, ident, size = HEAD.unpack(head)
                data = reader.exactly(size) if size else b""
                if data is None:
                    return
                self._dispatch(kind, ident, data)
        except OSError as exc:
            if not self._ended:
                self.on_error(f"gateway tunnel ended: {exc}")
        finally:
            self._ended = True
            self._ready.set()

    def _dispatch(self, kind: int, ident: int, data: bytes) -> None:
        if kind == READY:
            self._ready.set()
        elif kind == OPEN:
            self._open(ident, data[0] if data else 0)
        elif kind == DATA:
            conn = self._conns.get(ident)
            if conn is not None:
                try:
                    conn.sendall(data)
                except OSError:
                    self._drop(ident)
        elif kind == CLOSE:
            conn = self._conns.get(ident)
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_WR)  # the client is done; the reply may follow

    def _open(self, ident: int, index: int) -> None:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(self.targets[index])
        except (OSError, IndexError) as exc:
            conn.close()
            self.on_error(f"gateway tunnel: cannot reach endpoint {index}: {exc}")
            self._send(CLOSE, ident)
            return
        self._conns[ident] = conn
        threading.Thread(target=self._pump, args=(ident, conn), daemon=True).start()

    def _pump(self, ident: int, conn: socket.socket) -> None:
        """The gateway's replies on one connection, back to the sandbox."""
        try:
            while True:
                data = conn.recv(CHUNK)
                if not data:
                    break
                self._send(DATA, ident, data)
        except OSError:
            pass
        self._send(CLOSE, ident)
        self._drop(ident)

    def _drop(self, ident: int) -> None:
        conn = self._conns.pop(ident, None)
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()
