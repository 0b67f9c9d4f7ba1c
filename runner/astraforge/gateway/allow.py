"""The egress allow list: ``host``, ``host:port`` and ``*.domain`` entries, and which
addresses a name may lead to.

A bare host allows ports 80 and 443; ``host:port`` that port only; ``*.example.com`` every
name under example.com (not example.com itself) on 80 and 443, or on the port it names.
Names are resolved by the gateway, never by the sandbox, and an answer in a loopback,
private, link-local, shared, multicast or reserved range (cloud metadata at 169.254.169.254
among them) is refused unless a trusted setting names that address: an entry that is an IP
literal with a port, or ``private`` (the tests' local servers).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator

from astraforge.errors import UsageError

WEB_PORTS = (80, 443)
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Entry:
    """One allow-list entry."""

    host: str  # lower case; "*.example.com" for a domain
    port: int | None  # None: 80 and 443

    def __str__(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def literal(self) -> Address | None:
        return _literal(self.host)

    def matches(self, host: str, port: int) -> bool:
        if port not in ((self.port,) if self.port is not None else WEB_PORTS):
            return False
        if self.host.startswith("*."):
            return host.endswith(self.host[1:]) and host != self.host[2:]
        return host == self.host

    def covers(self, other: Entry) -> bool:
        """Whether every connection ``other`` allows, this entry allows too."""
        ports = [other.port] if other.port is not None else list(WEB_PORTS)
        if other.host.startswith("*."):
            return all(
                self.host.startswith("*.")
                and (other.host == self.host or other.host.endswith(self.host[1:]))
                and self.matches("x" + self.host[1:], port)
                for port in ports
            )
        return all(self.matches(other.host, port) for port in ports)


def parse(text: str) -> Entry:
    """One entry from its text; a clear error for anything else."""
    raw = text.strip().lower()
    host, port = raw, None
    if raw.startswith("["):  # [::1]:8080
        end = raw.find("]")
        host, rest = raw[: end + 1], raw[end + 1 :]
        port = rest[1:] if rest.startswith(":") else None
    elif raw.count(":") == 1:
        host, port = raw.split(":")
    number = None
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(
                f"allow-list entry {text!r} has a bad port", "write host, host:port or *.domain"
            )
        number = int(port)
    label = host[2:] if host.startswith("*.") else host
    valid = label and all(part and part.replace("-", "").isalnum() for part in label.split("."))
    if not valid and _literal(host) is None:
        raise UsageError(
            f"allow-list entry {text!r} is not a host name", "write host, host:port or *.domain"
        )
    return Entry(host, number)


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def parse_all(texts: Sequence[str]) -> list[Entry]:
    """Every non-blank entry of a list, parsed."""
    return [parse(text) for text in texts if text.strip()]


def hosts(texts: list[str]) -> list[str]:
    """A configured list checked and written the one way (for pydantic validators)."""
    try:
        return [str(entry) for entry in parse_all(texts)]
    except UsageError as exc:
        raise ValueError(exc.one_line()) from None


HostList = Annotated[list[str], AfterValidator(hosts)]  # a configured allow list, checked


def narrow(trusted: list[Entry], chosen: list[Entry]) -> list[Entry]:
    """A repository's list kept to what the trusted list already allows."""
    return [entry for entry in chosen if any(t.covers(entry) for t in trusted)]


def is_public(address: Address) -> bool:
    """Whether an address may be reached without a trusted setting naming it."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


@dataclass
class AllowList:
    """The run's allow list and the private addresses trusted settings name."""

    entries: list[Entry]
    private: frozenset[Address] = frozenset()

    @classmethod
    def of(cls, allow: Sequence[str], private: Sequence[str] = ()) -> AllowList:
        entries = parse_all(allow)
        named = {e.literal for e in entries if e.literal is not None and e.port is not None}
        try:
            extra = {ipaddress.ip_address(p.strip()) for p in private if p.strip()}
        except ValueError as exc:
            raise UsageError(f"{exc}", "name IP addresses in allow_private") from None
        return cls(entries, frozenset({a for a in named if a is not None} | extra))

    def allows(self, host: str, port: int) -> bool:
        host = host.lower().strip("[]")
        return any(
            entry.matches(host, port) or entry.matches(f"[{host}]", port) for entry in self.entries
        )

    def may_connect(self, address: Address) -> bool:
        return is_public(address) or address in self.private
