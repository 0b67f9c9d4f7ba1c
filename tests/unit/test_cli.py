from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import run_cli

from astraforge import __version__, resources


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert __version__ in result.stdout


def test_console_script_is_installed() -> None:
    script = subprocess.run(
        [
            sys.executable,
            "-c",
            "import shutil,sys; print(shutil.which('astraforge', path="
            "__import__('os').path.dirname(sys.executable)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    path = script.stdout.strip()
    assert path.endswith("astraforge")
    result = subprocess.run([path, "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "event" in result.stdout


def test_bundled_examples_are_listed_and_shown() -> None:
    listed = run_cli("event", "examples").stdout.split()
    assert "sentry-event-alert" in listed
    assert "github-issue-labeled" in listed
    shown = run_cli("event", "show", "--example", "sentry-event-alert")
    assert shown.returncode == 0, shown.stderr
    out = json.loads(shown.stdout)
    assert out["task"]["fingerprint"] == "sentry:1117540176"
    assert out["decision"]["run"] is True


def test_unknown_example_is_a_clear_error() -> None:
    result = run_cli("event", "show", "--example", "sentry")
    assert result.returncode == 2
    assert result.stderr == (
        "error: there is no bundled example named 'sentry' (fix: use one of: "
        "github-issue-labeled, gitlab-issue-open, glitchtip-alert, sentry-event-alert "
        "(`astraforge event examples`))\n"
    )


def test_resources_are_not_read_from_the_current_directory(tmp_path: object) -> None:
    root = resources._root("examples")
    assert "payloads" in [p.name for p in root.iterdir()]
    result = run_cli("event", "examples", cwd=tmp_path)  # type: ignore[arg-type]
    assert "sentry-event-alert" in result.stdout
