"""Policy and guard rails: who may trigger, what the agent may do, and what may be pushed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from astraforge.config import Budgets
from astraforge.forges.base import Forge, at_least
from astraforge.globs import matches
from astraforge.policy.checks import Check, blocked, check_patch, parse_patch
from astraforge.policy.merge import tighten
from astraforge.policy.model import (
    Policy,
    TriggerPolicy,
    default,
    json_schema,
    load_file,
    parse,
)
from astraforge.task import Task

__all__ = [
    "Check",
    "Policy",
    "TriggerPolicy",
    "authorize",
    "blocked",
    "capped_budgets",
    "check_patch",
    "command_check",
    "default",
    "json_schema",
    "load_file",
    "parse",
    "parse_patch",
    "read_check",
    "tighten",
]


CommandCheckFn = Callable[[str], str | None]


@dataclass(frozen=True)
class Authorization:
    allowed: bool
    reason: str


def authorize(task: Task, triggers: TriggerPolicy, forge: Forge | None) -> Authorization:
    """Whether the requester may start a run: lists first, then the forge's permission."""
    requester = task.requester
    if requester is None:
        # Alerts forwarded by the relay and manual dispatches carry no requester: whoever
        # could send them already had access to the repository's CI.
        return Authorization(True, "no requester: the event came from CI or the relay")
    login = requester.login
    refusal = triggers.refuse(login, requester.is_bot)
    if refusal:
        return Authorization(False, refusal)
    if requester.is_bot or login.endswith("[bot]"):
        return Authorization(True, f"bot {login!r} is on triggers.allowed_bots")
    if forge is None:
        return Authorization(False, f"no forge to check {login!r}'s permission")
    permission = forge.permission(login)
    if not at_least(permission, triggers.permission):
        return Authorization(
            False, f"{login!r} has {permission!r} permission; {triggers.permission!r} is needed"
        )
    return Authorization(True, f"{login!r} has {permission!r} permission")


def command_check(policy: Policy) -> CommandCheckFn:
    def check(command: str) -> str | None:
        for rule in policy.commands.deny:
            if rule.regex.search(command):
                return rule.reason or f"matches the denied pattern {rule.pattern!r}"
        if policy.commands.allow and not any(
            r.regex.search(command) for r in policy.commands.allow
        ):
            return "it matches none of the allowed command patterns"
        return None

    return check


def read_check(policy: Policy) -> CommandCheckFn:
    """For the file tools: why a path may not be read or written, or None."""

    def check(path: str) -> str | None:
        rule = matches(path, policy.paths.read_denied)
        return f"{path} matches {rule!r} in paths.read_denied" if rule else None

    return check


def capped_budgets(budgets: Budgets, policy: Policy) -> Budgets:
    caps = policy.budgets
    return Budgets(
        max_turns=min(budgets.max_turns, caps.max_turns),
        max_tokens=min(budgets.max_tokens, caps.max_tokens),
        max_cost_usd=min(budgets.max_cost_usd, caps.max_cost_usd),
        timeout_minutes=min(budgets.timeout_minutes, caps.timeout_minutes),
    )
