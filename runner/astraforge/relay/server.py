"""The relay's HTTP service, on aiohttp's low-level server.

Why aiohttp: one event loop per worker serves thousands of keep-alive connections without a
thread each, reads bodies in chunks with a hard cap, and shuts down gracefully; it is one
well-kept package (also the gateway's), with no ASGI layer in between. bench/relay.py
measures it against the standard library's threading server in the same run.

Routes: ``POST /hooks/sentry`` (signed), ``POST /hooks/sentry-legacy[/<secret>]``,
``POST /hooks/glitchtip[/<secret>]``, ``GET /healthz``, ``GET /metrics`` (Prometheus text).
A connection must deliver each request (headers and body) within ``read_timeout_seconds`` and
at most ``max_pending_connections`` per worker may be waiting for one; bodies are capped
while they are read, before any parsing. SIGTERM stops accepting, finishes what is in flight
and the outbox send under way, then exits. ``--workers N`` runs N processes on one listening
socket; they share the state (SQLite or Redis) and the metric counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from astraforge.relay.config import RelayConfig
from astraforge.relay.core import MAX_BODY, Counters, Relay
from astraforge.relay.state import open_store

SHUTDOWN_SECONDS = 30.0
CHUNK = 65536


def json_log(record: Mapping[str, Any]) -> None:
    """One JSON decision log line on stderr."""
    line = json.dumps({"ts": round(time.time(), 3), **record}, default=str)
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class Guard:
    """Connections still waiting for a whole request: counted, capped, and closed when a
    request takes longer than the read timeout to arrive (slowloris, idle keep-alive)."""

    def __init__(self, cap: int, timeout: float) -> None:
        self.cap = cap
        self.timeout = timeout
        self.waiting = 0
        self.refused = 0
        self.expired = 0


class _Connection(RequestHandler):
    """aiohttp's connection handler, with the guard's deadline on every request."""

    guard: Guard

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._af_waiting = False
        self._af_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        if self.guard.waiting >= self.guard.cap:
            self.guard.refused += 1
            transport.close()
            return
        self.wait_for_request()

    def wait_for_request(self) -> None:
        """Start the clock for the next request's headers and body."""
        if not self._af_waiting:
            self._af_waiting = True
            self.guard.waiting += 1
        if self._af_timer is not None:
            self._af_timer.cancel()
        self._af_timer = asyncio.get_running_loop().call_later(self.guard.timeout, self._expire)

    def request_read(self) -> None:
        """The request is in: the connection no longer counts as waiting."""
        if self._af_timer is not None:
            self._af_timer.cancel()
            self._af_timer = None
        if self._af_waiting:
            self._af_waiting = False
            self.guard.waiting -= 1

    def _expire(self) -> None:
        self.guard.expired += 1
        self.request_read()
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.request_read()
        super().connection_lost(exc)


class _Service(web.Server):
    """The low-level server, making guarded connections."""

    def __init__(self, guard: Guard, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = guard

    def __call__(self) -> RequestHandler:
        connection = _Connection(self, loop=self._loop, **self._kwargs)
        connection.guard = self.guard
        return connection


def _json(status: int, data: Mapping[str, Any]) -> web.Response:
    body = json.dumps(data, separators=(",", ":")).encode()
    return web.Response(status=status, body=body, content_type="application/json")


async def _read_body(request: web.BaseRequest) -> bytes | None:
    """The body, or None when it is larger than the cap (read no further than the cap)."""
    if (request.content_length or 0) > MAX_BODY:
        return None
    chunks, size = [], 0
    while chunk := await request.content.read(CHUNK):
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _get(relay: Relay, request: web.BaseRequest) -> web.Response:
    if request.method != "GET":
        return _json(405, {"error": "POST a webhook, or GET /healthz or /metrics"})
    if request.path == "/healthz":
        return _json(200, {"status": "ok"})
    if request.path == "/metrics":
        return web.Response(text=relay.metrics(), content_type="text/plain", charset="utf-8")
    return _json(404, {"error": "not found"})


def handler(relay: Relay) -> Any:
    """The relay's request handler: health, metrics and the webhook routes."""

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        connection: Any = request.protocol
        try:
            if request.method != "POST":
                connection.request_read()
                return _get(relay, request)
            body = await _read_body(request)
            connection.request_read()
            if body is None:
                response = _json(413, {"error": "body larger than 5 MiB"})
                response.force_close()
                return response
            verdict = relay.receive(request.path_qs, dict(request.headers), body)
            return _json(verdict.status, verdict.body())
        finally:
            if connection.transport is not None:
                connection.wait_for_request()

    return handle


def serve(
    config: RelayConfig, host: str, port: int, env: Mapping[str, str], workers: int = 1
) -> None:
    """Serve until SIGTERM; ``workers`` processes share the listening socket and the state."""
    config.secret(config.sentry_client_secret_env, env)  # fail at start, not at a webhook
    listener = socket.create_server((host, port), backlog=512)
    # Every worker wakes on a new connection and one wins it: the others must not block in
    # accept() (they would miss SIGTERM), so the listening socket never blocks.
    listener.setblocking(False)
    counters = Counters(config, shared=workers > 1)
    # Create the schema and recover cut-short sends once, before any worker exists.
    first = open_store(config.state.backend, config.state.path, config.state.redis_url)
    if first.recovered():
        json_log(
            {
                "event": "recovered",
                "count": first.recovered(),
                "note": "sends cut short by a crash are sent again",
            }
        )
    first.close()
    children = []
    for _ in range(workers - 1):
        pid = os.fork()
        if pid == 0:  # a worker: no threads exist yet in this process
            _die_with_parent()
            try:
                _worker(config, env, listener, counters, announce=False)
            finally:
                os._exit(0)
        children.append(pid)
    try:
        _worker(config, env, listener, counters, announce=True, workers=workers)
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        listener.close()
        json_log({"event": "stopped"})


def _die_with_parent() -> None:
    """Linux: a worker gets SIGTERM when the main process dies, even by SIGKILL."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker(
    config: RelayConfig,
    env: Mapping[str, str],
    listener: socket.socket,
    counters: Counters,
    *,
    announce: bool,
    workers: int = 1,
) -> None:
    store = open_store(
        config.state.backend, config.state.path, config.state.redis_url, recover=False
    )
    relay = Relay(config, store, env, json_log, counters)
    relay.start()
    try:
        asyncio.run(_serve_async(config, relay, listener, announce=announce, workers=workers))
    finally:
        relay.stop()
        store.close()


async def _serve_async(
    config: RelayConfig, relay: Relay, listener: socket.socket, *, announce: bool, workers: int
) -> None:
    loop = asyncio.get_running_loop()
    guard = Guard(config.max_pending_connections, config.read_timeout_seconds)
    service = _Service(
        guard,
        handler(relay),
        loop=loop,
        keepalive_timeout=config.read_timeout_seconds,
        access_log=None,
        max_line_size=8190,
        max_field_size=8190,
        lingering_time=1.0,
    )
    server = await loop.create_server(service, sock=listener, backlog=512)
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    if announce:
        host, port = listener.getsockname()[:2]
        json_log(
            {
                "event": "listening",
                "host": host,
                "port": port,
                "workers": workers,
                "state": config.state.backend,
                "routes": [r.name for r in config.routes],
                "server": "aiohttp",
            }
        )
    await stopping.wait()
    server.close()  # no new connections; the ones in flight finish
    await service.shutdown(SHUTDOWN_SECONDS)
    with contextlib.suppress(Exception):
        await server.wait_closed()
