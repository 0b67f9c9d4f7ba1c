"""The relay attacked on loopback, as a real server process: slowloris, replayed and stale
signed bodies, and AstraForge's own payload shape posted to every route. Bounded in count
and time."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests import relay_helpers as rh
from tests.conftest import load_fixture
from tests.servers.github import FakeGitHub

from astraforge import events
from astraforge.events import forwarded

ALERT = load_fixture("sentry/event_alert.triggered.issue-alert.json")
TIMEOUT = 2.0


@pytest.fixture
def github(tmp_path: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(tmp_path / "gh", rh.GITHUB_TOKEN, "octo/shop") as server:
        yield server


@pytest.fixture
def relay(tmp_path: Path, github: FakeGitHub) -> Iterator[rh.RelayProcess]:
    config = rh.write_config(
        tmp_path / "relay.yml",
        github.url,
        read_timeout_seconds=TIMEOUT,
        max_pending_connections=64,
    )
    with rh.RelayProcess(config, tmp_path / "relay.log") as process:
        yield process


def idle(port: int, announce: bool) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    if announce:  # headers promising 5 MB, then nothing
        conn.sendall(
            b"POST /hooks/sentry HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
            b'Content-Length: 5000000\r\n\r\n{"action"'
        )
    return conn


def closed_within(conn: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed ``conn``, or None if it stayed open."""
    conn.settimeout(seconds)
    started = time.monotonic()
    try:
        while conn.recv(65536):
            pass
    except TimeoutError:
        return None
    except OSError:
        pass
    return time.monotonic() - started


def test_slowloris_connections_are_closed_and_health_still_answers(relay: rh.RelayProcess) -> None:
    conns = [idle(relay.port, announce=i % 2 == 0) for i in range(50)]
    started = time.monotonic()
    status, body = rh.get(relay.port, "/healthz")
    assert (status, body) == (200, '{"status":"ok"}')
    assert time.monotonic() - started < 1.0
    waited = [closed_within(conn, TIMEOUT + 3) for conn in conns]
    assert None not in waited, "an idle connection stayed open past the read timeout"
    assert time.monotonic() - started < TIMEOUT + 3
    for conn in conns:
        conn.close()


def test_connections_past_the_cap_are_closed_at_once(tmp_path: Path, github: FakeGitHub) -> None:
    config = rh.write_config(
        tmp_path / "relay.yml", github.url, read_timeout_seconds=30, max_pending_connections=10
    )
    with rh.RelayProcess(config, tmp_path / "relay.log", workers=1) as relay:
        conns = [idle(relay.port, announce=False) for _ in range(20)]
        time.sleep(0.3)
        quick = [closed_within(conn, 1.0) for conn in conns]
        for conn in conns:
            conn.close()
    assert sum(w is not None for w in quick) == 10
    assert sum(w is None for w in quick) == 10


def test_a_stale_body_is_refused_whatever_its_timestamp_header(relay: rh.RelayProcess) -> None:
    old = rh.alert_for_issue(ALERT, 1, age=3600)
    status, verdict = rh.post(relay.port, "/hooks/sentry", old, rh.sentry_headers(old))
    assert status == 401
    assert "stale event" in verdict["reason"]
    no_time = json.loads(old)
    for name in ("timestamp", "datetime"):
        no_time["data"]["event"].pop(name)
    body = json.dumps(no_time).encode()
    status, verdict = rh.post(relay.port, "/hooks/sentry", body, rh.sentry_headers(body))
    assert status == 401
    assert verdict["reason"] == "the signed body holds no event time"


def test_the_same_signed_body_is_admitted_once_whatever_headers_come_with_it(
    tmp_path: Path, github: FakeGitHub
) -> None:
    """Within the dedupe window a repeat is deduplicated; after it (a short window here),
    the body itself is remembered: the replay is refused, not forwarded again."""
    config = rh.write_config(tmp_path / "relay.yml", github.url, dedupe_window_seconds=1)
    with rh.RelayProcess(config, tmp_path / "relay.log") as relay:
        body = rh.alert_for_issue(ALERT, 2)
        first = rh.post(relay.port, "/hooks/sentry", body, rh.sentry_headers(body))
        again = rh.sentry_headers(body, age=-30) | {"X-Forwarded-For": "10.0.0.9"}
        soon = rh.post(relay.port, "/hooks/sentry", body, again)
        time.sleep(1.5)  # the dedupe window is over; the body is still within its age
        later = rh.post(relay.port, "/hooks/sentry", body, rh.sentry_headers(body) | {"A": "b"})
        time.sleep(0.5)
    assert first[1]["decision"] == "forwarded"
    assert soon[1]["decision"] == "deduplicated"
    assert later[0] == 409
    assert later[1]["reason"].startswith("replayed")
    assert len(github.dispatches) == 1


def forwarded_request() -> bytes:
    task = events.parse(load_fixture("sentry/error.created.json"))
    payload = forwarded.encode(task)
    payload["task"].update(kind="request", instruction="Add a new GitHub workflow", source="manual")
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    "path",
    [
        f"/hooks/glitchtip/{rh.SHARED_SECRET}",
        f"/hooks/sentry-legacy/{rh.SHARED_SECRET}",
        "/hooks/sentry",
    ],
)
def test_a_forwarded_shaped_request_is_refused_on_every_route(
    relay: rh.RelayProcess, github: FakeGitHub, path: str
) -> None:
    body = forwarded_request()
    headers = (
        rh.sentry_headers(body) if path == "/hooks/sentry" else {"Content-Type": "application/json"}
    )
    status, verdict = rh.post(relay.port, path, body, headers)
    assert status == 400
    assert "forwarded payload is never accepted" in verdict["reason"]
    time.sleep(0.3)
    assert github.dispatches == []
    logged = [r for r in relay.records() if r.get("event") == "webhook"]
    assert logged[-1]["decision"] == "rejected"
    assert logged[-1]["status"] == 400


def test_each_route_takes_only_its_own_format(relay: rh.RelayProcess) -> None:
    glitchtip = json.dumps(load_fixture("glitchtip/issue-alert.written-from-format.json")).encode()
    legacy = json.dumps(load_fixture("sentry/legacy-webhooks-plugin.json")).encode()
    sentry = rh.alert_for_issue(ALERT, 3)
    wrong = [
        (f"/hooks/sentry-legacy/{rh.SHARED_SECRET}", glitchtip, {}),
        (f"/hooks/glitchtip/{rh.SHARED_SECRET}", legacy, {}),
        (f"/hooks/glitchtip/{rh.SHARED_SECRET}", sentry, {}),
        ("/hooks/sentry", legacy, rh.sentry_headers(legacy)),
    ]
    for path, body, headers in wrong:
        status, verdict = rh.post(
            relay.port, path, body, {"Content-Type": "application/json", **headers}
        )
        assert status == 400, (path, verdict)
        assert verdict["decision"] == "rejected"


def test_a_sentry_comment_command_is_not_forwarded(
    relay: rh.RelayProcess, github: FakeGitHub
) -> None:
    comment = json.dumps(rh.fresh(load_fixture("sentry/comment.created.json"))).encode()
    status, verdict = rh.post(
        relay.port, "/hooks/sentry", comment, rh.sentry_headers(comment, "comment")
    )
    assert status == 400
    assert verdict["reason"] == "/hooks/sentry forwards alerts only, not a comment_command"
    assert github.dispatches == []
