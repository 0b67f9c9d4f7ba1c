"""The trigger decision: does this event ask for a run? Always with the reason.

Separate from parsing: a Task says what happened, the decision says whether AstraForge acts.
Who may trigger comes from the policy's lists here; the requester's repository permission
is checked later, through the forge API (:func:`astraforge.policy.authorize`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from astraforge.config import TriggerConfig
from astraforge.events.commands import find_invocation
from astraforge.policy.model import TriggerPolicy
from astraforge.task import Kind, Task

#: Hidden marker AstraForge puts in every comment it writes.
COMMENT_MARKER = "<!-- astraforge"

_LEVELS = ("debug", "info", "warning", "error", "fatal")
_CLOSED_STATUSES = ("resolved", "ignored", "muted", "archived")


@dataclass(frozen=True)
class Decision:
    """Whether an event asks for a run, and why."""

    run: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _no(reason: str) -> Decision:
    return Decision(False, reason)


def decide(task: Task, config: TriggerConfig, who: TriggerPolicy | None = None) -> Decision:
    """Whether ``task`` asks for a run under ``config`` (what triggers) and ``who`` (the
    policy's lists of who may trigger; the forge permission is checked later)."""
    guard = _actor_guard(task, config, who or TriggerPolicy())
    if guard is not None:
        return guard
    if task.kind is Kind.ISSUE:
        return _issue(task, config)
    if task.kind is Kind.COMMENT_COMMAND:
        return _comment(task, config)
    if task.kind is Kind.ALERT:
        return _alert(task, config)
    return _request(task, config)


def _actor_guard(task: Task, config: TriggerConfig, who: TriggerPolicy) -> Decision | None:
    requester = task.requester
    if task.kind is Kind.COMMENT_COMMAND and COMMENT_MARKER in (task.instruction or ""):
        return _no("the comment was written by AstraForge itself")
    if requester is None:
        return None
    login = requester.login
    if login.lower() in {b.lower() for b in config.bot_logins}:
        return _no(f"the event was caused by AstraForge's own account {login!r}")
    refusal = who.refuse(login, requester.is_bot)
    return _no(refusal) if refusal else None


def _dispatch_type(task: Task) -> str | None:
    prefix = "repository_dispatch."
    return task.event[len(prefix) :] if task.event.startswith(prefix) else None


def _issue(task: Task, config: TriggerConfig) -> Decision:
    label = config.label
    action = task.event.partition(".")[2]
    if task.added_label is not None:
        if task.added_label == label:
            return Decision(True, f"label {label!r} was added")
        return _no(f"label {task.added_label!r} was added, not the trigger label {label!r}")
    if action in ("opened", "open", "reopened", "reopen"):
        if label in task.labels:
            return Decision(True, f"issue {action} with the trigger label {label!r}")
        return _no(f"issue {action} without the trigger label {label!r}")
    return _no(f"issue event {task.event!r} does not trigger; add the label {label!r}")


def _comment(task: Task, config: TriggerConfig) -> Decision:
    action = task.event.partition(".")[2]
    if action == "deleted":
        return _no("the comment was deleted")
    if task.invocation is None:
        how = f"start with {config.command!r}"
        if config.mention:
            how += f" or mention {config.mention!r}"
        return _no(f"the comment does not {how}")
    if task.on_pull_request:
        return _no(
            "the command was given on a pull/merge request; AstraForge acts on issues and alerts"
        )
    if action == "edited" and _previous_comment_invoked(task, config):
        return _no("the comment was edited, and its earlier text already asked for a run")
    asked = "gives the command" if task.invocation == "command" else "mentions the handle"
    return Decision(True, f"the comment {asked}")


def _previous_comment_invoked(task: Task, config: TriggerConfig) -> bool:
    changes = task.raw.get("changes")
    body = changes.get("body") if isinstance(changes, dict) else None
    before = body.get("from") if isinstance(body, dict) else None
    return isinstance(before, str) and find_invocation(before, config.syntax()) is not None


def _alert(task: Task, config: TriggerConfig) -> Decision:
    dispatch = _dispatch_type(task)
    if dispatch is not None and dispatch not in config.dispatch_types:
        return _no(f"repository_dispatch type {dispatch!r} is not in trigger.dispatch_types")
    alert = task.alert
    if alert is None:
        return _no("the alert carries no details")
    if alert.status in _CLOSED_STATUSES:
        return _no(f"the alert is {alert.status}")
    if alert.level:
        level = alert.level.lower()
        if level in _LEVELS and level not in {lv.lower() for lv in config.alert_levels}:
            return _no(f"alert level {level!r} is not in trigger.alert_levels")
    if config.environments and alert.environment not in config.environments:
        return _no(f"alert environment {alert.environment!r} is not in trigger.environments")
    return Decision(True, f"{task.source.value} alert {task.fingerprint} passes the filters")


def _request(task: Task, config: TriggerConfig) -> Decision:
    dispatch = _dispatch_type(task)
    if dispatch is not None and dispatch not in config.dispatch_types:
        return _no(f"repository_dispatch type {dispatch!r} is not in trigger.dispatch_types")
    if not (task.instruction or "").strip():
        return _no("the request is empty; pass the `request` input with what to fix")
    return Decision(True, "plain-language request")
