"""The runner finds its event in GitHub Actions and GitLab CI environments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import fixture_path, load_fixture, run_cli

from astraforge.ci import detect
from astraforge.errors import PayloadError, UsageError
from astraforge.events import forwarded
from astraforge.task import Kind, Source


def github_env(event_name: str, path: Path) -> dict[str, str]:
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": str(path),
        "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_SERVER_URL": "https://github.example.com",
        "GITHUB_RUN_ID": "42",
        "GITHUB_API_URL": "https://github.example.com/api/v3",
    }


def gitlab_env(**extra: str) -> dict[str, str]:
    return {
        "GITLAB_CI": "true",
        "CI_PROJECT_PATH": "acme/backend/shop",
        "CI_SERVER_URL": "https://gitlab.example.com",
        "CI_DEFAULT_BRANCH": "main",
        "CI_JOB_URL": "https://gitlab.example.com/acme/backend/shop/-/jobs/7",
        **extra,
    }


def test_github_actions_environment() -> None:
    env = github_env("issues", fixture_path("github/issues.labeled.json"))
    ci = detect.detect(env)
    assert ci.name == "github"
    assert ci.api_url == "https://github.example.com/api/v3"
    assert ci.run_url == "https://github.example.com/acme/shop/actions/runs/42"
    task = detect.task_from_ci(env)
    assert task.fingerprint == "github:Codertocat/Hello-World#1"


def test_github_event_name_decides_over_shape(tmp_path: Path) -> None:
    payload = load_fixture("github/issue_comment.created.on-issue.json")
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload))
    assert detect.task_from_ci(github_env("issue_comment", path)).kind is Kind.COMMENT_COMMAND
    assert detect.task_from_ci(github_env("issues", path)).kind is Kind.ISSUE


def test_repository_dispatch_from_relay_gets_the_repository(tmp_path: Path) -> None:
    alert = detect.events.parse_file(fixture_path("sentry/error.created.json"))
    dispatch = load_fixture("github/repository_dispatch.json")
    dispatch["action"] = forwarded.DISPATCH_EVENT_TYPE
    dispatch["client_payload"] = forwarded.encode(alert)
    path = tmp_path / "event.json"
    path.write_text(json.dumps(dispatch))
    task = detect.task_from_ci(github_env("repository_dispatch", path))
    assert task.fingerprint == "sentry:1170820242"
    assert task.repository is not None
    assert task.repository.full_name == "octo-org/octo-repo"
    assert task.event == "repository_dispatch.astraforge-alert"


def test_gitlab_trigger_payload_file_variable() -> None:
    env = gitlab_env(
        CI_PIPELINE_SOURCE="trigger",
        TRIGGER_PAYLOAD=str(fixture_path("gitlab/note_hook.comment-on-issue.json")),
    )
    assert detect.detect(env).run_url == "https://gitlab.example.com/acme/backend/shop/-/jobs/7"
    task = detect.task_from_ci(env)
    assert task.source is Source.GITLAB
    assert task.kind is Kind.COMMENT_COMMAND


def test_gitlab_trigger_with_sentry_webhook_gets_the_project() -> None:
    env = gitlab_env(
        CI_PIPELINE_SOURCE="trigger",
        TRIGGER_PAYLOAD=str(fixture_path("sentry/event_alert.triggered.issue-alert.json")),
    )
    task = detect.task_from_ci(env)
    assert task.source is Source.SENTRY
    assert task.repository is not None
    assert task.repository.owner == "acme/backend"
    assert task.repository.name == "shop"
    assert task.repository.default_branch == "main"


def test_gitlab_relay_variable() -> None:
    alert = detect.events.parse_file(fixture_path("glitchtip/issue-alert.written-from-format.json"))
    env = gitlab_env(
        CI_PIPELINE_SOURCE="trigger", ASTRAFORGE_PAYLOAD=json.dumps(forwarded.encode(alert))
    )
    task = detect.task_from_ci(env)
    assert task.fingerprint == "glitchtip:4242"
    assert task.source is Source.GLITCHTIP


def test_gitlab_relay_variable_must_be_ours() -> None:
    env = gitlab_env(ASTRAFORGE_PAYLOAD='{"hello": 1}')
    with pytest.raises(PayloadError, match="ASTRAFORGE_PAYLOAD"):
        detect.task_from_ci(env)


@pytest.mark.parametrize("source", ["api", "web", "trigger", "pipeline", "chat"])
def test_gitlab_plain_request_variable(source: str) -> None:
    env = gitlab_env(
        CI_PIPELINE_SOURCE=source,
        ASTRAFORGE_REQUEST="Fix the flaky date test",
        GITLAB_USER_LOGIN="alice",
    )
    task = detect.task_from_ci(env)
    assert task.kind is Kind.REQUEST
    assert task.instruction == "Fix the flaky date test"
    assert task.event == f"pipeline.{source}"
    assert task.requester is not None
    assert task.requester.login == "alice"
    assert task.fingerprint.startswith("gitlab:acme/backend/shop:request:")


def test_gitlab_without_anything_says_what_to_pass() -> None:
    with pytest.raises(PayloadError, match="ASTRAFORGE_REQUEST"):
        detect.task_from_ci(gitlab_env(CI_PIPELINE_SOURCE="web"))


def test_outside_ci_needs_an_event_file() -> None:
    with pytest.raises(UsageError, match="--event"):
        detect.task_from_ci({})


def test_cli_event_show_reads_the_ci_event(clean_env: None) -> None:
    import os

    env = dict(os.environ, **github_env("issues", fixture_path("github/issues.opened.json")))
    result = run_cli("event", "show", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["task"]["event"] == "issues.opened"
