"""The trigger decision: does this event ask for a run? Always with the reason.

Separate from parsing: a Task says what happened, the decision says whether AstraForge acts.
Who may trigger comes from the policy's lists here; the requester's repository permission
is checked later, through the forge API (:func:`astraforge.policy.authorize`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from astraforge.config import CIFixConfig, TriggerConfig
from astraforge.events.commands import find_invocation
from astraforge.events.github_pulls import ACTIONS_APP
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


def decide(
    task: Task,
    config: TriggerConfig,
    who: TriggerPolicy | None = None,
    ci_fix: CIFixConfig | None = None,
) -> Decision:
    """Whether ``task`` asks for a run under ``config`` (what triggers) and ``who`` (the
    policy's lists of who may trigger; the forge permission is checked later). Whether a
    follow-up's PR may be continued is decided later too, from the forge's answers."""
    guard = _actor_guard(task, config, who or TriggerPolicy())
    if guard is not None:
        return guard
    if task.kind is Kind.ISSUE:
        return _issue(task, config)
    if task.kind in (Kind.COMMENT_COMMAND, Kind.FOLLOW_UP):
        return _comment(task, config)
    if task.kind is Kind.CI_FAILURE:
        return _ci_failure(task, ci_fix or CIFixConfig())
    if task.kind is Kind.ALERT:
        return _alert(task, config)
    return _request(task, config)


def _actor_guard(task: Task, config: TriggerConfig, who: TriggerPolicy) -> Decision | None:
    requester = task.requester
    if task.kind in (Kind.COMMENT_COMMAND, Kind.FOLLOW_UP) and COMMENT_MARKER in (
        task.instruction or ""
    ):
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
    if task.event.startswith("pull_request_review.") and action != "submitted":
        return _no(f"review {action}: only a submitted review asks for a run")
    if task.invocation is None:
        how = f"start with {config.command!r}"
        if config.mention:
            how += f" or mention {config.mention!r}"
        return _no(f"the comment does not {how}")
    if action == "edited" and _previous_comment_invoked(task, config):
        return _no("the comment was edited, and its earlier text already asked for a run")
    asked = "gives the command" if task.invocation == "command" else "mentions the handle"
    if task.kind is Kind.FOLLOW_UP:
        what = "review" if task.review_id and not task.review else "comment"
        return Decision(True, f"the {what} on pull request #{task.number} {asked}")
    return Decision(True, f"the comment {asked}")


def _ci_failure(task: Task, ci_fix: CIFixConfig) -> Decision:
    ci = task.ci
    if ci is None:
        return _no("the CI event carries no run")
    action = task.event.partition(".")[2]
    if ci.provider == "github_checks" and ci.source == ACTIONS_APP:
        return _no("a check run of GitHub Actions: its workflow_run event is the one acted on")
    if ci.provider.startswith("github") and action != "completed":
        return _no(f"workflow run {action}: only a completed run is looked at")
    if ci.provider == "gitlab_ci" and ci.source in ("trigger", "pipeline", "parent_pipeline"):
        return _no(f"the pipeline was started by a {ci.source}, as AstraForge's own jobs are")
    if ci.conclusion not in ("failure", "failed", "timed_out"):
        return _no(f"{ci.workflow!r} ended {ci.conclusion!r}, not failed")
    if ci_fix.workflows and ci.workflow not in ci_fix.workflows:
        return _no(f"{ci.workflow!r} is not in ci_fix.workflows")
    if ci_fix.max_rounds == 0:
        return _no("ci_fix.max_rounds is 0: CI failures are not fixed")
    return Decision(True, f"{ci.workflow!r} failed on {ci.head_branch or ci.head_sha}")


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
