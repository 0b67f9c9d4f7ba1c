"""The public ``astraforge.toolkit.Sandbox`` on both backends: files and trees round-trip,
the shell keeps its state, timeouts and limits hold, changes are exact (modes, symlinks),
and nothing reaches the host outside what the caller asks for."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.conftest import IMAGE, make_repo

from astraforge.toolkit import Limits, Sandbox, UsageError


@pytest.fixture(params=["docker", "bwrap"])
def box(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox.open(
        make_repo(tmp_path),
        backend=request.param,
        image=IMAGE,
        limits=Limits(memory_mb=256, pids=64, command_timeout=30),
    ) as sandbox:
        yield sandbox


def test_files_and_trees_round_trip(box: Sandbox, tmp_path: Path) -> None:
    box.write_file("notes/a.txt", "hello\n")
    assert box.read_file("notes/a.txt") == b"hello\n"
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "data.bin").write_bytes(bytes(range(256)))
    (tree / "run.sh").write_text("#!/bin/sh\necho ran\n")
    (tree / "run.sh").chmod(0o755)
    (tree / "link").symlink_to("sub/data.bin")
    box.upload(tree, "up")
    assert box.list_dir("up") == ["link", "run.sh", "sub/"]
    assert box.run("./up/run.sh").output == "ran\n"
    assert box.read_file("up/link") == bytes(range(256))
    back = tmp_path / "back"
    assert box.download("up", back) is None
    assert (back / "sub" / "data.bin").read_bytes() == bytes(range(256))
    assert os.access(back / "run.sh", os.X_OK)
    assert (back / "link").is_symlink()
    assert os.readlink(back / "link") == "sub/data.bin"
    assert box.download("notes/a.txt") == b"hello\n"


def test_the_shell_keeps_its_state_and_timeouts_hold(box: Sandbox) -> None:
    box.run("cd pkg && export GREETING=hi")
    assert box.run('echo "$GREETING $(basename $PWD)"').output == "hi pkg\n"
    slow = box.run("sleep 20", timeout=1)
    assert slow.timed_out
    assert not slow.ok
    assert box.run("echo still here").output == "still here\n"


def test_limits_and_isolation_hold(box: Sandbox) -> None:
    forks = box.run("for i in $(seq 100); do sleep 5 & done 2>&1; wait", timeout=20)
    assert "fork" in forks.output.lower() or "resource" in forks.output.lower()
    assert box.run("id -u").output == "1000\n"
    assert box.run("cat /proc/self/status | grep CapEff").output.split()[-1] == "0000000000000000"
    net = box.run("python3 -c 'import socket; socket.create_connection((\"1.1.1.1\", 53), 3)'")
    assert not net.ok  # no network but loopback
    assert not box.run("touch /usr/x").ok
    assert "CANARY_GITCONFIG" not in box.run("cat .git/config 2>/dev/null; true").output


def test_changes_are_exact_with_modes_and_symlinks(box: Sandbox) -> None:
    box.write_file("pkg/calc.py", "def add(a, b):\n    return a + b\n")
    box.run("chmod +x README.md && ln -s pkg/calc.py calc-link && rm old.txt")
    patch = box.changes()
    assert "+    return a + b" in patch
    assert "old mode 100644\nnew mode 100755" in patch
    assert "new file mode 120000" in patch
    assert "deleted file mode 100644" in patch


def test_paths_stay_inside_the_workspace(box: Sandbox, tmp_path: Path) -> None:
    with pytest.raises(PermissionError):
        box.read_file("../etc/passwd")
    with pytest.raises(PermissionError):
        box.write_file("/etc/evil", "x")
    box.run("ln -s /etc/passwd escape && mkdir d && ln -s /tmp d/out")
    with pytest.raises(PermissionError):
        box.read_file("escape")
    back = tmp_path / "down"
    box.download("d", back)
    assert (back / "out").is_symlink()  # recreated as a link, never written through


def test_bad_arguments_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a folder"):
        Sandbox.open(tmp_path / "missing", backend="bwrap")
    with pytest.raises(UsageError, match="network='allowlist'"):
        Sandbox.open(tmp_path, backend="bwrap", allow=["example.org"])


@pytest.mark.parametrize("backend", ["docker", "bwrap"])
def test_an_allow_list_lets_out_the_named_host_only(tmp_path: Path, backend: str) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Hello(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello through the proxy")

        def log_message(self, format: str, *args: object) -> None:
            pass

    servers = [ThreadingHTTPServer(("127.0.0.1", 0), Hello) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    allowed, other = (s.server_address[1] for s in servers)
    fetch = (
        "python3 -c 'import sys, urllib.request as u\n"
        "for port in sys.argv[1:]:\n"
        '    try: print(u.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read().decode())\n'
        "    except Exception as exc: print(type(exc).__name__)' " + f"{allowed} {other}"
    )
    try:
        with Sandbox.open(
            make_repo(tmp_path),
            backend=backend,
            image=IMAGE,
            network="allowlist",
            allow=[f"127.0.0.1:{allowed}"],
        ) as box:
            lines = box.run(fetch).output.splitlines()
    finally:
        for server in servers:
            server.shutdown()
    assert lines[0] == "hello through the proxy"
    assert lines[1] != "hello through the proxy"
