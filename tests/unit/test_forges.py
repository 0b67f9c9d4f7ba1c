from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests import samples
from tests.conftest import run_cli

from astraforge.errors import ForgeError, UsageError
from astraforge.forges import open_forge
from astraforge.forges.github import GitHubForge
from astraforge.forges.gitlab import GitLabForge
from astraforge.policy.model import at_least


def test_missing_tokens_are_one_clear_error() -> None:
    with pytest.raises(ForgeError, match="GITHUB_TOKEN is not set") as raised:
        open_forge("github", repository="o/r", env={})
    assert "pull-requests and issues: write" in raised.value.one_line()
    with pytest.raises(ForgeError, match="GITLAB_TOKEN is not set"):
        open_forge("gitlab", repository="g/p", env={})
    with pytest.raises(UsageError, match="--forge-dir"):
        open_forge("local", repository=None, env={})
    with pytest.raises(UsageError, match="unknown forge"):
        open_forge("gitea", repository="o/r", env={"GITHUB_TOKEN": "x"})


def test_tokens_and_servers_come_from_the_ci_environment() -> None:
    env = {"GITHUB_TOKEN": "t" * 20, "GITHUB_API_URL": "http://127.0.0.1:9"}
    github = open_forge("github", repository="o/r", env=env)
    assert isinstance(github, GitHubForge)
    assert github.git_auth().username == "x-access-token"
    env = {"CI_JOB_TOKEN": "j" * 20, "CI_SERVER_URL": "http://127.0.0.1:9"}
    job = open_forge("gitlab", repository="g/p", env=env)
    assert isinstance(job, GitLabForge)
    assert job.git_auth().username == "gitlab-ci-token"
    pat = open_forge("gitlab", repository="g/p", env={"GITLAB_TOKEN": "p" * 20})
    assert isinstance(pat, GitLabForge)
    assert pat.git_auth().username == "oauth2"


def test_permission_order() -> None:
    assert at_least("admin", "write")
    assert at_least("maintain", "maintain")
    assert not at_least("triage", "write")
    assert not at_least("none", "read")


def test_cli_forge_init_and_show(tmp_path: Path) -> None:
    repo = samples.make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    made = run_cli("forge", "init", str(tmp_path / "forge"), "--from", str(repo), "--name", "me/a")
    assert made.returncode == 0, made.stderr
    assert "default branch main" in made.stdout
    shown = run_cli("forge", "show", str(tmp_path / "forge"))
    data = json.loads(shown.stdout)
    assert data["repo"]["full_name"] == "me/a"
    assert data["pulls"] == []
    again = run_cli("forge", "init", str(tmp_path / "forge"), "--from", str(repo))
    assert again.returncode == 2
    assert again.stderr.strip().startswith("error: ")
    assert "already holds a forge" in again.stderr
    missing = run_cli("forge", "show", str(tmp_path / "repo"))
    assert missing.returncode == 5
    assert "is not a local forge" in missing.stderr
