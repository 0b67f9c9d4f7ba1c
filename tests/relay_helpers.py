"""Running the relay for real (a subprocess on loopback) and signing webhooks like Sentry."""

from __future__ import annotations

import copy
import hashlib
import hmac
import http.client
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

CLIENT_SECRET = "sentry-client-secret-" + "0123456789abcdef"
SHARED_SECRET = "relay-shared-secret-" + "fedcba9876543210"
GITHUB_TOKEN = "ghp_" + "RelayDispatch" * 3


def write_config(path: Path, github_url: str, **overrides: Any) -> Path:
    config: dict[str, Any] = {
        "dedupe_window_seconds": 3600,
        "max_per_hour": 1000,
        "state": {"backend": "sqlite", "path": str(path.parent / "relay.db")},
        "routes": [
            {
                "name": "shop",
                "organization": "*",
                "project": "*",
                "max_per_hour": 1000,
                "github": {"repository": "octo/shop", "api_url": github_url},
            },
        ],
    }
    config.update(overrides)
    path.write_text(yaml.safe_dump(config))
    return path


def env() -> dict[str, str]:
    return {
        **os.environ,
        "SENTRY_CLIENT_SECRET": CLIENT_SECRET,
        "RELAY_SHARED_SECRET": SHARED_SECRET,
        "RELAY_GITHUB_TOKEN": GITHUB_TOKEN,
    }


class RelayProcess:
    def __init__(
        self, config: Path, log: Path, workers: int | None = None, script: Path | None = None
    ) -> None:
        self.config, self.log_path = config, log
        self.workers = workers
        self.script = script  # another server taking --config and --workers (a benchmark's)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> RelayProcess:
        self._log = self.log_path.open("ab")
        command = (
            [str(self.script)]
            if self.script
            else ["-m", "astraforge", "relay", "serve", "--port", "0"]
        )
        workers = ["--workers", str(self.workers)] if self.workers else []
        self.proc = subprocess.Popen(
            [sys.executable, *command, "--config", str(self.config), *workers],
            stderr=subprocess.PIPE,
            env=env(),
        )
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 30
        other: list[str] = []
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self._log.write(line)
            try:
                record = json.loads(line)
            except ValueError:
                other.append(line.decode(errors="replace"))  # a warning, or a traceback
                continue
            if record.get("event") == "listening":
                self.port = int(record["port"])
                break
        assert self.port, "the relay did not start: " + "".join(other)[-2000:]
        import threading

        threading.Thread(target=self._pump, daemon=True).start()
        return self

    def _pump(self) -> None:
        assert self.proc is not None
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._log.write(line)
            self._log.flush()

    def stop(self, signal_number: int = 15, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal_number)
        code = self.proc.wait(timeout)
        time.sleep(0.1)
        self._log.flush()
        return code

    def records(self) -> list[dict[str, Any]]:
        self._log.flush()
        records = []
        for line in self.log_path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # not a relay record (a warning from the interpreter)
        return records

    def __enter__(self) -> RelayProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()


def sign(body: bytes, secret: str = CLIENT_SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sentry_headers(
    body: bytes, resource: str = "event_alert", *, age: float = 0, signature: str | None = None
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Sentry-Hook-Resource": resource,
        "Sentry-Hook-Timestamp": str(int(time.time() - age)),
        "Sentry-Hook-Signature": sign(body) if signature is None else signature,
    }


def post(
    port: int,
    path: str,
    body: bytes,
    headers: dict[str, str],
    connection: http.client.HTTPConnection | None = None,
) -> tuple[int, dict[str, Any]]:
    conn = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    if connection is None:
        conn.close()
    return response.status, json.loads(data) if data else {}


def get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    response = conn.getresponse()
    text = response.read().decode()
    conn.close()
    return response.status, text


_EVENTS = itertools.count()


def fresh(payload: dict[str, Any], age: float = 0) -> dict[str, Any]:
    """A copy of a Sentry webhook whose signed body says its event happened ``age`` seconds
    ago (the fixtures are years old; the relay takes the event's time from the body)."""
    payload = copy.deepcopy(payload)
    now = time.time() - age
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(now))
    data = payload.get("data") or {}
    for name in ("event", "error"):
        if isinstance(data.get(name), dict):
            data[name]["timestamp"], data[name]["datetime"] = now, stamp
    if isinstance(data.get("issue"), dict):
        data["issue"]["lastSeen"] = stamp
    if isinstance(data.get("metric_alert"), dict):
        data["metric_alert"]["date_detected"] = stamp
    if "timestamp" in data:  # a comment
        data["timestamp"] = stamp
    return payload


def alert_for_issue(template: dict[str, Any], issue: int, age: float = 0) -> bytes:
    """The event_alert fixture, as a new event of Sentry issue ``issue`` happening now."""
    payload = fresh(template, age)
    event = payload["data"]["event"]
    event["issue_id"] = str(10_000 + issue)
    event["event_id"] = f"{issue:08x}{next(_EVENTS):024x}"
    return json.dumps(payload).encode()
