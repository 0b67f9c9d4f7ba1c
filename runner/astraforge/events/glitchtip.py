"""GlitchTip webhooks -> Task.

GlitchTip posts a Slack-style body (``text`` + ``attachments[]`` with title, title_link,
culprit as text, and fields Project/Environment/Release/Server Name) and, in older versions,
MS Teams-style ``sections[]``. Neither carries frames, so the task asks for the issue's
latest event to be fetched (GlitchTip serves Sentry's ``/issues/{id}/events/latest/``).
"""

from __future__ import annotations

import re
from typing import Any

from astraforge.errors import PayloadError
from astraforge.events.payload import Node
from astraforge.task import Alert, Kind, Links, Source, Task

_LINK = re.compile(r"\[(?P<label>[^\]]*)\]\((?P<url>[^)\s]+)\)")
_ISSUE_URL = re.compile(r"/(?P<org>[^/]+)/issues/(?P<id>\d+)")


def looks_like(payload: dict[str, Any]) -> bool:
    """Whether a payload is a GlitchTip alert."""
    attachments = payload.get("attachments")
    sections = payload.get("sections")
    return (isinstance(attachments, list) and bool(attachments)) or (
        isinstance(sections, list) and bool(sections) and "activityTitle" in str(sections[0])
    )


def parse(payload: dict[str, Any]) -> Task:
    """A GlitchTip alert as a Task."""
    root = Node(payload)
    attachments = [a for a in root.array("attachments") if a.is_obj()]
    if attachments:
        return _slack(root, attachments[0], payload)
    sections = [s for s in root.array("sections") if s.is_obj()]
    if sections:
        return _teams(sections[0], payload)
    raise PayloadError("GlitchTip payload has neither attachments[] nor sections[]")


def _slack(root: Node, item: Node, payload: dict[str, Any]) -> Task:
    title = item.string("title")
    url = item.opt_str("title_link")
    fields = {
        f.opt_str("title") or "": f.opt_str("value") or ""
        for f in item.array("fields")
        if f.is_obj()
    }
    alert = _alert(title, url)
    alert.culprit = item.opt_str("text")
    alert.project = fields.get("Project") or None
    alert.environment = fields.get("Environment") or None
    alert.release = fields.get("Release") or None
    if fields.get("Server Name"):
        alert.tags["server_name"] = fields["Server Name"]
    return _task(title, url, alert, "issue_alert.slack", payload)


def _teams(section: Node, payload: dict[str, Any]) -> Task:
    title = section.string("activityTitle")
    match = _LINK.search(section.opt_str("activitySubtitle") or "")
    url = match["url"] if match else None
    alert = _alert(title, url)
    if match and match["label"].startswith("View Issue "):
        alert.short_id = match["label"].removeprefix("View Issue ").strip() or None
    return _task(title, url, alert, "issue_alert.teams", payload)


def _alert(title: str, url: str | None) -> Alert:
    match = _ISSUE_URL.search(url or "")
    exc_type, sep, exc_value = title.partition(": ")
    return Alert(
        issue_id=match["id"] if match else None,
        organization=match["org"] if match else None,
        exception_type=exc_type if sep else None,
        exception_value=exc_value if sep else None,
        needs_fetch=True,
    )


def _task(title: str, url: str | None, alert: Alert, event: str, payload: dict[str, Any]) -> Task:
    key = alert.issue_id or alert.short_id or title
    return Task(
        source=Source.GLITCHTIP,
        kind=Kind.ALERT,
        event=event,
        title=title,
        alert=alert,
        links=Links(alert=url),
        fingerprint=f"glitchtip:{key}",
        raw=payload,
    )
