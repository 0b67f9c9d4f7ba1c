"""Every payload a platform sends, read into one Task.

``load_payload`` reads a file safely; ``detect_source`` tells the platform from the
payload's shape; ``parse`` dispatches to the one module per source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from astraforge.errors import PayloadError, UsageError
from astraforge.events import forwarded, github, gitlab, glitchtip, manual, sentry
from astraforge.events.commands import CommandSyntax
from astraforge.task import Source, Task

MAX_PAYLOAD_BYTES = 32 * 1024 * 1024


def load_payload(path: str | Path) -> dict[str, Any]:
    """Read a JSON object from a file, with one clear error for every way that can fail."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_PAYLOAD_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(
            f"{path}: no such event file", "pass the path of a saved webhook payload (JSON)"
        ) from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the event file ({exc.strerror})") from None
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise PayloadError(
            f"{path}: payload is larger than {MAX_PAYLOAD_BYTES // 2**20} MiB",
            "send the webhook as the platform produced it; nothing is that large",
        )
    return decode_payload(raw, str(path))


def decode_payload(raw: bytes, name: str = "payload") -> dict[str, Any]:
    """A payload's bytes as a JSON object, or one PayloadError."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PayloadError(
            f"{name}: not UTF-8 (invalid byte at offset {exc.start})",
            "save the payload as UTF-8 JSON",
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(
            f"{name}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
            "pass the payload exactly as the platform sent it",
        ) from None
    except RecursionError:
        raise PayloadError(f"{name}: JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise PayloadError(f"{name}: the payload must be a JSON object, got {type(data).__name__}")
    return data


def detect_source(payload: dict[str, Any]) -> Source:
    """Tell the platform from the payload's shape alone."""
    if forwarded.is_forwarded(payload):
        task = payload["task"]
        named = str(task.get("source")) if isinstance(task, dict) else ""
        return Source(named) if named in Source._value2member_map_ else Source.SENTRY
    if "object_kind" in payload:
        return Source.GITLAB
    if sentry.is_legacy(payload):
        return Source.SENTRY
    if (
        isinstance(payload.get("data"), dict)
        and "action" in payload
        and ("installation" in payload or "actor" in payload)
    ):
        return Source.SENTRY
    if glitchtip.looks_like(payload):
        return Source.GLITCHTIP
    if "repository" in payload and (
        "sender" in payload
        or "issue" in payload
        or "client_payload" in payload
        or "inputs" in payload
    ):
        return Source.GITHUB
    if manual.looks_like(payload):
        return Source.MANUAL
    raise PayloadError(
        "unknown event shape: not a GitHub, GitLab, Sentry, GlitchTip or AstraForge payload",
        "pass --source to say which platform sent it",
    )


def parse(
    payload: dict[str, Any],
    source: Source | str | None = None,
    *,
    event_name: str | None = None,
    syntax: CommandSyntax | None = None,
) -> Task:
    """Turn one payload into a Task. ``event_name`` is GitHub's X-GitHub-Event or Sentry's
    Sentry-Hook-Resource header, when known."""
    if source is not None and not isinstance(source, Source):
        try:
            source = Source(source)
        except ValueError:
            raise UsageError(
                f"unknown source {source!r}", "use one of: " + ", ".join(s.value for s in Source)
            ) from None
    if source is None:
        source = detect_source(payload)
    if forwarded.is_forwarded(payload):
        return forwarded.decode(payload).model_copy(update={"raw": payload})
    if source is Source.GITHUB:
        return github.parse(payload, event_name, syntax)
    if source is Source.GITLAB:
        return gitlab.parse(payload, syntax)
    if source is Source.SENTRY:
        return sentry.parse(payload, event_name, syntax)
    if source is Source.GLITCHTIP:
        return glitchtip.parse(payload)
    return manual.parse(payload)


def parse_file(
    path: str | Path,
    source: Source | str | None = None,
    *,
    event_name: str | None = None,
    syntax: CommandSyntax | None = None,
) -> Task:
    """``parse`` on a file; errors name the file."""
    payload = load_payload(path)
    try:
        return parse(payload, source, event_name=event_name, syntax=syntax)
    except PayloadError as exc:
        if not exc.message.startswith(str(path)):
            exc.message = f"{path}: {exc.message}"
        raise
