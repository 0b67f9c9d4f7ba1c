from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from astraforge.sandbox import BwrapConfig, DockerConfig, Sandbox, open_sandbox

IMAGE = os.environ.get("ASTRAFORGE_TEST_IMAGE", "astraforge-sandbox:bookworm")
MINIMAL_IMAGE = os.environ.get("ASTRAFORGE_TEST_MINIMAL_IMAGE", "astraforge-minimal:busybox")
DOCKER_TCP = "tcp://" + os.environ.get("ASTRAFORGE_DOCKER_TCP", "127.0.0.1:23750")

SandboxFactory = Callable[..., Sandbox]


def make_repo(root: Path) -> Path:
    """A small git repository whose .git/config holds a canary that must never be copied."""
    repo = root / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (repo / "README.md").write_text("# sample\n")
    (repo / "old.txt").write_text("to be deleted\n")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    commit(repo)
    with (repo / ".git" / "config").open("a") as handle:
        handle.write('[http]\n\textraheader = "AUTHORIZATION: basic CANARY_GITCONFIG_7f3a"\n')
    return repo


def commit(repo: Path, message: str = "files") -> None:
    """Commit everything in ``repo``: only what git tracks enters a sandbox."""
    git = ["git", "-C", str(repo), "-c", "user.name=T", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", message, "--allow-empty"], check=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


def config_for(backend: str, **overrides: Any) -> DockerConfig | BwrapConfig:
    if backend == "docker":
        return DockerConfig(**{"image": IMAGE, **overrides})
    if backend == "docker-tcp":
        return DockerConfig(**{"image": IMAGE, "docker_host": DOCKER_TCP, **overrides})
    return BwrapConfig(**overrides)


@pytest.fixture(params=["docker", "docker-tcp", "bwrap"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sandbox_factory(repo: Path, backend: str) -> Iterator[SandboxFactory]:
    opened: list[Sandbox] = []

    def factory(workspace: Path | None = None, **overrides: Any) -> Sandbox:
        box = open_sandbox(config_for(backend, **overrides), workspace or repo)
        box.start()
        opened.append(box)
        return box

    yield factory
    for box in opened:
        box.stop()
