"""The relay's HTTP service, on the standard library's threading HTTP server.

Why the standard library: the relay has five routes, no templates and no sessions; each
request is a bounded body read, an HMAC, a parse and one SQLite transaction. The threading
server (one thread per connection, HTTP/1.1 keep-alive) meets the throughput goal measured
by bench/relay.py without adding a framework and an ASGI server to what a user deploys.

Routes: ``POST /hooks/sentry`` (signed), ``POST /hooks/sentry-legacy[/<secret>]``,
``POST /hooks/glitchtip[/<secret>]``, ``GET /healthz``, ``GET /metrics`` (Prometheus text).
SIGTERM stops accepting, finishes what is in flight and the outbox send under way, then exits.
``--workers N`` runs N processes on one listening socket (the GIL is per process); they share
the state (SQLite or Redis) and the metric counters.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from astraforge.relay.config import RelayConfig
from astraforge.relay.core import MAX_BODY, Counters, Relay
from astraforge.relay.state import open_store


def json_log(record: Mapping[str, Any]) -> None:
    """One JSON decision log line on stderr."""
    line = json.dumps({"ts": round(time.time(), 3), **record}, default=str)
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def make_server(
    relay: Relay, host: str, port: int, listener: socket.socket | None = None
) -> ThreadingHTTPServer:
    """The relay's HTTP server on a socket."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "astraforge-relay"
        disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

        def log_message(self, format: str, *args: Any) -> None:
            pass  # every decision is logged as JSON by the relay

        def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._send(200, b'{"status":"ok"}')
            elif self.path == "/metrics":
                self._send(200, relay.metrics().encode(), "text/plain; version=0.0.4")
            else:
                self._send(404, b'{"error":"not found"}')

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY:
                self.close_connection = True
                self._send(413, b'{"error":"body too large or unsized"}')
                return
            body = self.rfile.read(length)
            verdict = relay.receive(self.path, dict(self.headers.items()), body)
            self._send(verdict.status, json.dumps(verdict.body()).encode())

    if listener is None:
        return _Server((host, port), Handler)
    server = _Server((host, port), Handler, bind_and_activate=False)
    server.socket = listener
    server.server_address = listener.getsockname()
    return server


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
    server = make_server(relay, "", 0, listener)
    relay.start()
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
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
            }
        )
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        relay.stop()
        store.close()
