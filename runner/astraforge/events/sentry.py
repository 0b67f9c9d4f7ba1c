"""Sentry payloads -> Task.

Integration-platform webhooks (``Sentry-Hook-Resource``: event_alert, error, issue,
metric_alert, comment, activity_alert) and the legacy webhook plugin. The event reader
(:func:`alert_from_event`) also reads events fetched from the Sentry API, whose
exception, request and breadcrumbs sit in ``entries``.
"""

from __future__ import annotations

import re
from typing import Any

from astraforge.errors import PayloadError, UnsupportedEventError
from astraforge.events.commands import CommandSyntax, find_invocation
from astraforge.events.payload import MAX_FRAMES, MAX_ITEMS, MAX_TEXT, Node
from astraforge.task import (
    Alert,
    Breadcrumb,
    Frame,
    Kind,
    Links,
    Requester,
    RequestInfo,
    Source,
    Task,
)

_PROJECT_URL = re.compile(r"/projects/(?P<org>[^/]+)/(?P<project>[^/]+)/")
_ORG_URL = re.compile(r"/organizations/(?P<org>[^/]+)/")


def is_legacy(payload: dict[str, Any]) -> bool:
    """Whether a payload comes from Sentry's legacy webhook plugin."""
    return "project_slug" in payload and ("triggering_rules" in payload or "event" in payload)


def infer_resource(payload: dict[str, Any]) -> str:
    """The Sentry-Hook-Resource a payload's shape implies."""
    data = payload.get("data")
    if not isinstance(data, dict):
        raise PayloadError("field $.data is required in a Sentry integration webhook")
    if "event" in data:
        return "event_alert"
    if "activity" in data:
        return "activity_alert"
    for name in ("error", "metric_alert", "issue", "comment"):
        if name in data:
            return name
    raise PayloadError(
        "field $.data holds no event, error, issue, metric_alert or comment",
        "pass --sentry-resource with the Sentry-Hook-Resource header's value",
    )


def parse(
    payload: dict[str, Any],
    resource: str | None = None,
    syntax: CommandSyntax | None = None,
    source: Source = Source.SENTRY,
) -> Task:
    """A Sentry webhook payload as a Task."""
    root = Node(payload)
    if resource is None and is_legacy(payload):
        return _legacy(root, payload, source)
    resource = resource or infer_resource(payload)
    data = root.obj("data")
    action = root.opt_str("action") or "unknown"
    event = f"{resource}.{action}"
    if resource in ("event_alert", "error"):
        node = data.obj("event" if resource == "event_alert" else "error")
        alert = alert_from_event(node)
        if resource == "event_alert":
            rule = data.opt_str("triggered_rule")
            issue_alert = data.opt_obj("issue_alert")
            alert.rule = rule or (issue_alert.opt_str("title") if issue_alert else None)
        return _alert_task(node, alert, event, payload, source)
    if resource in ("issue", "activity_alert"):
        issue = data.obj("issue")
        alert = alert_from_issue(issue)
        if resource == "activity_alert":
            rule_node = data.opt_obj("alert")
            alert.rule = rule_node.opt_str("title") if rule_node else None
        title = issue.opt_str("title") or "Sentry issue"
        return Task(
            source=source,
            kind=Kind.ALERT,
            event=event,
            title=title,
            body=_activity_summary(data),
            alert=alert,
            links=Links(alert=issue.opt_str("web_url") or issue.opt_str("permalink")),
            fingerprint=f"{source.value}:{alert.issue_id}",
            raw=payload,
        )
    if resource == "metric_alert":
        return _metric_alert(root, data, action, payload, source)
    if resource == "comment":
        return _comment(root, data, event, payload, syntax or CommandSyntax(), source)
    raise UnsupportedEventError(f"Sentry resource '{resource}' is not one AstraForge acts on")


def alert_from_event(event: Node) -> Alert:
    """Read an event as sent in webhooks or returned by ``/issues/{id}/events/latest/``."""
    entries: dict[str, Node] = {}
    for entry in event.array("entries"):
        body = entry.opt_obj("data") if entry.is_obj() else None
        if body is not None:
            entries[entry.opt_str("type") or ""] = body
    exc_node = event.opt_obj("exception") or entries.get("exception")
    exc_type = exc_value = None
    frames: list[Frame] = []
    dropped = 0
    if exc_node:
        values = [v for v in exc_node.array("values", keep="tail") if v.is_obj()]
        if values:
            last = values[-1]
            exc_type, exc_value = last.opt_str("type"), last.opt_str("value", MAX_TEXT)
            stack = next(
                (v.opt_obj("stacktrace") for v in reversed(values) if v.opt_obj("stacktrace")), None
            )
            if stack:
                frames, dropped = read_frames(stack)
    if not frames:
        stack = event.opt_obj("stacktrace") or entries.get("stacktrace")
        if stack:
            frames, dropped = read_frames(stack)
    metadata = event.opt_obj("metadata")
    if metadata and not exc_type:
        exc_type, exc_value = metadata.opt_str("type"), metadata.opt_str("value", MAX_TEXT)
    request = event.opt_obj("request") or entries.get("request")
    crumbs = event.opt_obj("breadcrumbs") or entries.get("breadcrumbs")
    url = event.opt_str("url") or ""
    match = _PROJECT_URL.search(url)
    release = event.opt_obj("release") if isinstance(event.value.get("release"), dict) else None
    return Alert(
        issue_id=event.opt_str("issue_id") or event.opt_str("groupID"),
        event_id=event.opt_str("event_id") or event.opt_str("eventID"),
        organization=match["org"] if match else None,
        project=match["project"] if match else event.opt_str("projectSlug"),
        platform=event.opt_str("platform"),
        level=event.opt_str("level"),
        culprit=event.opt_str("culprit"),
        environment=event.opt_str("environment"),
        release=release.opt_str("version") if release else event.opt_str("release"),
        tags=read_tags(event),
        request=read_request(request) if request else None,
        breadcrumbs=read_breadcrumbs(crumbs) if crumbs else [],
        exception_type=exc_type,
        exception_value=exc_value,
        frames=frames,
        frames_dropped=dropped,
    )


def alert_from_issue(issue: Node) -> Alert:
    """An Alert from a Sentry issue object (no frames: fetched later)."""
    metadata = issue.opt_obj("metadata")
    project = issue.opt_obj("project")
    match = _ORG_URL.search(issue.opt_str("url") or issue.opt_str("web_url") or "")
    return Alert(
        issue_id=issue.string("id"),
        short_id=issue.opt_str("shortId"),
        organization=match["org"] if match else None,
        project=project.opt_str("slug") if project else None,
        platform=issue.opt_str("platform"),
        level=issue.opt_str("level"),
        status=issue.opt_str("status"),
        culprit=issue.opt_str("culprit"),
        exception_type=metadata.opt_str("type") if metadata else None,
        exception_value=metadata.opt_str("value", MAX_TEXT) if metadata else None,
        needs_fetch=True,
    )


def read_frames(stack: Node) -> tuple[list[Frame], int]:
    """The stack frames of an event, oldest first."""
    total = stack.list_len("frames")
    frames = [_frame(f) for f in stack.array("frames", MAX_FRAMES, keep="tail") if f.is_obj()]
    return frames, max(0, total - MAX_FRAMES)


def _frame(node: Node) -> Frame:
    return Frame(
        filename=node.opt_str("filename"),
        abs_path=node.opt_str("abs_path") or node.opt_str("absPath"),
        module=node.opt_str("module"),
        function=node.opt_str("function"),
        lineno=node.opt_int("lineno") if node.has("lineno") else node.opt_int("lineNo"),
        colno=node.opt_int("colno") if node.has("colno") else node.opt_int("colNo"),
        in_app=node.opt_bool("in_app") if node.has("in_app") else node.opt_bool("inApp"),
        context_line=node.opt_str("context_line"),
        pre_context=[c.as_str() for c in node.array("pre_context", 20, keep="tail")],
        post_context=[c.as_str() for c in node.array("post_context", 20)],
    )


def _pairs(node: Node, key: str) -> dict[str, str]:
    """Sentry sends tags and headers as [[k, v], ...], [{key, value}, ...] or {k: v}."""
    value = node.value.get(key) if node.is_obj() else None
    out: dict[str, str] = {}
    if isinstance(value, dict):
        holder = Node(value, f"{node.path}.{key}")
        for k in list(value)[:MAX_ITEMS]:
            out[str(k)[:200]] = holder.opt_str(k) or ""
        return out
    for item in node.array(key):
        if item.is_obj():
            k, v = item.opt_str("key"), item.opt_str("value")
        elif isinstance(item.value, list) and len(item.value) == 2:
            pair = Node({"k": item.value[0], "v": item.value[1]}, item.path)
            k, v = pair.opt_str("k"), pair.opt_str("v")
        else:
            raise PayloadError(f"field {item.path} must be a [key, value] pair")
        if k is not None:
            out[k[:200]] = v or ""
    return out


def read_tags(event: Node) -> dict[str, str]:
    """An event's tags."""
    return _pairs(event, "tags")


def read_request(request: Node) -> RequestInfo:
    """An event's HTTP request."""
    query_text: str | None
    if isinstance(request.value.get("query_string"), list | dict):
        query_text = "&".join(f"{k}={v}" for k, v in _pairs(request, "query_string").items())
    else:
        query_text = request.opt_str("query_string")
    return RequestInfo(
        method=request.opt_str("method"),
        url=request.opt_str("url"),
        query=query_text or None,
        headers=_pairs(request, "headers"),
    )


def read_breadcrumbs(crumbs: Node) -> list[Breadcrumb]:
    """An event's breadcrumbs, oldest first."""
    items = crumbs.array("values", keep="tail") if crumbs.is_obj() else []
    return [
        Breadcrumb(
            timestamp=c.opt_str("timestamp"),
            category=c.opt_str("category"),
            level=c.opt_str("level"),
            message=c.opt_str("message", 1024),
            type=c.opt_str("type"),
        )
        for c in items
        if c.is_obj()
    ]


def _alert_task(
    event: Node, alert: Alert, name: str, payload: dict[str, Any], source: Source
) -> Task:
    title = event.opt_str("title") or _exception_title(alert) or "Sentry event"
    key = alert.issue_id or f"event:{alert.event_id}"
    return Task(
        source=source,
        kind=Kind.ALERT,
        event=name,
        title=title,
        body=event.opt_str("message", MAX_TEXT) or "",
        alert=alert,
        links=Links(alert=event.opt_str("web_url"), event=event.opt_str("url")),
        fingerprint=f"{source.value}:{key}",
        raw=payload,
    )


def _exception_title(alert: Alert) -> str | None:
    if alert.exception_type:
        return f"{alert.exception_type}: {alert.exception_value or ''}".rstrip(": ")
    return None


def _activity_summary(data: Node) -> str:
    activity = data.opt_obj("activity")
    details = activity.opt_obj("details") if activity else None
    return (details.opt_str("summary", MAX_TEXT) if details else None) or ""


def _metric_alert(
    root: Node, data: Node, action: str, payload: dict[str, Any], source: Source
) -> Task:
    metric = data.obj("metric_alert")
    rule = metric.opt_obj("alert_rule")
    rule_id = (rule.opt_str("id") if rule else None) or metric.string("id")
    status = "resolved" if action == "resolved" else action
    alert = Alert(
        issue_id=None,
        level="error" if action == "critical" else action,
        status=status,
        rule=rule.opt_str("name") if rule else None,
        environment=rule.opt_str("environment") if rule else None,
        project=", ".join(p.as_str() for p in metric.array("projects")) or None,
    )
    return Task(
        source=source,
        kind=Kind.ALERT,
        event=f"metric_alert.{action}",
        title=data.opt_str("description_title") or metric.opt_str("title") or "alert",
        body=data.opt_str("description_text", MAX_TEXT) or "",
        alert=alert,
        links=Links(alert=data.opt_str("web_url")),
        fingerprint=f"{source.value}:metric_alert:{rule_id}",
        raw=payload,
    )


def _comment(
    root: Node,
    data: Node,
    event: str,
    payload: dict[str, Any],
    syntax: CommandSyntax,
    source: Source,
) -> Task:
    text = data.opt_str("comment", MAX_TEXT) or ""
    issue_id = data.string("issue_id", 200)
    invocation = find_invocation(text, syntax)
    actor = root.opt_obj("actor")
    login = actor.opt_str("name") if actor else None
    return Task(
        source=source,
        kind=Kind.COMMENT_COMMAND,
        event=event,
        title=f"Comment on Sentry issue {issue_id}",
        body="",
        instruction=invocation.instruction if invocation else text,
        invocation=invocation.how if invocation else None,
        requester=Requester(login=login, association=f"sentry {actor.opt_str('type')}")
        if actor and login
        else None,
        alert=Alert(issue_id=issue_id, project=data.opt_str("project_slug"), needs_fetch=True),
        fingerprint=f"{source.value}:{issue_id}",
        raw=payload,
    )


def _legacy(root: Node, payload: dict[str, Any], source: Source) -> Task:
    event = root.opt_obj("event")
    alert = alert_from_event(event) if event else Alert()
    alert.issue_id = root.string("id")
    alert.project = root.opt_str("project_slug") or alert.project
    alert.level = root.opt_str("level") or alert.level
    alert.culprit = root.opt_str("culprit") or alert.culprit
    rules = [r.as_str() for r in root.array("triggering_rules")]
    alert.rule = ", ".join(rules) or None
    alert.organization = alert.organization or _org_of(root.opt_str("url"))
    alert.needs_fetch = not alert.frames
    title = (
        (event.opt_str("title") if event else None)
        or _exception_title(alert)
        or (root.opt_str("message") or "Sentry issue")
    )
    return Task(
        source=source,
        kind=Kind.ALERT,
        event="webhook_plugin",
        title=title,
        body=root.opt_str("message", MAX_TEXT) or "",
        alert=alert,
        links=Links(alert=root.opt_str("url")),
        fingerprint=f"{source.value}:{alert.issue_id}",
        raw=payload,
    )


def _org_of(url: str | None) -> str | None:
    match = _ORG_URL.search(url or "")
    return match["org"] if match else None
