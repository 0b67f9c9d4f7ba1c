"""AstraForge's own forwarded-alert payload, version 1.

The relay turns a Sentry or GlitchTip webhook into a Task and forwards it as the
``client_payload`` of a GitHub ``repository_dispatch`` (or the ``ASTRAFORGE_PAYLOAD``
variable of a GitLab pipeline trigger)::

    {"astraforge": 1, "task": {<Task fields>}, "trimmed": {"frames": 0, "breadcrumbs": 0, ...}}

It stays within GitHub's limits (at most 10 top-level keys, 65,535 characters): when the
task is too large, breadcrumbs go first, then the oldest frames, then long text, and
``trimmed`` says how much was left out.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from astraforge.errors import PayloadError
from astraforge.task import Kind, Source, Task

VERSION = 1
MARKER = "astraforge"
MAX_CHARS = 65_535
DISPATCH_EVENT_TYPE = "astraforge-alert"
ALERT_SOURCES = (Source.SENTRY, Source.GLITCHTIP)


def is_forwarded(payload: object) -> bool:
    """Whether a payload is AstraForge's own forwarded format."""
    return isinstance(payload, dict) and MARKER in payload and "task" in payload


def _size(payload: dict[str, Any]) -> int:
    return len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")))


def encode(task: Task, max_chars: int = MAX_CHARS) -> dict[str, Any]:
    """A Task as the versioned forwarded payload, trimmed to fit."""
    data = task.model_dump(mode="json", exclude={"raw", "repository"}, exclude_defaults=True)
    trimmed = {"frames": 0, "breadcrumbs": 0, "text_chars": 0}
    payload: dict[str, Any] = {MARKER: VERSION, "task": data, "trimmed": trimmed}
    if _size(payload) <= max_chars:
        return payload  # the common case: nothing to trim
    alert = data.get("alert") or {}
    while _size(payload) > max_chars and alert.get("breadcrumbs"):
        alert["breadcrumbs"].pop(0)
        trimmed["breadcrumbs"] += 1
    while _size(payload) > max_chars and len(alert.get("frames", [])) > 1:
        frames = alert["frames"]
        outside = next((i for i, f in enumerate(frames[:-1]) if not f.get("in_app")), 0)
        frames.pop(outside)
        trimmed["frames"] += 1
        alert["frames_dropped"] = alert.get("frames_dropped", 0) + 1
    for key in ("body", "instruction"):
        excess = _size(payload) - max_chars
        text = data.get(key) or ""
        if excess > 0 and text:
            keep = max(0, len(text) - excess - 64)
            data[key] = text[:keep]
            trimmed["text_chars"] += len(text) - keep
    if _size(payload) > max_chars:
        _shrink_strings(data, trimmed, max_chars, payload)
    return payload


def _shrink_strings(
    node: Any, trimmed: dict[str, int], max_chars: int, payload: dict[str, Any]
) -> None:
    """Last resort: cut every long string in the task until the payload fits."""
    limit = 2048
    while _size(payload) > max_chars and limit >= 16:
        _cut(node, limit, trimmed)
        limit //= 2
    if _size(payload) > max_chars:
        raise PayloadError("the alert cannot be made to fit GitHub's client_payload limit")


def _cut(node: Any, limit: int, trimmed: dict[str, int]) -> None:
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, value in list(items):
        if isinstance(value, str) and len(value) > limit:
            node[key] = value[:limit]
            trimmed["text_chars"] += len(value) - limit
        elif isinstance(value, dict | list):
            _cut(value, limit, trimmed)


def decode(payload: dict[str, Any], path: str = "$") -> Task:
    """The Task a forwarded payload carries."""
    version = payload.get(MARKER)
    if version != VERSION:
        raise PayloadError(
            f"field {path}.{MARKER} is {version!r}; this runner reads version {VERSION}",
            "upgrade the runner or the relay so that they match",
        )
    try:
        task = Task.model_validate(payload["task"])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PayloadError(f"field {path}.task.{where}: {first['msg']}") from None
    # The relay forwards alerts only: whatever else the payload says, it never becomes a
    # person's request, and nobody is named as having asked for it.
    if task.kind is not Kind.ALERT or task.alert is None or task.source not in ALERT_SOURCES:
        raise PayloadError(
            f"field {path}.task: a forwarded payload carries only Sentry or GlitchTip alerts, "
            f"not a {task.kind.value} from {task.source.value}",
            "send requests through an issue, a comment or `astraforge run --task`",
        )
    return task.model_copy(update={"instruction": None, "requester": None})
