"""A repository's own policy may only tighten the trusted one.

:func:`tighten` looks only at what the repository's file sets, and keeps for each rule the
stricter value: more protected and read-denied paths, more denied commands and users, lower
limits, fewer allowed bots and users, a stricter network, scanning kept on. What the file
would loosen stays as the trusted policy says, and is reported, one line each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from astraforge.policy.model import Policy

# Ordered from the loosest to the strictest.
ORDERS = {
    "permission": ("write", "maintain", "admin"),
}
UNION = {"protected", "lockfiles", "read_denied", "denied_users", "deny", "plugins"}
OR_FLAGS = {"protect_lockfiles", "scan"}  # turning them on tightens
AND_FLAGS = {"allow_binary", "allow_submodules"}  # turning them on loosens
SUBSETS = {"allowed_bots"}  # allow lists: a repository may only remove entries
NARROWING = {"allowed_users", "allow"}  # empty means "anyone": a list narrows it


def _key(value: Any) -> Any:
    return value.model_dump_json() if isinstance(value, BaseModel) else value


class _Merge:
    def __init__(self) -> None:
        self.refused: list[str] = []

    def field(self, name: str, field: str, base: Any, own: Any) -> Any:
        if name == "sandbox.network":
            return self._network(name, base, own)
        if name == "sandbox.allow":
            return self._hosts(name, base, own)
        rule = self._rule(field)
        return rule(name, base, own)

    def _network(self, name: str, base: str, own: str) -> str:
        """`none` is always stricter; setup-only and allowlist loosen different things, so a
        repository may not trade one for the other."""
        if own in (base, "none"):
            return own
        self.refused.append(f"{name} {own!r} is looser than the trusted {base!r}")
        return base

    def _hosts(self, name: str, base: list[str], own: list[str]) -> list[str]:
        """The repository's entries that the trusted list already allows."""
        from astraforge.gateway.allow import narrow, parse_all

        kept = [str(e) for e in narrow(parse_all(base), parse_all(own))]
        wider = [entry for entry in own if entry not in kept]
        if wider:
            self.refused.append(f"{name} would add {', '.join(repr(e) for e in wider)}")
        return kept

    def _rule(self, field: str) -> Callable[[str, Any, Any], Any]:
        if field in ORDERS:
            return self._order(ORDERS[field])
        if field in UNION:
            return lambda _, b, o: list({_key(x): x for x in [*b, *o]}.values())
        if field in OR_FLAGS:
            return self._or_flag
        if field in AND_FLAGS:
            return self._and_flag
        if field in SUBSETS:
            return self._subset
        if field in NARROWING:
            return self._narrow
        return self._lower

    def _order(self, order: tuple[str, ...]) -> Callable[[str, Any, Any], Any]:
        def pick(name: str, base: str, own: str) -> str:
            if order.index(own) < order.index(base):
                self.refused.append(f"{name} {own!r} is looser than the trusted {base!r}")
                return base
            return own

        return pick

    def _or_flag(self, name: str, base: bool, own: bool) -> bool:
        if base and not own:
            self.refused.append(f"{name} false would turn off what the trusted policy turns on")
        return base or own

    def _and_flag(self, name: str, base: bool, own: bool) -> bool:
        if own and not base:
            self.refused.append(f"{name} would allow what the trusted policy forbids")
        return base and own

    def _subset(self, name: str, base: list[Any], own: list[Any]) -> list[Any]:
        keys = {_key(x) for x in own}
        extra = [x for x in own if _key(x) not in {_key(b) for b in base}]
        if extra:
            self.refused.append(f"{name} would add {', '.join(repr(_key(x)) for x in extra)}")
        return [x for x in base if _key(x) in keys]

    def _narrow(self, name: str, base: list[Any], own: list[Any]) -> list[Any]:
        if not base:
            return own
        if not own:
            return base
        return self._subset(name, base, own)

    def _lower(self, name: str, base: Any, own: Any) -> Any:
        if own > base:
            self.refused.append(f"{name} {own} is above the trusted {base}")
            return base
        return own


def tighten(base: Policy, own: Policy) -> tuple[Policy, list[str]]:
    """(the merged policy, what ``own`` tried to loosen). Only fields ``own`` sets count."""
    merge = _Merge()
    sections: dict[str, BaseModel] = {}
    for section in Policy.model_fields:
        if section == "version":
            continue
        base_part: BaseModel = getattr(base, section)
        own_part: BaseModel = getattr(own, section)
        if section not in own.model_fields_set:
            sections[section] = base_part
            continue
        updates = {
            field: merge.field(
                f"{section}.{field}", field, getattr(base_part, field), getattr(own_part, field)
            )
            for field in own_part.model_fields_set
        }
        sections[section] = base_part.model_copy(update=updates)
    return Policy.model_validate({"version": 1, **sections}), merge.refused
