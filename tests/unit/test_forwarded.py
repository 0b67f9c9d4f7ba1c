"""Our versioned repository_dispatch client_payload."""

from __future__ import annotations

import json

import pytest
from tests.conftest import load_fixture

from astraforge import events
from astraforge.errors import PayloadError
from astraforge.events import forwarded

ALERTS = [
    "sentry/event_alert.triggered.issue-alert.json",
    "sentry/error.created.json",
    "sentry/issue.created.json",
    "sentry/issue.created.2019.json",
    "sentry/activity_alert.triggered.json",
    "sentry/metric_alert.resolved.json",
    "sentry/comment.created.json",
    "sentry/legacy-webhooks-plugin.json",
    "glitchtip/issue-alert.written-from-format.json",
]


@pytest.mark.parametrize("name", ALERTS)
def test_round_trip_through_repository_dispatch(name: str) -> None:
    original = events.parse(load_fixture(name))
    dispatch = load_fixture("github/repository_dispatch.json")
    dispatch["action"] = forwarded.DISPATCH_EVENT_TYPE
    dispatch["client_payload"] = forwarded.encode(original)
    assert len(dispatch["client_payload"]) <= 10
    relayed = events.parse(json.loads(json.dumps(dispatch)), "github")
    ignore = {"repository", "event"}
    assert relayed.model_dump(exclude=ignore) == original.model_dump(exclude=ignore)


def test_huge_stack_trace_is_trimmed_within_github_limits() -> None:
    payload = load_fixture("sentry/error.created.json")
    frame = payload["data"]["error"]["exception"]["values"][0]["stacktrace"]["frames"][0]
    frames = []
    for i in range(30_000):
        copy = dict(frame, lineno=i, in_app=(i % 10 == 0), context_line="x = 1 # " + "y" * 300)
        frames.append(copy)
    payload["data"]["error"]["exception"]["values"][0]["stacktrace"]["frames"] = frames
    payload["data"]["error"]["breadcrumbs"] = {
        "values": [{"message": "m" * 500, "category": "http"} for _ in range(500)]
    }
    task = events.parse(payload)
    assert task.alert is not None
    assert task.alert.frames_dropped == 30_000 - len(task.alert.frames)
    encoded = forwarded.encode(task)
    text = json.dumps(encoded, separators=(",", ":"), ensure_ascii=False)
    assert len(text) <= forwarded.MAX_CHARS
    assert len(encoded) <= 10
    assert encoded["trimmed"]["breadcrumbs"] > 0
    assert encoded["trimmed"]["frames"] > 0
    decoded = forwarded.decode(encoded)
    assert decoded.alert is not None
    # the crashing frame survives the trimming
    assert decoded.alert.frames[-1].lineno == 29_999


def test_huge_message_is_trimmed() -> None:
    task = events.parse(load_fixture("sentry/error.created.json"))
    task = task.model_copy(update={"body": "z" * 200_000})
    encoded = forwarded.encode(task)
    assert len(json.dumps(encoded, separators=(",", ":"))) <= forwarded.MAX_CHARS
    assert encoded["trimmed"]["text_chars"] > 0


def test_other_version_is_refused() -> None:
    encoded = forwarded.encode(events.parse(load_fixture("sentry/error.created.json")))
    encoded["astraforge"] = 2
    with pytest.raises(PayloadError, match="version 1"):
        forwarded.decode(encoded)


def test_bad_task_field_is_named() -> None:
    encoded = forwarded.encode(events.parse(load_fixture("sentry/error.created.json")))
    encoded["task"]["kind"] = "party"
    with pytest.raises(PayloadError, match=r"task\.kind"):
        forwarded.decode(encoded)
