"""The egress proxy: CONNECT for HTTPS (no TLS interception), plain forwarding for HTTP,
only to the hosts on the allow list, every connection counted.

The proxy resolves names itself (the sandbox has no DNS) and never connects to a loopback,
private, link-local or metadata address that no trusted setting names (see
:mod:`astraforge.gateway.allow`). A denied request gets 403 and a log line naming the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from astraforge.gateway.allow import AllowList

HEAD_LIMIT = 64 * 1024
CONNECT_TIMEOUT = 15.0
HEAD_TIMEOUT = 30.0
HOP_HEADERS = {"proxy-connection", "proxy-authorization", "connection", "keep-alive"}


@dataclass
class Connection:
    """One connection the sandbox asked for, and what became of it."""

    host: str
    port: int
    decision: str  # allowed | denied
    reason: str = ""
    method: str = ""
    address: str = ""
    bytes_up: int = 0
    bytes_down: int = 0
    started: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["started"] = round(self.started, 3)
        return data


class Denied(Exception):
    """The proxy refuses the connection; the message says why."""


class EgressProxy:
    """Serves one sandbox's HTTP(S) proxy connections."""

    def __init__(self, allow: AllowList, log: Callable[[str], None]) -> None:
        self.allow = allow
        self.log = log
        self.connections: list[Connection] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            await _refuse(writer, 400, "not an HTTP proxy request")
            return
        method, target, version = parts
        try:
            if method == "CONNECT":
                host, port = _host_port(target)
                record = Connection(host, port, "allowed", method=method)
                upstream = await self._open(record)
                writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                await self._pipe(record, reader, writer, *upstream)
                return
            url = urlsplit(target)
            if url.scheme != "http" or not url.hostname:
                await _refuse(writer, 400, "the proxy takes CONNECT, or http:// URLs")
                return
            record = Connection(url.hostname, url.port or 80, "allowed", method=method)
            upstream = await self._open(record)
        except Denied as exc:
            await _refuse(writer, 403, str(exc))
            return
        path = url.path or "/"
        request = [f"{method} {path}{'?' + url.query if url.query else ''} {version}"]
        request += [
            line
            for line in lines[1:]
            if line and line.split(":", 1)[0].strip().lower() not in HOP_HEADERS
        ]
        request.append("Connection: close")
        first = ("\r\n".join(request) + "\r\n\r\n").encode("latin-1")
        upstream[1].write(first)
        record.bytes_up += len(first)
        await self._pipe(record, reader, writer, *upstream)

    async def _open(self, record: Connection) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Check, resolve and connect; the connection is listed whatever the outcome."""
        self.connections.append(record)
        where = f"{record.host}:{record.port}"
        if not self.allow.allows(record.host, record.port):
            self._deny(record, "not on the allow list")
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(record.host, record.port, type=socket.SOCK_STREAM)
        except OSError:
            self._deny(record, "the name does not resolve")
        addresses = [str(info[4][0]) for info in infos]
        usable = [a for a in addresses if self.allow.may_connect(ipaddress.ip_address(a))]
        if not usable:
            self._deny(record, f"it resolves to a private address ({addresses[0]})")
        for address in usable:
            try:
                opened = await asyncio.wait_for(
                    asyncio.open_connection(address, record.port), CONNECT_TIMEOUT
                )
            except (OSError, TimeoutError):
                continue
            record.address = address
            self.log(f"gateway: allowed {where} ({address})")
            return opened
        self._deny(record, "the host does not answer")
        raise AssertionError("unreachable")

    def _deny(self, record: Connection, reason: str) -> None:
        record.decision, record.reason = "denied", reason
        where = f"{record.host}:{record.port}"
        self.log(f"gateway: denied {where}: {reason}")
        raise Denied(f"AstraForge gateway: {where} is refused: {reason}")

    async def _pipe(
        self,
        record: Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter, up: bool) -> None:
            try:
                while data := await src.read(65536):
                    if up:
                        record.bytes_up += len(data)
                    else:
                        record.bytes_down += len(data)
                    dst.write(data)
                    await dst.drain()
                if dst.can_write_eof():
                    dst.write_eof()
            except (OSError, RuntimeError):
                pass

        try:
            await asyncio.gather(copy(reader, up_writer, True), copy(up_reader, writer, False))
        finally:
            for end in (writer, up_writer):
                end.close()
                with contextlib.suppress(OSError, RuntimeError):
                    await end.wait_closed()


def _host_port(target: str) -> tuple[str, int]:
    """A CONNECT target's host and port."""
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise Denied(f"AstraForge gateway: {target!r} is not host:port")
    return host.strip("[]").lower(), int(port)


async def _refuse(writer: asyncio.StreamWriter, status: int, message: str) -> None:
    reason = {400: "Bad Request", 403: "Forbidden"}[status]
    body = (message + "\n").encode()
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(OSError, RuntimeError):
        await writer.drain()
    writer.close()
