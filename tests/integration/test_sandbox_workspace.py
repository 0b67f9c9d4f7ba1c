"""The persistent session and the workspace round trip, both backends."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import run_cli
from tests.integration.conftest import (
    DOCKER_TCP,
    IMAGE,
    MINIMAL_IMAGE,
    SandboxFactory,
    commit,
    config_for,
)

from astraforge.sandbox import DockerConfig, open_sandbox


def test_session_keeps_cwd_and_environment(sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory()
    assert box.run("pwd").stdout == "/workspace\n"
    box.run("cd pkg && export GREETING='hello world' && LOCAL=1")
    again = box.run('pwd; echo "$GREETING"')
    assert again.stdout == "/workspace/pkg\nhello world\n"
    scoped = box.run('echo "$ONLY_HERE"', env={"ONLY_HERE": "yes"})
    assert scoped.stdout == "yes\n"
    assert box.run('echo "[$ONLY_HERE]"').stdout == "[]\n"


def test_exit_codes_stderr_and_partial_lines(sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory()
    result = box.run("printf 'no newline'; echo oops >&2; exit 3")
    assert (result.exit_code, result.stdout, result.stderr) == (3, "no newline", "oops\n")
    assert box.run("exit 0").exit_code == 0


def test_changes_come_back_exactly(sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory()
    box.run(
        "sed -i 's/a - b/a + b/' pkg/calc.py && rm old.txt && mkdir -p new "
        "&& printf 'x\\n' > new/file.txt && ln -s /etc/passwd new/escape"
    )
    changes = box.changes()
    assert changes.modified == ["pkg/calc.py"]
    assert changes.deleted == ["old.txt"]
    assert sorted(changes.added) == ["new/escape", "new/file.txt"]
    assert "-    return a - b\n+    return a + b" in changes.patch
    assert "new file mode 120000" in changes.patch
    assert "+/etc/passwd" in changes.patch
    assert "root:" not in changes.patch  # the link was never followed on the host


def test_a_large_tree_arrives_whole_and_unchanged(
    sandbox_factory: SandboxFactory, repo: Path
) -> None:
    """Above the size copied through the shell, the tree streams through its own exec:
    content, modes and links arrive exactly, and nothing counts as changed."""
    blob = os.urandom(3 << 20)
    (repo / "big.bin").write_bytes(blob)
    for i in range(300):
        (repo / "many" / f"f{i}.txt").parent.mkdir(exist_ok=True)
        (repo / "many" / f"f{i}.txt").write_text(f"file {i}\n")
    (repo / "tool.sh").write_text("#!/bin/sh\necho tool\n")
    (repo / "tool.sh").chmod(0o755)
    os.symlink("many/f7.txt", repo / "seven")
    commit(repo, "large")
    box = sandbox_factory()
    assert box.read_file("big.bin") == blob
    assert box.run("./tool.sh && cat seven && ls many | wc -l").stdout == "tool\nfile 7\n300\n"
    assert box.changes().patch == ""
    box.run("echo more >> many/f299.txt")
    assert box.changes().modified == ["many/f299.txt"]


def test_changes_follow_gitignore_and_skip_build_leftovers(
    sandbox_factory: SandboxFactory, repo: Path
) -> None:
    (repo / ".gitignore").write_text("build/\n")
    (repo / "pkg" / "tracked.log").write_text("kept\n")
    commit(repo)
    box = sandbox_factory()
    box.run(
        "mkdir -p build pkg/__pycache__ .pytest_cache && echo x > build/out.o "
        "&& echo x > pkg/__pycache__/calc.cpython-311.pyc && echo x > .pytest_cache/v "
        "&& echo changed > pkg/tracked.log && echo y > pkg/new.py"
    )
    changes = box.changes()
    assert changes.added == ["pkg/new.py"]
    assert changes.modified == ["pkg/tracked.log"]
    assert changes.base_tree
    assert len(changes.base_tree) == 40
    assert box.run("env").stdout.count("PYTHONDONTWRITEBYTECODE=1") == 1


def test_applying_the_patch_reproduces_the_change(
    sandbox_factory: SandboxFactory, repo: Path
) -> None:
    box = sandbox_factory()
    box.run("printf 'def add(a, b):\\n    return a + b\\n' > pkg/calc.py && rm old.txt")
    patch = box.changes().patch
    subprocess.run(["git", "apply", "-"], input=patch.encode(), cwd=repo, check=True)
    assert (repo / "pkg" / "calc.py").read_text().endswith("return a + b\n")
    assert not (repo / "old.txt").exists()


def test_file_operations(sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory()
    assert box.read_file("pkg/calc.py").startswith(b"def add")
    box.write_file("notes/n.txt", b"written\n")
    assert box.run("cat notes/n.txt").stdout == "written\n"
    assert box.read_file("/workspace/notes/n.txt") == b"written\n"
    assert "notes/n.txt" in box.list_files()
    assert "pkg/calc.py" in box.list_files()
    box.run("ln -s /proc/self/environ env_link")
    with pytest.raises(OSError, match="env_link"):
        box.read_file("env_link")
    with pytest.raises(PermissionError):
        box.read_file("../../etc/passwd")
    with pytest.raises(PermissionError):
        box.read_file("/etc/passwd")
    assert box.changes().added == ["env_link", "notes/n.txt"]


def test_file_operations_refuse_a_symlink_planted_mid_path(
    sandbox_factory: SandboxFactory,
) -> None:
    """A command plants a link to / in the middle of a directory chain; the file tools
    (which run in the session's main shell) notice it and refuse, and a link that stays
    inside is followed."""
    box = sandbox_factory()
    box.run("mkdir -p deep/er && ln -s / deep/er/root && ln -s ../pkg deep/inside")
    with pytest.raises(OSError, match="outside the workspace"):
        box.read_file("deep/er/root/etc/hostname")
    with pytest.raises(OSError, match="outside the workspace"):
        box.write_file("deep/er/root/tmp/planted.txt", b"x")
    assert box.run("test -e /tmp/planted.txt; echo $?").stdout == "1\n"
    assert box.read_file("deep/inside/calc.py").startswith(b"def add")
    box.write_file("deep/inside/new.py", b"# via a link inside\n")
    assert box.read_file("pkg/new.py") == b"# via a link inside\n"
    odd = "odd name $(touch /tmp/x) `id`; '\"\\.txt"
    box.write_file(odd, b"quoted\n")
    assert box.read_file(odd) == b"quoted\n"
    assert box.run("ls /tmp/x 2>/dev/null; echo done").stdout == "done\n"


def test_image_without_git_or_python(repo: Path) -> None:
    with open_sandbox(DockerConfig(image=MINIMAL_IMAGE), repo) as box:
        probe = box.run("for p in git python3; do command -v $p; done; echo checked")
        assert probe.stdout == "checked\n"
        box.run("echo extra >> README.md; rm old.txt")
        changes = box.changes()
    assert changes.modified == ["README.md"]
    assert changes.deleted == ["old.txt"]


def test_remote_daemon_over_tcp(repo: Path) -> None:
    with open_sandbox(config_for("docker-tcp"), repo) as box:
        assert box.run("id -u").stdout == "1000\n"
        box.run("echo via-tcp > tcp.txt")
        assert box.changes().added == ["tcp.txt"]


def test_cli_sandbox_run_exit_code_and_output(repo: Path, backend: str) -> None:
    env = dict(os.environ)
    args = ["sandbox", "run", "--backend", backend.split("-")[0], "--workspace", str(repo)]
    if backend.startswith("docker"):
        args += ["--image", config_for("docker").image]  # type: ignore[union-attr]
    if backend == "docker-tcp":
        env["DOCKER_HOST"] = DOCKER_TCP
    ok = run_cli(*args, "--", "cat", "README.md", env=env)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "# sample\n"
    failing = run_cli(*args, "--", "sh", "-c", "echo bad >&2; exit 5", env=env)
    assert failing.returncode == 5
    assert failing.stderr == "bad\n"


def test_cli_sandbox_gc_removes_leftovers_of_dead_runners_only(repo: Path) -> None:
    import docker

    # A runner killed with SIGKILL leaves its sandbox behind ...
    script = (
        "import os, sys; from pathlib import Path; "
        "from astraforge.sandbox import DockerConfig, open_sandbox; "
        f"box = open_sandbox(DockerConfig(image={IMAGE!r}), Path(sys.argv[1]), run_id='dead-gc'); "
        "box.start(); os.kill(os.getpid(), 9)"
    )
    subprocess.run([sys.executable, "-c", script, str(repo)], check=False, timeout=120)
    # ... while a live runner's sandbox must survive gc.
    with open_sandbox(config_for("docker"), repo, run_id="live-gc") as live:
        result = run_cli("sandbox", "gc")
        assert result.returncode == 0, result.stderr
        assert "astraforge-dead-gc" in result.stdout
        assert "astraforge-live-gc" not in result.stdout
        assert live.run("echo still here").stdout == "still here\n"
    client = docker.from_env()
    assert not client.containers.list(all=True, filters={"name": "dead-gc"})
    assert not client.volumes.list(filters={"name": "dead-gc"})


def test_unreachable_daemon_is_a_clear_error(repo: Path, tmp_path: Path) -> None:
    from astraforge.errors import SandboxError

    config = DockerConfig(image="x", docker_host=f"unix://{tmp_path}/none.sock")
    with pytest.raises(SandboxError, match="cannot reach the Docker daemon"):
        open_sandbox(config, repo).start()


def test_a_sandbox_started_in_the_background(repo: Path, backend: str) -> None:
    """The runner starts the sandbox while it gathers context: entering waits for it, a
    failed start is raised there, and nothing is left behind either way."""
    import docker

    from astraforge.errors import SandboxError

    box = open_sandbox(config_for(backend), repo, run_id=f"soon-{backend}")
    box.start_soon()
    with box:
        assert box.run("cat README.md").stdout == "# sample\n"
    if backend.startswith("docker"):
        broken = open_sandbox(config_for(backend, image="astraforge-missing:none"), repo)
        broken.start_soon()
        with pytest.raises(SandboxError, match="astraforge-missing:none"), broken:
            pass
    left = docker.from_env().containers.list(all=True, filters={"label": "io.astraforge.sandbox"})
    assert not [c.name for c in left if "soon-" in c.name]


def _interfaces(box: object, phase: str) -> list[str]:
    command = "tail -n +3 /proc/net/dev | cut -d: -f1"
    if phase == "setup":
        results = box.setup([command])  # type: ignore[attr-defined]
        return results[0].stdout.split()  # type: ignore[no-any-return]
    return box.run(command).stdout.split()  # type: ignore[attr-defined,no-any-return]


def test_setup_phase_has_network_and_the_agent_phase_has_none(repo: Path, backend: str) -> None:
    import docker

    overrides: dict[str, object] = {"setup_network": True}
    network = None
    if backend.startswith("docker"):
        network = docker.from_env().networks.create(f"astraforge-setup-{os.getpid()}")
        overrides["setup_network_name"] = network.name
    try:
        box = open_sandbox(config_for(backend, **overrides), repo)
        with box:
            during = _interfaces(box, "setup")
            assert during != ["lo"]
            assert len(during) >= 1
            box.run("echo from-agent > agent.txt")
            assert _interfaces(box, "agent") == ["lo"]
            assert box.changes().added == ["agent.txt"]
            if backend.startswith("docker"):
                attrs = docker.from_env().api.inspect_container(box.name)  # type: ignore[attr-defined]
                assert attrs["NetworkSettings"]["Networks"] == {}
    finally:
        if network is not None:
            network.remove()


def test_setup_without_network_permission_stays_offline(sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory()
    results = box.setup(["tail -n +3 /proc/net/dev | cut -d: -f1", "echo ready > setup.txt"])
    assert results[0].stdout.split() == ["lo"]
    assert box.run("cat setup.txt").stdout == "ready\n"
