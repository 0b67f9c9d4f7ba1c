"""`astraforge init`, `astraforge doctor` and `astraforge demo` (the README's first command)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from tests import samples
from tests.conftest import run_cli
from tests.servers.github import FakeGitHub
from tests.servers.llm import reply, scripted

from astraforge import config as config_mod

TOKEN = "ghp_" + "DoctorToken" * 4


def test_init_writes_workflows_and_a_valid_commented_config(tmp_path: Path) -> None:
    repo = samples.make_repo(tmp_path / "r", {"a.py": "x = 1\n"})
    result = run_cli("init", "--repo", str(repo))
    assert result.returncode == 0, result.stderr
    assert "wrote .github/workflows/astraforge-issues.yml" in result.stdout
    assert "Allow GitHub Actions".lower() in result.stdout.lower()
    config_mod.load(repo)  # the commented file validates
    workflow = yaml.safe_load(
        (repo / ".github" / "workflows" / "astraforge-issues.yml").read_text()
    )
    assert workflow["permissions"] == {}
    again = run_cli("init", "--repo", str(repo))
    assert again.returncode == 2
    assert "already exist" in again.stderr
    assert run_cli("init", "--repo", str(repo), "--force").returncode == 0


def test_init_for_gitlab_keeps_an_existing_pipeline(tmp_path: Path) -> None:
    repo = samples.make_repo(tmp_path / "r", {".gitlab-ci.yml": "test:\n  script: [true]\n"})
    result = run_cli("init", "--repo", str(repo))
    assert result.returncode == 0, result.stderr
    assert (repo / ".gitlab-ci.yml").read_text() == "test:\n  script: [true]\n"
    include = yaml.safe_load((repo / ".gitlab" / "astraforge.gitlab-ci.yml").read_text())
    assert include["include"][0]["remote"].endswith("gitlab-ci/astraforge.gitlab-ci.yml")
    assert "GITLAB_TOKEN" in result.stdout


def test_doctor_says_what_to_fix(tmp_path: Path) -> None:
    repo = samples.make_repo(tmp_path / "r", {".astraforge.yml": "sandbox:\n  backend: bwrap\n"})
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    result = run_cli("doctor", "--repo", str(repo), "--forge", "github", env=env)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ok    Python 3.")
    assert "ok    sandbox: bubblewrap" in lines
    assert any(line.startswith("FAIL  GITHUB_TOKEN is not set (fix: ") for line in lines)
    assert any(line.startswith("FAIL  OPENAI_API_KEY is not set (fix: ") for line in lines)


def test_doctor_all_green_against_reachable_services(tmp_path: Path) -> None:
    repo = samples.make_repo(tmp_path / "r", {".astraforge.yml": "sandbox:\n  backend: bwrap\n"})
    server = FakeGitHub(tmp_path / "gh", TOKEN, "octo/shop")
    server.seed(repo)
    with server, scripted([reply(content="OK")]) as llm:
        env = {
            **os.environ,
            "GITHUB_TOKEN": TOKEN,
            "GITHUB_API_URL": server.url,
            "ASTRAFORGE_REPOSITORY": "octo/shop",
            "OPENAI_BASE_URL": llm.url,
            "OPENAI_API_KEY": "sk-test-" + "x" * 24,
        }
        result = run_cli("doctor", "--repo", str(repo), "--forge", "github", env=env)
    assert result.returncode == 0, result.stdout
    assert "ok    forge: github octo/shop (default branch main)" in result.stdout
    assert llm.calls == 1


def test_demo_runs_the_whole_flow_offline(tmp_path: Path) -> None:
    # A replayed model and no allow list: the gateway would serve nothing, so the demo needs
    # no forwarder (one that cannot be found would fail the run if it were asked for).
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI")}
    env["ASTRAFORGE_FORWARDER"] = str(tmp_path / "no-forwarder")
    result = subprocess.run(
        [sys.executable, "-m", "astraforge", "demo", "--dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "model: a REPLAY of recorded replies" in result.stderr
    assert "conclusion: fixed" in result.stdout
    pull = json.loads((tmp_path / "demo" / "forge" / "pulls" / "1.json").read_text())
    assert pull["labels"] == ["astraforge", "bug"]
    assert "| after the change | `node --test test/` | passed |" in pull["body"]
    assert "| before the change | `node --test test/` | failed (exit 1) |" in pull["body"]
    report = json.loads((tmp_path / "demo" / "artifacts" / "report.json").read_text())
    assert report["conclusion"] == "fixed"
    branch = samples.git(
        tmp_path / "demo" / "forge" / "remote.git", "show", f"{report['branch']}:src/checks.js"
    )
    assert "(item) => check(item)" in branch
    # The real alert's frames map to the sample repository: the prompt shows their code.
    trajectory = (tmp_path / "demo" / "artifacts" / "trajectory.jsonl").read_text()
    context = next(
        json.loads(line) for line in trajectory.splitlines() if '"type": "context"' in line
    )
    assert context["frames"] == ["js/prod/runner-4.1.7.min.js:1"] * 2
    page = (tmp_path / "demo" / "artifacts" / "report.html").read_text()
    assert "<code>js/prod/runner-4.1.7.min.js:1</code>" in page


def test_demo_uses_bubblewrap_when_no_docker_daemon_is_reachable(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": "tcp://127.0.0.1:9"}
    result = subprocess.run(
        [sys.executable, "-m", "astraforge", "demo", "--dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "sandbox: bubblewrap (no Docker daemon with the sandbox image is reachable)" in (
        result.stderr
    )
    assert "conclusion: fixed" in result.stdout


def test_doctor_warns_when_the_gitlab_job_runs_on_an_unprotected_ref(tmp_path: Path) -> None:
    repo = samples.make_repo(tmp_path / "r", {".astraforge.yml": "sandbox:\n  backend: bwrap\n"})
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "GITLAB_CI": "true",
        "CI_COMMIT_REF_PROTECTED": "false",
        "CI_COMMIT_REF_NAME": "astraforge/gitlab-7-fix",
    }
    result = run_cli("doctor", "--repo", str(repo), "--forge", "local", env=env)
    warning = [line for line in result.stdout.splitlines() if line.startswith("warn")]
    assert warning == [
        "warn  the job runs on the unprotected ref 'astraforge/gitlab-7-fix' (fix: run "
        "AstraForge on protected refs only (the template's rules do) and mark OPENAI_API_KEY "
        "and GITLAB_TOKEN protected and masked)"
    ]
    protected = run_cli(
        "doctor",
        "--repo",
        str(repo),
        "--forge",
        "local",
        env={**env, "CI_COMMIT_REF_PROTECTED": "true"},
    )
    assert "warn" not in protected.stdout


def test_forge_init_takes_relative_paths(tmp_path: Path) -> None:
    samples.make_repo(tmp_path / "src", {"a.py": "x = 1\n"})
    result = run_cli("forge", "init", "forge", "--from", "src", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "forge" / "remote.git" / "HEAD").exists()
    shown = run_cli("forge", "show", "forge", cwd=tmp_path)
    assert json.loads(shown.stdout)["repo"]["default_branch"] == "main"
