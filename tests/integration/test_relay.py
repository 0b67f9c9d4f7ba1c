"""The relay, run for real on loopback, driven by real HTTP clients, forwarding to local
stand-ins of GitHub's dispatch and GitLab's trigger endpoints."""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests import relay_helpers as rh
from tests.conftest import FIXTURES, load_fixture
from tests.servers.github import FakeGitHub
from tests.servers.gitlab import FakeGitLab

from astraforge import events
from astraforge.events import forwarded
from astraforge.task import Source

ALERT = load_fixture("sentry/event_alert.triggered.issue-alert.json")


@pytest.fixture
def github(tmp_path: Path) -> Iterator[FakeGitHub]:
    server = FakeGitHub(tmp_path / "gh", rh.GITHUB_TOKEN, "octo/shop")
    with server:
        yield server


@pytest.fixture
def relay(tmp_path: Path, github: FakeGitHub) -> Iterator[rh.RelayProcess]:
    config = rh.write_config(tmp_path / "relay.yml", github.url)
    with rh.RelayProcess(config, tmp_path / "relay.log") as process:
        yield process


def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_signed_alert_is_forwarded_as_the_same_task(
    relay: rh.RelayProcess, github: FakeGitHub
) -> None:
    body = rh.alert_for_issue(ALERT, 1)
    status, verdict = rh.post(relay.port, "/hooks/sentry", body, rh.sentry_headers(body))
    assert (status, verdict["decision"]) == (202, "forwarded")
    wait_for(lambda: len(github.dispatches) == 1)
    sent = github.dispatches[0]
    assert sent["event_type"] == "astraforge-alert"
    relayed = forwarded.decode(sent["client_payload"])
    original = events.parse(json.loads(body), Source.SENTRY, event_name="event_alert")
    assert relayed.public_dict() == {**original.public_dict(), "repository": None}
    auth = [r.headers["authorization"] for r in github.requests if r.path.endswith("dispatches")]
    assert auth == [f"Bearer {rh.GITHUB_TOKEN}"]


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"signature": "0" * 64}, "invalid Sentry-Hook-Signature"),
        ({"signature": ""}, "invalid Sentry-Hook-Signature"),
        ({"age": 3600}, "stale Sentry-Hook-Timestamp"),
    ],
)
def test_bad_signatures_get_401_and_nothing_is_forwarded(
    relay: rh.RelayProcess, github: FakeGitHub, headers: dict[str, Any], reason: str
) -> None:
    body = rh.alert_for_issue(ALERT, 2)
    status, verdict = rh.post(relay.port, "/hooks/sentry", body, rh.sentry_headers(body, **headers))
    assert status == 401
    assert reason in verdict["reason"]
    time.sleep(0.3)
    assert github.dispatches == []


def test_a_body_changed_after_signing_is_refused(relay: rh.RelayProcess) -> None:
    body = rh.alert_for_issue(ALERT, 3)
    headers = rh.sentry_headers(body)
    status, _ = rh.post(relay.port, "/hooks/sentry", body.replace(b"heck", b"hack"), headers)
    assert status == 401


def test_unsigned_senders_need_the_shared_secret(
    relay: rh.RelayProcess, github: FakeGitHub, tmp_path: Path
) -> None:
    legacy = json.dumps(load_fixture("sentry/legacy-webhooks-plugin.json")).encode()
    plain = {"Content-Type": "application/json"}
    status, _ = rh.post(relay.port, "/hooks/sentry-legacy/wrong-secret", legacy, plain)
    assert status == 401
    status, verdict = rh.post(relay.port, f"/hooks/sentry-legacy/{rh.SHARED_SECRET}", legacy, plain)
    assert status == 202, verdict
    glitch = (FIXTURES / "glitchtip" / "issue-alert.written-from-format.json").read_bytes()
    status, _ = rh.post(relay.port, "/hooks/glitchtip", glitch, plain)
    assert status == 401
    status, verdict = rh.post(
        relay.port, "/hooks/glitchtip", glitch, {**plain, "X-AstraForge-Secret": rh.SHARED_SECRET}
    )
    assert status == 202, verdict
    wait_for(lambda: len(github.dispatches) == 2)
    log = (tmp_path / "relay.log").read_text()
    assert rh.SHARED_SECRET not in log
    assert "/hooks/sentry-legacy/<secret>" in log


def test_dedupe_rate_limits_resolved_and_metrics(tmp_path: Path, github: FakeGitHub) -> None:
    config = rh.write_config(tmp_path / "relay.yml", github.url, max_per_hour=3)
    with rh.RelayProcess(config, tmp_path / "relay.log") as relay:
        decisions = []
        for issue in (1, 1, 2, 3, 4):
            body = rh.alert_for_issue(ALERT, issue)
            decisions.append(
                rh.post(relay.port, "/hooks/sentry", body, rh.sentry_headers(body))[1]["decision"]
            )
        resolved = rh.fresh(load_fixture("sentry/issue.created.json"))
        resolved["action"] = "resolved"
        resolved["data"]["issue"]["status"] = "resolved"
        body = json.dumps(resolved).encode()
        _, ignored = rh.post(relay.port, "/hooks/sentry", body, rh.sentry_headers(body, "issue"))
        assert decisions == ["forwarded", "deduplicated", "forwarded", "forwarded", "rate_limited"]
        assert ignored["decision"] == "ignored"
        status, metrics = rh.get(relay.port, "/metrics")
        assert status == 200
        assert 'astraforge_relay_webhooks_total{decision="forwarded"} 3' in metrics
        assert 'astraforge_relay_webhooks_total{decision="deduplicated"} 1' in metrics
        assert 'astraforge_relay_webhooks_total{decision="rate_limited"} 1' in metrics
        assert 'astraforge_relay_webhooks_total{decision="ignored"} 1' in metrics
        assert rh.get(relay.port, "/healthz") == (200, '{"status":"ok"}')
        wait_for(lambda: len(github.dispatches) == 3)
        logged = [r["decision"] for r in relay.records() if r.get("event") == "webhook"]
        assert logged.count("forwarded") == 3


def test_gitlab_trigger_target(tmp_path: Path) -> None:
    lab = FakeGitLab(tmp_path / "gl", "unused", "acme/shop")
    route = {"name": "lab", "gitlab": {"project": "acme/shop", "server_url": "", "ref": "main"}}
    with lab:
        route["gitlab"]["server_url"] = lab.url
        config = rh.write_config(tmp_path / "relay.yml", "http://127.0.0.1:9", routes=[route])
        env = {**rh.env(), "RELAY_GITLAB_TRIGGER_TOKEN": lab.trigger_token}
        body = rh.alert_for_issue(ALERT, 7)
        path = tmp_path / "alert.json"
        path.write_bytes(body)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "astraforge",
                "relay",
                "forward",
                str(path),
                "--config",
                str(config),
                "--resource",
                "event_alert",
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["decision"] == "forwarded"
    assert len(lab.triggers) == 1
    form = lab.triggers[0]
    assert form["ref"] == "main"
    relayed = forwarded.decode(json.loads(form["variables[ASTRAFORGE_PAYLOAD]"]))
    assert relayed.alert is not None
    assert relayed.alert.issue_id == "10007"


ROUND_TRIP = [
    ("sentry/event_alert.triggered.issue-alert.json", "sentry", "event_alert"),
    ("sentry/error.created.json", "sentry", "error"),
    ("sentry/issue.created.json", "sentry", "issue"),
    ("sentry/issue.created.2019.json", "sentry", "issue"),
    ("sentry/legacy-webhooks-plugin.json", "sentry-legacy", None),
    ("glitchtip/issue-alert.written-from-format.json", "glitchtip", None),
]


@pytest.mark.parametrize(("fixture", "kind", "resource"), ROUND_TRIP)
def test_round_trip_of_every_alert_fixture(
    tmp_path: Path, github: FakeGitHub, fixture: str, kind: str, resource: str | None
) -> None:
    levels = ["debug", "info", "warning", "error", "fatal"]
    config = rh.write_config(tmp_path / "relay.yml", github.url, alert_levels=levels)
    args = ["--resource", resource] if resource else []
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "astraforge",
            "relay",
            "forward",
            str(FIXTURES / fixture),
            "--config",
            str(config),
            "--kind",
            kind,
            *args,
        ],
        capture_output=True,
        text=True,
        env=rh.env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["decision"] == "forwarded", result.stdout
    dispatch = load_fixture("github/repository_dispatch.json")
    dispatch["action"] = github.dispatches[0]["event_type"]
    dispatch["client_payload"] = github.dispatches[0]["client_payload"]
    relayed = events.parse(dispatch, Source.GITHUB, event_name="repository_dispatch")
    source = Source.GLITCHTIP if kind == "glitchtip" else Source.SENTRY
    original = events.parse(load_fixture(fixture), source, event_name=resource)
    left = relayed.public_dict()
    right = original.public_dict()
    # how it arrived differs by design: the dispatch names the repository and its event type
    assert left.pop("event") == "repository_dispatch.astraforge-alert"
    assert (left.pop("repository") or {}).get("owner") == "octo-org"
    right.pop("event"), right.pop("repository")
    assert left == right


def test_oversized_payload_is_trimmed_within_githubs_limits(
    relay: rh.RelayProcess, github: FakeGitHub
) -> None:
    huge = json.loads(rh.alert_for_issue(ALERT, 9))
    frame = huge["data"]["event"]["exception"]["values"][0]["stacktrace"]["frames"][0]
    frames = []
    for i in range(240):
        copy_ = dict(
            frame, lineno=i, context_line="x" * 500, pre_context=["y" * 300] * 5, in_app=i > 200
        )
        frames.append(copy_)
    huge["data"]["event"]["exception"]["values"][0]["stacktrace"]["frames"] = frames
    body = json.dumps(huge).encode()
    assert len(body) > 200_000
    status, verdict = rh.post(relay.port, "/hooks/sentry", body, rh.sentry_headers(body))
    assert status == 202, verdict
    wait_for(lambda: len(github.dispatches) == 1)
    payload = github.dispatches[0]["client_payload"]
    assert len(payload) <= 10
    assert len(json.dumps(payload, separators=(",", ":"))) <= 65_535
    assert payload["trimmed"]["frames"] > 0
    task = forwarded.decode(payload)
    assert task.alert is not None
    assert task.alert.frames[-1].lineno == 239


def storm(
    port_of: Any, total: int, issues: int, clients: int, pause: threading.Event | None = None
) -> list[str]:
    """``total`` signed webhooks over ``issues`` distinct issues from ``clients`` threads,
    retrying what fails (the relay may be restarting). Bounded: gives up after 60 s."""
    bodies = [rh.alert_for_issue(ALERT, i % issues) for i in range(total)]
    decisions: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + 60

    def client(chunk: list[bytes]) -> None:
        conn: http.client.HTTPConnection | None = None
        for body in chunk:
            while time.monotonic() < deadline:
                if pause is not None:
                    pause.wait(30)
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", port_of(), timeout=10)
                    status, verdict = rh.post(
                        0, "/hooks/sentry", body, rh.sentry_headers(body), conn
                    )
                except (OSError, http.client.HTTPException):
                    conn = None
                    time.sleep(0.05)
                    continue
                if status == 202:
                    with lock:
                        decisions.append(verdict["decision"])
                    break
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=client, args=(bodies[i::clients],)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    return decisions


def test_load_2000_webhooks_50_issues_exactly_50_forwarded(
    relay: rh.RelayProcess, github: FakeGitHub
) -> None:
    decisions = storm(lambda: relay.port, 2000, 50, 8)
    assert len(decisions) == 2000
    assert decisions.count("forwarded") == 50
    assert decisions.count("deduplicated") == 1950
    wait_for(lambda: len(github.dispatches) == 50)
    time.sleep(0.5)
    ids = [d["client_payload"]["task"]["alert"]["issue_id"] for d in github.dispatches]
    assert len(ids) == len(set(ids)) == 50


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_killed_and_restarted_mid_storm(tmp_path: Path, github: FakeGitHub, how: int) -> None:
    config = rh.write_config(tmp_path / "relay.yml", github.url)
    log = tmp_path / "relay.log"
    current = rh.RelayProcess(config, log).start()
    processes = [current]
    result: list[str] = []
    worker = threading.Thread(
        target=lambda: result.extend(storm(lambda: processes[-1].port, 2000, 50, 8))
    )
    worker.start()
    wait_for(lambda: len(github.dispatches) >= 15)
    processes[-1].stop(how)
    time.sleep(0.3)
    processes.append(rh.RelayProcess(config, log).start())
    worker.join(120)
    try:
        wait_for(
            lambda: (
                len({d["client_payload"]["task"]["alert"]["issue_id"] for d in github.dispatches})
                == 50
            ),
            30,
        )
        time.sleep(1.0)
        ids = [d["client_payload"]["task"]["alert"]["issue_id"] for d in github.dispatches]
        recovered = sum(
            r.get("count", 0) for r in processes[-1].records() if r.get("event") == "recovered"
        )
        assert len(set(ids)) == 50  # none lost
        # none twice; a send cut by SIGKILL is the one case sent again (at least once)
        assert len(ids) - 50 <= (recovered if how == signal.SIGKILL else 0)
    finally:
        processes[-1].stop()


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed: run scripts/ci-setup"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 10)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def test_two_relays_sharing_redis_forward_each_issue_once(
    tmp_path: Path, github: FakeGitHub, redis_url: str
) -> None:
    config = rh.write_config(
        tmp_path / "relay.yml", github.url, state={"backend": "redis", "redis_url": redis_url}
    )
    with (
        rh.RelayProcess(config, tmp_path / "a.log") as a,
        rh.RelayProcess(config, tmp_path / "b.log") as b,
    ):
        turn = iter(range(10**9))
        decisions = storm(lambda: (a.port, b.port)[next(turn) % 2], 600, 30, 6)
        assert decisions.count("forwarded") == 30
        wait_for(lambda: len(github.dispatches) == 30)
        time.sleep(0.5)
        ids = [d["client_payload"]["task"]["alert"]["issue_id"] for d in github.dispatches]
        assert len(set(ids)) == len(ids) == 30


def test_example_configuration_is_valid_and_a_missing_secret_is_one_line(tmp_path: Path) -> None:
    from astraforge.relay import config as relay_config

    example = Path(__file__).parents[2] / "examples" / "relay.yml"
    assert [r.name for r in relay_config.load(example).routes] == ["shop", "billing"]
    config = rh.write_config(tmp_path / "relay.yml", "http://127.0.0.1:9")
    env = {k: v for k, v in rh.env().items() if k != "SENTRY_CLIENT_SECRET"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "astraforge",
            "relay",
            "serve",
            "--config",
            str(config),
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert result.returncode == 3
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("error: SENTRY_CLIENT_SECRET is not set (fix: export SENTRY_CLIENT_SECRET")
    )


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_failed_send_is_retried_after_its_backoff(
    tmp_path: Path, github: FakeGitHub, backend: str, request: pytest.FixtureRequest
) -> None:
    """Both stores honour the retry delay: the second attempt comes seconds later, not after
    Redis' 60 s idle time."""
    state: dict[str, Any] = {"backend": backend, "path": str(tmp_path / "relay.db")}
    if backend == "redis":
        state["redis_url"] = request.getfixturevalue("redis_url")
    github.fail("POST", r"/repos/[^/]+/[^/]+/dispatches", 502, times=1)
    config = rh.write_config(tmp_path / "relay.yml", github.url, state=state)
    with rh.RelayProcess(config, tmp_path / "relay.log") as relay:
        body = rh.alert_for_issue(ALERT, 7)
        status, _ = rh.post(relay.port, "/hooks/sentry", body, rh.sentry_headers(body))
        assert status == 202
        started = time.monotonic()
        wait_for(lambda: len(github.dispatches) == 1)
        waited = time.monotonic() - started
    attempts = [r for r in github.requests if r.path.endswith("/dispatches")]
    assert len(attempts) == 2  # one failure, one success
    assert 1.0 <= waited < 30, waited
