"""Malformed, mutated and oversized payloads end in AstraForgeError or a capped Task."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import FIXTURES, load_fixture, run_cli

from astraforge import events
from astraforge.errors import AstraForgeError, PayloadError, UsageError
from astraforge.events import payload as limits

NAMES = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*.json"))
ODD_TEXT = st.sampled_from(
    [
        "",
        "\u202e\u200b",
        "\x00",
        "💥" * 50,
        "a" * 100_000,
        "\ud7ff",
        "/astraforge fix",
        "@astraforge",
        "<!-- x -->",
    ]
)
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    ODD_TEXT,
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node[:5]):
            found += _paths(value, (*prefix, i))
    return found


def _mutate(doc: Any, path: tuple[Any, ...], op: str, value: Any) -> None:
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    key = path[-1]
    if op == "delete":
        del parent[key]
    else:
        parent[key] = value


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    name = draw(st.sampled_from(NAMES))
    doc = load_fixture(name)
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        _mutate(doc, path, draw(st.sampled_from(["delete", "replace"])), draw(JUNK))
    return name, doc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_fixtures_raise_only_astraforge_errors(case: tuple[str, dict[str, Any]]) -> None:
    _, doc = case
    try:
        task = events.parse(doc)
    except AstraForgeError as exc:
        assert exc.message
        assert exc.remediation
        return
    json.dumps(task.public_dict())  # whatever parses also prints
    assert len(task.body) <= limits.MAX_TEXT
    assert len(task.title) <= limits.MAX_SHORT


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    with contextlib.suppress(AstraForgeError):
        events.parse(events.decode_payload(raw))


def test_megabytes_of_message_and_tens_of_thousands_of_frames_are_capped() -> None:
    doc = load_fixture("sentry/event_alert.triggered.issue-alert.json")
    event = doc["data"]["event"]
    event["message"] = "boom " * 1_000_000
    event["title"] = "T" * 100_000
    frame = event["exception"]["values"][0]["stacktrace"]["frames"][0]
    event["exception"]["values"][0]["stacktrace"]["frames"] = [
        dict(frame, lineno=i) for i in range(50_000)
    ]
    task = events.parse(doc)
    assert task.alert is not None
    assert len(task.body) <= limits.MAX_TEXT
    assert task.body.endswith("[truncated by AstraForge]")
    assert len(task.title) <= limits.MAX_SHORT
    assert len(task.alert.frames) == limits.MAX_FRAMES
    assert task.alert.frames_dropped == 50_000 - limits.MAX_FRAMES
    assert task.alert.frames[-1].lineno == 49_999  # the crashing frame is kept


def test_deeply_nested_json_is_an_error() -> None:
    raw = ("[" * 100_000 + "]" * 100_000).encode()
    with pytest.raises(PayloadError):
        events.decode_payload(raw)


@pytest.mark.parametrize(
    ("content", "code", "needle"),
    [
        (b"{not json", 4, "malformed JSON at line 1 column 2"),
        (b"\xff\xfe{}", 4, "not UTF-8"),
        (b"[1, 2]", 4, "must be a JSON object"),
        (
            b'{"issue": {"number": "x"}, "repository": {"full_name": "a/b"}, "sender": {}}',
            4,
            "$.issue.number must be an integer",
        ),
        (
            b'{"object_kind": "issue", "project": {"path_with_namespace": "g/p"}}',
            4,
            "$.object_attributes is required",
        ),
        (b'{"hello": "world"}', 4, "unknown event shape"),
    ],
)
def test_cli_names_the_file_and_field(
    tmp_path: Path, content: bytes, code: int, needle: str
) -> None:
    path = tmp_path / "event.json"
    path.write_bytes(content)
    result = run_cli("event", "show", str(path))
    assert result.returncode == code
    assert result.stderr.count("\n") == 1, result.stderr
    assert str(path) in result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_missing_file(tmp_path: Path) -> None:
    result = run_cli("event", "show", str(tmp_path / "missing.json"))
    assert result.returncode == UsageError.exit_code
    assert "no such event file" in result.stderr


def test_verbose_adds_the_traceback(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_text("{")
    result = run_cli("-v", "event", "show", str(path))
    assert result.returncode == 4
    assert "Traceback" in result.stderr


def test_unknown_source_flag_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("event", "show", "--source", "jira", str(tmp_path / "x.json"))
    assert result.returncode == 2
    assert "jira" in result.stderr
