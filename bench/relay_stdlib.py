"""The relay's HTTP layer as it was before aiohttp: the standard library's threading server
(one thread per connection), in N pre-forked processes on one socket, calling the same
``Relay.receive``. bench/relay.py runs it as the baseline, in the same run as the relay.

    python bench/relay_stdlib.py --config relay.yml [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from astraforge.relay import config as relay_config
from astraforge.relay.core import MAX_BODY, Counters, Relay
from astraforge.relay.server import json_log
from astraforge.relay.state import open_store


def handler(relay: Relay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.close_connection = True
                self._send(413, b"{}")
                return
            body = self.rfile.read(length)
            verdict = relay.receive(self.path, dict(self.headers.items()), body)
            self._send(verdict.status, json.dumps(verdict.body()).encode())

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    args = parser.parse_args()
    config = relay_config.load(args.config)
    listener = socket.create_server(("127.0.0.1", 0), backlog=512)
    counters = Counters(config, shared=args.workers > 1)
    open_store(config.state.backend, config.state.path, config.state.redis_url).close()
    children = []
    for _ in range(args.workers - 1):
        pid = os.fork()
        if pid == 0:
            serve(config, listener, counters, announce=False)
            os._exit(0)
        children.append(pid)
    try:
        serve(config, listener, counters, announce=True)
    finally:
        for pid in children:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)


def serve(config: Any, listener: socket.socket, counters: Counters, announce: bool) -> None:
    store = open_store(
        config.state.backend, config.state.path, config.state.redis_url, recover=False
    )
    relay = Relay(config, store, os.environ, json_log, counters)  # logs every decision too
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(relay), bind_and_activate=False)
    server.socket = listener
    server.daemon_threads = True
    relay.start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if announce:
        json_log({"event": "listening", "port": listener.getsockname()[1]})
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        relay.stop()
        store.close()


if __name__ == "__main__":
    main()
