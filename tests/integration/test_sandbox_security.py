"""The sandbox can hurt nothing: real containers and real bubblewrap, both backends."""

from __future__ import annotations

import os
import resource
import socket
from pathlib import Path

import pytest
from tests.integration.conftest import SandboxFactory

CANARY = "CANARY_ENV_9c1d_do_not_leak"


def test_runner_secrets_do_not_enter(
    sandbox_factory: SandboxFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CANARY_TOKEN", CANARY)
    monkeypatch.setenv("GITHUB_TOKEN", CANARY)
    box = sandbox_factory()
    env = box.run("env; cat /proc/1/environ /proc/self/environ | tr '\\0' '\\n'")
    assert env.exit_code == 0
    assert "PATH=" in env.stdout  # the command really printed the environment
    assert CANARY not in env.stdout
    assert "CANARY_" not in env.stdout
    found = box.run('grep -rl CANARY_ /workspace /tmp "$HOME" 2>/dev/null; ls -a /workspace')
    assert "CANARY" not in found.stdout
    assert ".git" not in found.stdout.split()  # the runner's .git (with its token) stays out


def test_no_network_but_loopback(sandbox_factory: SandboxFactory) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    try:
        box = sandbox_factory()
        links = box.run("tail -n +3 /proc/net/dev | cut -d: -f1")
        assert links.stdout.split() == ["lo"]
        probe = box.run(
            f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 2)\""
        )
        assert probe.exit_code != 0
        assert "Connection refused" in probe.stderr
    finally:
        listener.close()


def test_no_privileges(sandbox_factory: SandboxFactory, backend: str) -> None:
    box = sandbox_factory()
    status = box.run("grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs)' /proc/self/status; id -u")
    fields = dict(line.split(":\t") for line in status.stdout.splitlines() if ":\t" in line)
    assert int(fields["CapEff"], 16) == 0
    assert int(fields["CapPrm"], 16) == 0
    assert status.stdout.splitlines()[-1] != "0"
    assert box.run("mount -t tmpfs none /tmp").exit_code != 0
    assert box.run("unshare -r true").exit_code != 0
    assert box.run("touch /usr/pwned").exit_code != 0
    assert box.run("touch /pwned").exit_code != 0
    assert box.run("ls /var/run/docker.sock /run/docker.sock").exit_code != 0
    assert box.run('touch /workspace/ok /tmp/ok "$HOME/ok"').exit_code == 0


def test_docker_container_has_no_host_bind_mount(repo: Path) -> None:
    import docker
    from tests.integration.conftest import config_for

    from astraforge.sandbox.docker import DockerSandbox, verify

    config = config_for("docker")
    with DockerSandbox(config, repo) as box:  # type: ignore[arg-type]
        attrs = docker.from_env().api.inspect_container(box.name)
        assert [m["Type"] for m in attrs["Mounts"]] == ["volume"]
        assert not attrs["HostConfig"]["Binds"]
        assert verify(attrs, config, f"{box.name}-ws") == []  # type: ignore[arg-type]
        loosened = {
            **attrs,
            "HostConfig": {**attrs["HostConfig"], "CapAdd": ["SYS_ADMIN"], "NetworkMode": "host"},
        }
        problems = verify(loosened, config, f"{box.name}-ws")  # type: ignore[arg-type]
        assert any("NetworkMode" in p for p in problems)
        assert any("capabilities added" in p for p in problems)


def test_fork_bomb_hits_the_pids_limit(sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory(pids=64)
    bomb = box.run("bomb() { bomb | bomb & }; bomb; sleep 2", timeout=8)
    assert bomb.exit_code != 0 or bomb.timed_out or "fork" in bomb.stderr.lower()
    after = box.run("echo alive", timeout=30)
    assert after.stdout == "alive\n"


def test_memory_hog_is_oom_killed(sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory(memory_mb=128)
    hog = box.run("python3 -c \"x = []\nwhile True: x.append(b'x' * (16 * 2**20))\"", timeout=60)
    assert hog.exit_code == 137
    assert hog.oom_killed
    assert box.run("echo alive").stdout == "alive\n"


def test_timeout_kills_the_command_and_the_session_goes_on(sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory()
    slow = box.run("sh -c 'sleep 60' & sleep 60", timeout=1)
    assert slow.timed_out
    assert slow.exit_code == 137
    assert slow.duration < 10
    # the whole process group died (zombies wait for init to reap them)
    left = box.run("ps -e -o stat=,args= | grep -v '^Z' | grep -c '[s]leep 60$' || true")
    assert left.stdout.strip() == "0"
    assert box.run("echo next").stdout == "next\n"


def test_a_gigabyte_of_output_keeps_runner_memory_bounded(sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory(output_limit=64 * 1024)
    box.run("true")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    flood = box.run("head -c 1000000000 /dev/zero | tr '\\0' 'a'; echo; echo END", timeout=300)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert flood.exit_code == 0
    assert flood.truncated
    assert flood.stdout.startswith("a" * 1000)
    assert flood.stdout.endswith("END\n")
    assert "bytes omitted" in flood.stdout
    assert len(flood.stdout) < 100_000
    assert grown_mib < 64, f"runner grew by {grown_mib:.0f} MiB"


def test_sandbox_writes_never_reach_the_source(sandbox_factory: SandboxFactory, repo: Path) -> None:
    box = sandbox_factory()
    assert box.run("echo changed > README.md && rm old.txt").exit_code == 0
    assert (repo / "README.md").read_text() == "# sample\n"
    assert (repo / "old.txt").exists()


def test_cleanup_leaves_nothing(repo: Path, backend: str) -> None:
    from tests.integration.conftest import config_for

    from astraforge.sandbox import open_sandbox

    box = open_sandbox(config_for(backend), repo, run_id=f"cleanup{os.getpid()}")
    with box:
        box.run("true")
    if backend.startswith("docker"):
        import docker

        client = docker.from_env()
        assert not client.containers.list(all=True, filters={"name": f"cleanup{os.getpid()}"})
        assert not client.volumes.list(filters={"name": f"cleanup{os.getpid()}"})
    else:
        assert not list(Path("/tmp").glob(f"astraforge-bwrap-cleanup{os.getpid()}-*"))
