"""Policy and guard rails: who may trigger, what the agent may do, and what may be pushed.

Pure: nothing here talks to a forge or reads git. The pipeline fetches what a decision needs
(the requester's permission, the parsed diff) and hands it in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from astraforge.config.model import Budgets
from astraforge.globs import matches
from astraforge.policy.checks import Check, blocked, check_diff, check_patch, check_secrets
from astraforge.policy.merge import tighten
from astraforge.policy.model import (
    PERMISSIONS,
    Policy,
    TriggerPolicy,
    at_least,
    default,
    json_schema,
    load_file,
    parse,
)
from astraforge.task import Kind, Source, Task

__all__ = [
    "PERMISSIONS",
    "Authorization",
    "Check",
    "Policy",
    "TriggerPolicy",
    "at_least",
    "authorize",
    "blocked",
    "capped_budgets",
    "check_diff",
    "check_patch",
    "check_secrets",
    "command_check",
    "default",
    "json_schema",
    "load_file",
    "parse",
    "permission_needed",
    "read_check",
    "tighten",
    "with_network",
]


CommandCheckFn = Callable[[str], str | None]


@dataclass(frozen=True)
class Authorization:
    """Whether the requester may start a run, and why."""

    allowed: bool
    reason: str


def _local_request(task: Task) -> bool:
    """A request handed to astraforge directly (a file or --task), not by an event."""
    return task.source is Source.MANUAL and task.event == "request"


def permission_needed(task: Task, triggers: TriggerPolicy) -> str | None:
    """The login whose repository permission decides, or None when the lists decide alone."""
    requester = task.requester
    if requester is None or triggers.refuse(requester.login, requester.is_bot):
        return None
    if requester.is_bot or requester.login.endswith("[bot]"):
        return None
    return requester.login


def authorize(task: Task, triggers: TriggerPolicy, permission: str | None) -> Authorization:
    """Whether the requester may start a run: the lists first, then ``permission`` (the
    requester's permission as the forge reported it, or None when it was not fetched)."""
    requester = task.requester
    if requester is None:
        if task.kind is Kind.ALERT:
            return Authorization(True, f"an alert from {task.source.value}: no person asked")
        if task.kind is Kind.CI_FAILURE:
            return Authorization(True, "a failed CI run: no person asked")
        if _local_request(task):
            return Authorization(True, "a request given to astraforge directly, not by an event")
        return Authorization(
            False,
            f"a {task.kind.value} task from {task.event} names no requester, so its permission "
            "cannot be checked",
        )
    login = requester.login
    refusal = triggers.refuse(login, requester.is_bot)
    if refusal:
        return Authorization(False, refusal)
    if requester.is_bot or login.endswith("[bot]"):
        return Authorization(True, f"bot {login!r} is on triggers.allowed_bots")
    if permission is None:
        return Authorization(False, f"no forge to check {login!r}'s permission")
    if not at_least(permission, triggers.permission):
        return Authorization(
            False, f"{login!r} has {permission!r} permission; {triggers.permission!r} is needed"
        )
    return Authorization(True, f"{login!r} has {permission!r} permission")


def command_check(policy: Policy) -> CommandCheckFn:
    """For the shell tool: why a command is refused, or None."""

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
    """The configuration's budgets, lowered to the policy's ceilings."""
    caps = policy.budgets
    return Budgets(
        max_turns=min(budgets.max_turns, caps.max_turns),
        max_tokens=min(budgets.max_tokens, caps.max_tokens),
        max_cost_usd=min(budgets.max_cost_usd, caps.max_cost_usd),
        timeout_minutes=min(budgets.timeout_minutes, caps.timeout_minutes),
    )


def with_network(policy: Policy, network: str | None, allow: list[str]) -> Policy:
    """The trusted policy with the network the trusted settings give (the action's inputs,
    flags, environment); the allow list they name is added to the policy's own."""
    if network is None and not allow:
        return policy
    update: dict[str, object] = {"allow": [*policy.sandbox.allow, *allow]}
    if network is not None:
        update["network"] = network
    sandbox = type(policy.sandbox).model_validate(policy.sandbox.model_dump() | update)
    return policy.model_copy(update={"sandbox": sandbox})
