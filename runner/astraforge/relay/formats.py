"""What each relay route accepts, and when a signed Sentry event happened.

Each route takes its own source's format only: ``/hooks/sentry`` Sentry's integration
webhooks, ``/hooks/sentry-legacy`` the legacy webhook plugin's body, ``/hooks/glitchtip``
GitLab-style GlitchTip alerts. AstraForge's own forwarded shape, and anything that would
become a person's request, an issue or a comment, is refused on every route: the relay
forwards alerts, and nothing that arrives through it is ever followed as a person's request.

A Sentry webhook's ``Sentry-Hook-Timestamp`` header is not covered by its signature, so the
event's age is taken from inside the signed body: the event's, error's or issue's own time,
or the metric alert's detection time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from astraforge.events import forwarded, glitchtip, sentry

# Where an integration webhook's body says when its event happened.
TIME_FIELDS = (
    ("event", "timestamp"),
    ("event", "datetime"),
    ("error", "timestamp"),
    ("error", "datetime"),
    ("issue", "lastSeen"),
    ("metric_alert", "date_detected"),
    ("metric_alert", "date_started"),
    ("timestamp",),
)


def refusal(kind: str, payload: dict[str, Any]) -> str | None:
    """Why ``payload`` is not the format of route ``kind``; None when it is."""
    if forwarded.is_forwarded(payload):
        return "AstraForge's own forwarded payload is never accepted from outside"
    if kind == "sentry":
        if not (isinstance(payload.get("data"), dict) and "action" in payload):
            return "not a Sentry integration webhook (no data and action)"
        return None
    if kind == "sentry-legacy":
        return None if sentry.is_legacy(payload) else "not a Sentry legacy webhook plugin body"
    if not glitchtip.looks_like(payload):
        return "not a GlitchTip alert"
    return None


def _seconds(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def event_time(payload: dict[str, Any]) -> float | None:
    """The latest time the signed body gives for its event (seconds since the epoch)."""
    data = payload.get("data")
    if not isinstance(data, dict):
        return None
    found = []
    for path in TIME_FIELDS:
        node: Any = data
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        seconds = _seconds(node)
        if seconds is not None:
            found.append(seconds)
    return max(found) if found else None


def quick_fingerprint(kind: str, payload: dict[str, Any]) -> str | None:
    """The fingerprint of a Sentry event alert read straight from the body, so that the
    repeats of a storm are answered before the full parse; None for anything else."""
    if kind != "sentry":
        return None
    data = payload.get("data")
    event = data.get("event") if isinstance(data, dict) else None
    issue = event.get("issue_id") if isinstance(event, dict) else None
    return f"sentry:{issue}" if isinstance(issue, str | int) and str(issue) else None
