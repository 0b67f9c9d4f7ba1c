"""The egress proxy attacked from the sandbox's side, on its unix socket: names that lead
to private addresses, ports the list does not name, smuggled targets, and a sandbox that
looks for its door and kills every process it can see."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import commit, config_for

from astraforge.agent.loop import Budget
from astraforge.config import Budgets
from astraforge.gateway.allow import AllowList
from astraforge.gateway.service import Gateway
from astraforge.sandbox import open_sandbox


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello {self.headers.get('Host')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def ask(gateway: Gateway, raw: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(20)
        conn.connect(gateway.sockets[1])
        conn.sendall(raw.encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    return data.decode("latin-1")


def proxy(allow: list[str], private: list[str] = ()) -> tuple[Gateway, list[str]]:  # type: ignore[assignment]
    lines: list[str] = []
    gateway = Gateway(
        None,
        Budget(Budgets(), None),
        network="allowlist",
        allow=AllowList.of(allow, list(private)),
        log=lines.append,
    )
    return gateway, lines


def test_an_allowed_name_leading_to_loopback_is_refused_without_a_trusted_setting(
    server: int,
) -> None:
    gateway, lines = proxy([f"localhost:{server}"])
    with gateway:
        answer = ask(gateway, f"GET http://localhost:{server}/ HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert answer.startswith("HTTP/1.1 403")
    assert "resolves to a private address" in answer
    assert any("denied localhost" in line for line in lines)


def test_cloud_metadata_is_refused_even_when_listed_without_a_port() -> None:
    gateway, _ = proxy(["169.254.169.254"])
    with gateway:
        answer = ask(gateway, "GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\n\r\n")
    assert answer.startswith("HTTP/1.1 403")
    (record,) = gateway.proxy.connections
    assert record.decision == "denied"
    assert record.address == ""
    assert record.bytes_up == 0


def test_only_the_named_port_of_an_allowed_host_is_reachable(server: int) -> None:
    gateway, _ = proxy([f"localhost:{server}"], ["127.0.0.1"])
    with gateway:
        ok = ask(
            gateway, f"CONNECT localhost:{server} HTTP/1.1\r\n\r\nGET / HTTP/1.0\r\nHost: x\r\n\r\n"
        )
        other = ask(gateway, f"CONNECT localhost:{server + 1} HTTP/1.1\r\n\r\n")
    assert ok.startswith("HTTP/1.1 200 Connection Established")
    assert "hello x" in ok
    assert other.startswith("HTTP/1.1 403")


@pytest.mark.parametrize(
    "request_line",
    [
        "GET / HTTP/1.1",  # origin form: not a proxy request
        "GET https://localhost:{port}/ HTTP/1.1",  # https without CONNECT
        "GET http://localhost:{port}@evil.test/ HTTP/1.1",  # credentials smuggling a host
        "CONNECT localhost HTTP/1.1",  # no port
        "GET ftp://localhost:{port}/ HTTP/1.1",
    ],
)
def test_smuggled_targets_are_refused(server: int, request_line: str) -> None:
    gateway, _ = proxy([f"localhost:{server}"], ["127.0.0.1"])
    with gateway:
        answer = ask(gateway, request_line.format(port=server) + "\r\nHost: localhost\r\n\r\n")
    assert answer.split(" ")[1] in ("400", "403"), answer[:200]
    assert "hello" not in answer


def test_forwarded_requests_lose_proxy_credentials_and_keep_alive(server: int) -> None:
    gateway, _ = proxy([f"localhost:{server}"], ["127.0.0.1"])
    with gateway:
        answer = ask(
            gateway,
            f"GET http://localhost:{server}/x HTTP/1.1\r\nHost: localhost:{server}\r\n"
            "Proxy-Authorization: Basic c2VjcmV0\r\nConnection: keep-alive\r\n\r\n",
        )
    assert answer.startswith("HTTP/1.0 200")
    assert answer.endswith(f"hello localhost:{server}")
    (record,) = gateway.proxy.connections
    assert record.decision == "allowed"
    assert record.bytes_down > 0


@pytest.mark.parametrize("backend", ["docker", "docker-tcp", "bwrap"])
def test_the_door_is_out_of_the_sandboxs_reach(backend: str, tmp_path: Path, server: int) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.txt").write_text("a\n")
    import subprocess

    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    commit(repo)
    gateway, _ = proxy([f"localhost:{server}"], ["127.0.0.1"])
    fetch = (
        "python3 -c 'import urllib.request; "
        f'print(urllib.request.urlopen("http://localhost:{server}/", timeout=20).read().decode())\''
    )
    box = open_sandbox(config_for(backend), repo)
    box.door = gateway
    with gateway, box:
        seen = box.run("cat /proc/[0-9]*/cmdline | tr '\\0' ' '; echo", timeout=60)
        killed = box.run("kill -9 $(ls /proc | grep -E '^[0-9]+$' | grep -vx $$) 2>/dev/null; true")
        after = box.run(fetch, timeout=60)
    assert "/bin/sh" in seen.stdout
    assert "astraforge-forward" not in seen.stdout
    assert "nsenter" not in seen.stdout
    assert killed.stderr.strip() in ("", "Killed")
    assert after.stdout.strip() == f"hello localhost:{server}", after.stderr[-1000:]
