"""A plain-language request: ``{"request": "...", "title"?: "...", "requester"?: "login"}``."""

from __future__ import annotations

from typing import Any

from astraforge.events.payload import MAX_TEXT, Node, digest, title_of
from astraforge.task import Kind, Requester, Source, Task


def looks_like(payload: dict[str, Any]) -> bool:
    """Whether a payload is a plain-language request."""
    return isinstance(payload.get("request"), str)


def parse(payload: dict[str, Any]) -> Task:
    """A plain-language request as a Task."""
    root = Node(payload)
    request = root.string("request", MAX_TEXT)
    login = root.opt_str("requester")
    return Task(
        source=Source.MANUAL,
        kind=Kind.REQUEST,
        event="request",
        title=root.opt_str("title") or title_of(request),
        instruction=request,
        requester=Requester(login=login) if login else None,
        fingerprint=f"manual:{digest(request)}",
        raw=payload,
    )
