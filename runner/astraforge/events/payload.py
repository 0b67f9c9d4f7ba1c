"""Typed, capped access to untrusted JSON payloads.

Every parser reads its payload through :class:`Node`, so a missing key or a wrong type
becomes a :class:`PayloadError` naming the field (``$.issue.number``), never a KeyError or a
TypeError, and no string or list grows past the caps below.
"""

from __future__ import annotations

import hashlib
from typing import Any, NoReturn

from astraforge.errors import PayloadError
from astraforge.task import CIRun, Kind, Links, PullRef, Repository, Source, Task

MAX_TEXT = 65_536  # issue bodies, comments, messages
MAX_SHORT = 4_096  # titles, names, single frame fields
MAX_FRAMES = 250  # a stack trace keeps its newest frames
MAX_ITEMS = 200  # labels, tags, breadcrumbs, headers
TRUNCATED = "\n…[truncated by AstraForge]"


def cap(text: str, limit: int) -> str:
    """Text cut to ``limit`` characters, saying so."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(TRUNCATED))] + TRUNCATED


def _type_name(value: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), type(value).__name__
    )


class Node:
    """A position in a JSON document: ``Node(payload).obj("issue").integer("number")``."""

    def __init__(self, value: Any, path: str = "$") -> None:
        self.value = value
        self.path = path

    def fail(self, key: str, problem: str) -> NoReturn:
        raise PayloadError(f"field {self._sub(key)} {problem}")

    def _sub(self, key: str | int) -> str:
        return f"{self.path}[{key}]" if isinstance(key, int) else f"{self.path}.{key}"

    def _get(self, key: str) -> Any:
        if not isinstance(self.value, dict):
            raise PayloadError(f"field {self.path} must be an object, got {_type_name(self.value)}")
        return self.value.get(key)

    def has(self, key: str) -> bool:
        return isinstance(self.value, dict) and self.value.get(key) is not None

    def obj(self, key: str) -> Node:
        """A required object."""
        value = self._get(key)
        if value is None:
            self.fail(key, "is required")
        if not isinstance(value, dict):
            self.fail(key, f"must be an object, got {_type_name(value)}")
        return Node(value, self._sub(key))

    def opt_obj(self, key: str) -> Node | None:
        value = self._get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.fail(key, f"must be an object, got {_type_name(value)}")
        return Node(value, self._sub(key))

    def string(self, key: str, limit: int = MAX_SHORT) -> str:
        """A required, non-empty string."""
        value = self.opt_str(key, limit)
        if not value:
            self.fail(key, "is required" if value is None else "must not be empty")
        return value

    def opt_str(self, key: str, limit: int = MAX_SHORT) -> str | None:
        value = self._get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.fail(key, f"must be a string, got {_type_name(value)}")
        return cap(str(value), limit)

    def integer(self, key: str) -> int:
        value = self.opt_int(key)
        if value is None:
            self.fail(key, "is required")
        return value

    def opt_int(self, key: str) -> int | None:
        value = self._get(key)
        if value is None:
            return None
        if isinstance(value, bool):
            self.fail(key, "must be an integer, got boolean")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().isdigit() and len(value) < 20:
            return int(value)
        self.fail(key, f"must be an integer, got {_type_name(value)}")

    def opt_bool(self, key: str) -> bool | None:
        value = self._get(key)
        if value is None:
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        self.fail(key, f"must be a boolean, got {_type_name(value)}")

    def array(self, key: str, limit: int = MAX_ITEMS, keep: str = "head") -> list[Node]:
        """An optional array (missing = empty), capped to ``limit`` items from head or tail."""
        value = self._get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(key, f"must be an array, got {_type_name(value)}")
        indexed = list(enumerate(value))
        if len(indexed) > limit:
            indexed = indexed[-limit:] if keep == "tail" else indexed[:limit]
        base = self._sub(key)
        return [Node(item, f"{base}[{i}]") for i, item in indexed]

    def list_len(self, key: str) -> int:
        value = self._get(key)
        return len(value) if isinstance(value, list) else 0

    def as_str(self, limit: int = MAX_SHORT) -> str:
        if isinstance(self.value, bool) or not isinstance(self.value, str | int | float):
            raise PayloadError(f"field {self.path} must be a string, got {_type_name(self.value)}")
        return cap(str(self.value), limit)

    def is_obj(self) -> bool:
        return isinstance(self.value, dict)


def title_of(text: str, limit: int = 120) -> str:
    """A one-line title from free text: its first non-empty line, shortened."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "request")
    return first if len(first) <= limit else first[: limit - 3] + "..."


def digest(text: str) -> str:
    """A short stable id of free text (case and whitespace do not matter)."""
    return hashlib.sha256(" ".join(text.split()).lower().encode()).hexdigest()[:12]


def ci_task(
    source: Source, event: str, repo: Repository, ci: CIRun, pull: PullRef | None, raw: Any
) -> Task:
    """A failed CI run as a Task: about its pull/merge request when it names one (GitLab's
    are ``!N``, apart from issues), else about the workflow and commit that failed."""
    mark = "!" if source is Source.GITLAB else "#"
    fingerprint = (
        f"{source.value}:{repo.full_name}{mark}{pull.number}"
        if pull
        else f"{source.value}:{repo.full_name}:ci:{ci.workflow}:{(ci.head_sha or '')[:12]}"
    )
    return Task(
        source=source,
        kind=Kind.CI_FAILURE,
        event=event,
        repository=repo,
        number=pull.number if pull else None,
        on_pull_request=pull is not None,
        title=f"{ci.workflow}: {ci.conclusion} on {ci.head_branch or ci.head_sha or 'a commit'}",
        links=Links(event=ci.url, issue=pull.url if pull else None),
        fingerprint=fingerprint,
        pull=pull,
        ci=ci,
        raw=raw,
    )
