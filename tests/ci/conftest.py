"""Real CI runs: `act` runs the example workflows with `uses: ./`, `gitlab-ci-local` runs a
project that includes the GitLab template. The runner inside talks to the local forge API
server, the scripted model server, and the real Docker sandbox."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.servers.llm import call, reply

ROOT = Path(__file__).resolve().parents[2]
STANDINS = Path(__file__).resolve().parent / "actions"
PROJECT_FILES = (
    "action.yml",
    "action",
    "pyproject.toml",
    "README.md",
    "LICENSE",
    "runner",
    "prompts",
    "templates",
    "policies",
    "examples",
    "gitlab-ci",
)
IMAGE = "astraforge-sandbox:bookworm"
# A follow-up round's script: negative prices count as 0.
FLOOR = [
    reply(
        call(
            "edit_file",
            path="shop/cart.py",
            old='sum(item["price"] for item in items)',
            new='sum(max(0, item["price"]) for item in items)',
        )
    ),
    reply(call("finish", summary="Negative prices count as 0.", root_cause="no floor")),
]

APP_FILES = {
    "shop/__init__.py": "",
    "shop/cart.py": (
        "def average_price(items):\n"
        '    total = sum(item["price"] for item in items)\n'
        "    return total / len(items)\n"
    ),
    "tests/__init__.py": "",
    "tests/test_cart.py": (
        "import unittest\n\nfrom shop.cart import average_price\n\n\n"
        "class CartTest(unittest.TestCase):\n"
        "    def test_empty_cart(self):\n"
        "        self.assertEqual(average_price([]), 0)\n"
    ),
    ".astraforge.yml": (
        f"sandbox:\n  backend: docker\n  image: {IMAGE}\n"
        "test_command: python3 -m unittest -q\n"
        "model:\n  name: test-model\n  max_retries: 0\n"
    ),
}


@pytest.fixture(scope="session", autouse=True)
def shared_install_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The act runs share the action's install cache, as a repository's runs do."""
    os.environ["ASTRAFORGE_ACT_CACHE"] = str(tmp_path_factory.mktemp("act-install-cache"))
    yield
    os.environ.pop("ASTRAFORGE_ACT_CACHE", None)


WHEELHOUSE = ROOT / ".cache" / "wheelhouse"  # filled by .ci/run: the runner, its pins, uv


def offline_install() -> dict[str, str]:
    """Environment that makes the action's and the component's installs (pip for uv, then
    uv) take every package from the local wheelhouse: no test reaches a package index."""
    if not any(WHEELHOUSE.glob("uv-*.whl")):
        raise RuntimeError(f"no wheelhouse at {WHEELHOUSE}: run .ci/run first")
    return {
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(WHEELHOUSE),
        "UV_NO_INDEX": "1",
        "UV_FIND_LINKS": str(WHEELHOUSE),
    }


# The actions the workflows pin, served by the stand-ins in actions/ (GitHub is not reachable).
CHECKOUT_SHA = "08c6903cd8c0fde910a37f88322edcfb5dd907a8"
UPLOAD_SHA = "b7c566a772e6b6bfb58ed0dc250532a479d7789f"
CACHE_SHA = "5a3ec84eff668545956fd18022155c47e93e2684"  # action.yml's install cache


def act(
    tmp_path: Path, ws: Path, event: str, payload: dict[str, Any], workflow: str, *args: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run ``workflow`` of ``ws`` with act in host mode on ``event``, the pinned actions
    served by the stand-ins and every install from the wheelhouse; (result, the folder the
    upload-artifact stand-in copies into). ``args`` go to act (``-j``, ``--env``, ``-s``)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(payload))
    artifacts = tmp_path / "artifacts"
    command = [
        tool("act"),
        event,
        "-e",
        str(event_file),
        "-W",
        f".github/workflows/{workflow}",
        "-P",
        "ubuntu-latest=-self-hosted",
        "-P",
        "ubuntu-24.04=-self-hosted",
        "--local-repository",
        f"actions/checkout@{CHECKOUT_SHA}={STANDINS / 'checkout'}",
        "--local-repository",
        f"actions/upload-artifact@{UPLOAD_SHA}={STANDINS / 'upload-artifact'}",
        "--local-repository",
        f"actions/cache@{CACHE_SHA}={STANDINS / 'cache'}",
        "--action-offline-mode",
        "--action-cache-path",
        str(tmp_path / "act-cache"),
        "--env",
        f"ACT_ARTIFACTS={artifacts}",
        *[arg for key, value in offline_install().items() for arg in ("--env", f"{key}={value}")],
        *args,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "ACTIONS_"))}
    result = subprocess.run(
        command, cwd=ws, capture_output=True, text=True, env=env, timeout=900, check=False
    )
    (tmp_path / "act.log").write_text(result.stdout + result.stderr)
    return result, artifacts


def tool(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(found).exists():
        raise RuntimeError(f"{name} is not installed: run .ci/run (scripts/ci-setup) first")
    return found


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=Dev", "-c", "user.email=dev@example.com", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def project_copy(dest: Path, files: dict[str, str], remote: str) -> Path:
    """A user repository holding AstraForge itself (for `uses: ./` / a local include) and a
    small app with a real bug."""
    dest.mkdir(parents=True)
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        elif source.exists():
            shutil.copy2(source, dest / name)
    for name, text in {**APP_FILES, **files}.items():
        path = dest / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "Initial version")
    git(dest, "remote", "add", "origin", remote)
    return dest
