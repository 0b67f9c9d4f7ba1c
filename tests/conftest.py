from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_path(name: str) -> Path:
    return FIXTURES / name


def load_fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(fixture_path(name).read_text(encoding="utf-8"))
    return data


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real `astraforge` command line in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "astraforge", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Strip CI variables so that tests behave the same inside and outside CI."""
    import os

    for name in list(os.environ):
        if (
            name.startswith(("GITHUB_", "GITLAB_", "CI_", "ASTRAFORGE_", "TRIGGER_", "OPENAI_"))
            or name == "CI"
        ):
            monkeypatch.delenv(name)
