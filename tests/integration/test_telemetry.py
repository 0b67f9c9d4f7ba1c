"""The runner's own crash reports, received by a local HTTP server speaking Sentry's
envelope endpoint, sent by the real sentry-sdk."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.integration.test_pipeline import FIX, local, make_checkout, run_local
from tests.servers.llm import scripted

CANARY = "ghp_" + "TelemetryCanary" * 3


class EnvelopeReceiver:
    """POST /api/<project>/envelope/: newline-separated JSON (envelope header, then item
    header and payload pairs), possibly gzip-compressed."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.auth: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.auth.append(self.headers.get("X-Sentry-Auth", ""))
                lines = body.decode().splitlines()
                for header, payload in zip(lines[1::2], lines[2::2], strict=False):
                    if json.loads(header).get("type") == "event":
                        receiver.events.append(json.loads(payload))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.server.server_address[1]}/42"


@pytest.fixture
def receiver() -> Iterator[EnvelopeReceiver]:
    r = EnvelopeReceiver()
    threading.Thread(target=r.server.serve_forever, daemon=True).start()
    yield r
    r.server.shutdown()


def test_a_crash_is_reported_scrubbed_and_tagged(
    tmp_path: Path, receiver: EnvelopeReceiver
) -> None:
    checkout = make_checkout(tmp_path)
    forge = local(tmp_path / f"forge-{CANARY}", checkout)  # its path is in sys.argv
    (forge.root / "pulls").mkdir()
    (forge.root / "pulls" / "1.json").write_text("{corrupted")  # the forge's state is broken
    with scripted(list(FIX)) as llm:
        env = {"ASTRAFORGE_SENTRY_DSN": receiver.dsn, "GITHUB_TOKEN": CANARY}
        result, report = run_local(tmp_path, llm, checkout, forge, env=env)
    assert result.returncode == 1
    assert "JSONDecodeError" in result.stderr  # a crash: the traceback is shown
    assert len(receiver.events) == 1
    event = receiver.events[0]
    assert event["tags"]["astraforge.fingerprint"] == "github:Codertocat/Hello-World#1"
    assert event["release"].startswith("astraforge@")
    assert event["exception"]["values"][-1]["type"] == "JSONDecodeError"
    text = json.dumps(event)
    assert CANARY not in text
    assert "[REDACTED]" in text  # sys.argv named the path holding the secret
    assert receiver.auth
    assert "sentry_key=publickey" in receiver.auth[0]
    assert report["conclusion"] == "error"
    assert "internal error" in report["reason"]


def test_user_errors_are_not_reported(tmp_path: Path, receiver: EnvelopeReceiver) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "astraforge", "event", "show", str(tmp_path / "missing.json")],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ASTRAFORGE_SENTRY_DSN": receiver.dsn},
    )
    assert result.returncode == 2  # a usage error: one line, no traceback, no report
    assert "no such event file" in result.stderr
    assert receiver.events == []
