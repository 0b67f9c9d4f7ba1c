"""The allow list: entries, matching, narrowing by a repository, and private addresses."""

from __future__ import annotations

import ipaddress

import pytest

from astraforge.errors import UsageError
from astraforge.gateway.allow import AllowList, narrow, parse, parse_all


def test_a_bare_host_allows_the_web_ports_only() -> None:
    allow = AllowList.of(["pypi.org"])
    assert allow.allows("pypi.org", 443)
    assert allow.allows("PyPI.org", 80)
    assert not allow.allows("pypi.org", 22)
    assert not allow.allows("files.pypi.org", 443)
    assert not allow.allows("pypi.org.evil.test", 443)


def test_a_port_entry_allows_that_port_only() -> None:
    allow = AllowList.of(["localhost:8080", "[::1]:9000"])
    assert allow.allows("localhost", 8080)
    assert not allow.allows("localhost", 443)
    assert allow.allows("::1", 9000)


def test_a_wildcard_allows_names_under_the_domain_not_the_domain() -> None:
    allow = AllowList.of(["*.pythonhosted.org"])
    assert allow.allows("files.pythonhosted.org", 443)
    assert not allow.allows("pythonhosted.org", 443)
    assert not allow.allows("evilpythonhosted.org", 443)


@pytest.mark.parametrize("text", ["", "a b", "host:0", "host:99999", "host:http", "*.", "-:1:2"])
def test_bad_entries_get_one_clear_error(text: str) -> None:
    if not text:
        assert parse_all([text]) == []
        return
    with pytest.raises(UsageError, match="allow-list entry"):
        parse(text)


def test_a_repository_may_only_narrow_the_trusted_list() -> None:
    trusted = parse_all(["*.example.com", "pypi.org", "localhost:8080"])
    chosen = parse_all(
        ["docs.example.com", "pypi.org:443", "evil.test", "localhost:9090", "*.example.com"]
    )
    kept = [str(e) for e in narrow(trusted, chosen)]
    assert kept == ["docs.example.com", "pypi.org:443", "*.example.com"]


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.1",
        "172.16.5.4",
        "169.254.169.254",
        "100.64.0.1",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",  # noqa: S104 - an address refused, not bound
        "224.0.0.1",
    ],
)
def test_private_and_metadata_addresses_are_refused_by_default(address: str) -> None:
    allow = AllowList.of(["example.com"])
    assert not allow.may_connect(ipaddress.ip_address(address))


def test_an_ip_literal_with_a_port_is_an_explicit_trusted_setting() -> None:
    allow = AllowList.of(["127.0.0.1:8080", "10.0.0.5"])
    assert allow.may_connect(ipaddress.ip_address("127.0.0.1"))
    assert not allow.may_connect(ipaddress.ip_address("10.0.0.5"))  # no port: not explicit
    assert AllowList.of([], ["10.0.0.5"]).may_connect(ipaddress.ip_address("10.0.0.5"))
    assert allow.may_connect(ipaddress.ip_address("93.184.215.14"))
