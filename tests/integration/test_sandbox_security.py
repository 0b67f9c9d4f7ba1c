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

    from astraforge.sandbox.docker import DockerSandbox
    from astraforge.sandbox.hardening import verify

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


# -- only what the repository tracks enters; modes come back exact (#13.3) ---------------------

CREDENTIAL_FILES = {
    "gha-creds-1a2b3c.json": '{"type": "external_account", "token": "CANARY_GHA_CREDS"}\n',
    ".git-credentials": "https://x-access-token:CANARY_GIT_CREDS@github.com\n",
    ".docker/config.json": '{"auths": {"ghcr.io": {"auth": "CANARY_DOCKER"}}}\n',
    "build/ignored.txt": "CANARY_IGNORED\n",
}


def test_untracked_and_ignored_files_stay_out(sandbox_factory: SandboxFactory, repo: Path) -> None:
    (repo / ".gitignore").write_text("build/\n")
    from tests.integration.conftest import commit

    commit(repo)
    for name, text in CREDENTIAL_FILES.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    box = sandbox_factory()
    found = box.run("grep -rl CANARY_ /workspace /tmp 2>/dev/null; ls -A /workspace")
    assert "CANARY" not in found.stdout
    for name in CREDENTIAL_FILES:
        assert name.split("/")[0] not in found.stdout.split()
    assert "README.md" in found.stdout.split()  # tracked files are there


def test_a_trusted_include_names_extra_paths(sandbox_factory: SandboxFactory, repo: Path) -> None:
    (repo / "generated").mkdir()
    (repo / "generated" / "schema.json").write_text("{}\n")
    (repo / "gha-creds-x.json").write_text("CANARY\n")
    box = sandbox_factory(include=["generated/"])
    listing = box.run("ls -A /workspace /workspace/generated").stdout
    assert "schema.json" in listing
    assert "gha-creds-x.json" not in listing


def test_an_edited_executable_keeps_its_mode(sandbox_factory: SandboxFactory, repo: Path) -> None:
    from tests.integration.conftest import commit

    (repo / "run.sh").write_text("#!/bin/sh\necho one\n")
    (repo / "run.sh").chmod(0o755)
    commit(repo)
    box = sandbox_factory()
    box.write_file("run.sh", b"#!/bin/sh\necho two\n")  # what edit_file does
    changes = box.changes()
    assert changes.modified == ["run.sh"]
    assert "old mode" not in changes.patch
    assert " 100755\n" in changes.patch
    box.run("chmod -x run.sh")
    assert "new mode 100644" in box.changes().patch  # a real mode change is kept too


# -- bubblewrap parity (#13.6), on both backends ----------------------------------------------


def test_the_workspace_size_cap_holds(sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory(workspace_mb=16)
    filled = box.run("head -c 67108864 /dev/zero > big.bin; echo rc=$?; du -sk /workspace")
    assert "rc=0" not in filled.stdout
    used_kib = int(filled.stdout.split()[-2])
    assert used_kib <= 16 * 1024


@pytest.mark.parametrize("kind", ["fifo", "socket", "device"])
def test_reading_a_special_file_is_refused_at_once(
    sandbox_factory: SandboxFactory, kind: str
) -> None:
    import time

    box = sandbox_factory()
    make = {
        "fifo": "mkfifo special",
        "socket": "python3 -c \"import socket; socket.socket(socket.AF_UNIX).bind('special')\"",
        "device": "ln -s /dev/zero special",
    }[kind]
    assert box.run(make).exit_code == 0
    started = time.monotonic()
    with pytest.raises(OSError, match="special"):
        box.read_file("special")
    assert time.monotonic() - started < 5


def test_bwrap_shows_a_short_list_of_etc(repo: Path) -> None:
    from tests.integration.conftest import config_for

    from astraforge.sandbox import open_sandbox

    with open_sandbox(config_for("bwrap"), repo) as box:
        listing = set(box.run("ls -A /etc").stdout.split())
        passwd = box.run("cat /etc/passwd").stdout
    assert {"passwd", "group", "hosts", "ld.so.cache"} <= listing
    assert not {"shadow", "sudoers", "ssh", "apt", "docker", "gshadow"} & listing
    assert passwd.count("\n") == 3  # the sandbox's own users, not the host's


@pytest.mark.parametrize(
    "escape",
    [
        "setsid sh -c 'sleep 300' >/dev/null 2>&1 &",
        "(sh -c 'sleep 300 &' &) >/dev/null 2>&1",
        "nohup setsid sh -c '(sleep 300 &)' >/dev/null 2>&1 &",
    ],
    ids=["setsid", "double-fork", "setsid-double-fork"],
)
def test_nothing_a_command_starts_outlives_it(sandbox_factory: SandboxFactory, escape: str) -> None:
    box = sandbox_factory()
    assert box.run(escape).exit_code == 0
    alive = box.run("for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null; echo; done")
    assert "sleep300" not in alive.stdout.replace("\0", "")


def test_nested_git_directories_and_git_files_are_inert(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    host = tmp_path / "host-repo"
    host.mkdir()
    (host / "secret.txt").write_text("CANARY_HOST_REPO\n")
    import subprocess

    subprocess.run(["git", "init", "-q", str(host)], check=True)
    subprocess.run(["git", "-C", str(host), "add", "-A"], check=True)
    box = sandbox_factory()
    made = box.run(
        "mkdir -p vendor/lib && cd vendor/lib && git init -q 2>/dev/null || mkdir -p .git; "
        "cd /workspace && echo x > vendor/lib/code.py && "
        f"mkdir -p sub && printf 'gitdir: {host}/.git\\n' > sub/.git && echo y > sub/file.txt"
    )
    assert made.exit_code == 0, made.stderr
    changes = box.changes()
    assert set(changes.added) == {"vendor/lib/code.py", "sub/file.txt"}
    assert "CANARY_HOST_REPO" not in changes.patch
    assert "secret.txt" not in changes.patch
    assert "sub/.git" in changes.skipped
