"""A loopback HTTP server that records every request it gets: where a secret must not go.

It answers 404 by default; ``redirect_to`` makes it answer 302 to another URL instead, to
see whether a client carries a credential across hosts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Hit:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Sink:
    def __init__(self, redirect_to: str | None = None) -> None:
        self.hits: list[Hit] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                sink.hits.append(Hit(self.command, self.path, dict(self.headers), body))
                if redirect_to is not None:
                    self.send_response(302)
                    self.send_header("Location", redirect_to + self.path)
                else:
                    self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def carried(self, secret: str) -> list[Hit]:
        """The requests that carried ``secret`` anywhere (headers or body)."""
        return [h for h in self.hits if secret in repr(h.headers) or secret.encode() in h.body]

    def __enter__(self) -> Sink:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
