"""Every real payload in tests/fixtures becomes the right Task (or a clear refusal)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from tests.conftest import FIXTURES, fixture_path, run_cli

from astraforge import events
from astraforge.errors import PayloadError, UnsupportedEventError
from astraforge.task import Kind, Source


@dataclass
class Expect:
    source: Source
    kind: Kind
    fingerprint: str
    title: str
    requester: str | None = None
    labels: list[str] = field(default_factory=list)
    frames: int = 0
    top_frame: tuple[str | None, int | None] | None = None
    issue_link: str | None = None
    alert_link: str | None = None
    number: int | None = None
    on_pull_request: bool = False
    needs_fetch: bool = False


HELLO = "Spelling error in the README file"
EXPECTED: dict[str, Expect] = {
    "github/issues.opened.json": Expect(
        Source.GITHUB,
        Kind.ISSUE,
        "github:Codertocat/Hello-World#1",
        HELLO,
        "Codertocat",
        ["bug"],
        issue_link="https://github.com/Codertocat/Hello-World/issues/1",
        number=1,
    ),
    "github/issues.opened.empty-body.json": Expect(
        Source.GITHUB,
        Kind.ISSUE,
        "github:Codertocat/Hello-World#1",
        HELLO,
        "Codertocat",
        ["bug"],
        number=1,
    ),
    "github/issues.labeled.json": Expect(
        Source.GITHUB,
        Kind.ISSUE,
        "github:Codertocat/Hello-World#1",
        HELLO,
        "Codertocat",
        ["bug"],
        number=1,
    ),
    "github/issues.labeled.with-organization.json": Expect(
        Source.GITHUB,
        Kind.ISSUE,
        "github:Codertocat/Hello-World#1",
        HELLO,
        "Codertocat",
        ["bug"],
        number=1,
    ),
    "github/issues.edited.json": Expect(
        Source.GITHUB,
        Kind.ISSUE,
        "github:Codertocat/Hello-World#1",
        HELLO,
        "Codertocat",
        ["bug"],
        number=1,
    ),
    "github/issue_comment.created.on-issue.json": Expect(
        Source.GITHUB,
        Kind.COMMENT_COMMAND,
        "github:Codertocat/Hello-World#1",
        HELLO,
        "Codertocat",
        ["bug"],
        number=1,
    ),
    "github/issue_comment.created.with-installation.json": Expect(
        Source.GITHUB,
        Kind.COMMENT_COMMAND,
        "github:Codertocat/Hello-World#1",
        HELLO,
        "Codertocat",
        ["bug"],
        number=1,
    ),
    "github/issue_comment.edited.json": Expect(
        Source.GITHUB,
        Kind.COMMENT_COMMAND,
        "github:Codertocat/Hello-World#1",
        HELLO,
        "Codertocat",
        ["bug"],
        number=1,
    ),
    "github/issue_comment.created.on-pull-request.written-from-schema.json": Expect(
        Source.GITHUB,
        Kind.FOLLOW_UP,
        "github:Codertocat/Hello-World#2",
        HELLO,
        "Codertocat",
        ["bug"],
        number=2,
        on_pull_request=True,
        issue_link="https://github.com/Codertocat/Hello-World/pull/2",
    ),
    "github/pull_request_review_comment.created.json": Expect(
        Source.GITHUB,
        Kind.FOLLOW_UP,
        "github:Codertocat/Hello-World#2",
        "Update the README with new information.",
        "Codertocat",
        ["bug"],
        number=2,
        on_pull_request=True,
    ),
    "github/workflow_run.completed.with-pull-requests.json": Expect(
        Source.GITHUB,
        Kind.CI_FAILURE,
        "github:octo-org/octo-repo#2",
        "test: success on master",
        number=2,
        on_pull_request=True,
    ),
    "github/check_run.completed.json": Expect(
        Source.GITHUB,
        Kind.CI_FAILURE,
        "github:Codertocat/Hello-World#2",
        "Octocoders-linter: success on changes",
        number=2,
        on_pull_request=True,
    ),
    "gitlab/pipeline_hook.json": Expect(
        Source.GITLAB,
        Kind.CI_FAILURE,
        "gitlab:gitlab-org/gitlab-test!1",
        "Pipeline for branch: master: success on test",
        number=1,
        on_pull_request=True,
    ),
    "github/repository_dispatch.json": Expect(
        Source.GITHUB,
        Kind.REQUEST,
        "github:octo-org/octo-repo:dispatch:",
        "repository_dispatch on-demand-test",
        "Codertocat",
    ),
    "github/workflow_dispatch.json": Expect(
        Source.MANUAL,
        Kind.REQUEST,
        "github:octo-org/octo-repo:request:",
        "workflow_dispatch without a request",
        "Codertocat",
    ),
    "gitlab/issue_hook.issue.open.json": Expect(
        Source.GITLAB,
        Kind.ISSUE,
        "gitlab:gitlabhq/gitlab-test#23",
        "New API: create/update/delete file",
        "root",
        ["API"],
        issue_link="http://example.com/diaspora/issues/23",
        number=23,
    ),
    "gitlab/note_hook.comment-on-issue.json": Expect(
        Source.GITLAB,
        Kind.COMMENT_COMMAND,
        "gitlab:gitlab-org/gitlab-test#17",
        "test",
        "root",
        ["Afterpod", "Element"],
        number=17,
    ),
    "gitlab/note_hook.comment-on-merge-request.json": Expect(
        Source.GITLAB,
        Kind.FOLLOW_UP,
        "gitlab:gitlab-org/gitlab-test!1",
        "Tempora et eos debitis quae laborum et.",
        "root",
        ["Afterpod", "Element"],
        number=1,
        on_pull_request=True,
    ),
    "sentry/event_alert.triggered.issue-alert.json": Expect(
        Source.SENTRY,
        Kind.ALERT,
        "sentry:1117540176",
        "ReferenceError: heck is not defined",
        frames=3,
        top_frame=("<anonymous>", 3),
        alert_link="https://sentry.io/organizations/test-org/issues/1117540176/events/"
        "e4874d664c3540c1a32eab185f12c5ab/",
    ),
    "sentry/error.created.json": Expect(
        Source.SENTRY,
        Kind.ALERT,
        "sentry:1170820242",
        "ReferenceError: blooopy is not defined",
        frames=1,
        top_frame=("/runner", 3),
    ),
    "sentry/issue.created.json": Expect(
        Source.SENTRY,
        Kind.ALERT,
        "sentry:1234567890",
        "Error generated with event_id: 495d375a-1df6-45c0-9890-34dae8e1b6a4(Priority: HIGH)",
        alert_link="https://example-org.sentry.io/issues/1234567890/",
        needs_fetch=True,
    ),
    "sentry/issue.created.2019.json": Expect(
        Source.SENTRY,
        Kind.ALERT,
        "sentry:1170820242",
        "ReferenceError: blooopy is not defined",
        needs_fetch=True,
    ),
    "sentry/activity_alert.triggered.json": Expect(
        Source.SENTRY,
        Kind.ALERT,
        "sentry:43",
        "TypeError: you aren't my type",
        alert_link="https://sentry.io/organizations/acme/issues/43/",
        needs_fetch=True,
    ),
    "sentry/metric_alert.resolved.json": Expect(
        Source.SENTRY,
        Kind.ALERT,
        "sentry:metric_alert:7",
        "Resolved: Too many errors",
        alert_link="https://sentry.io/organizations/baz/alerts/1/",
    ),
    "sentry/comment.created.json": Expect(
        Source.SENTRY,
        Kind.COMMENT_COMMAND,
        "sentry:100",
        "Comment on Sentry issue 100",
        "colleen",
        needs_fetch=True,
    ),
    "sentry/legacy-webhooks-plugin.json": Expect(
        Source.SENTRY,
        Kind.ALERT,
        "sentry:1385042923",
        "ReferenceError: hello is not defined",
        frames=1,
        top_frame=("/runner", 3),
        alert_link="https://sentry.io/organizations/meredith/issues/1385042923/"
        "?referrer=webhooks_plugin",
    ),
    "glitchtip/issue-alert.written-from-format.json": Expect(
        Source.GLITCHTIP,
        Kind.ALERT,
        "glitchtip:4242",
        "ZeroDivisionError: division by zero",
        alert_link="https://glitchtip.example.org/acme/issues/4242",
        needs_fetch=True,
    ),
}

UNSUPPORTED = [
    "github/pull_request.opened.json",
    "gitlab/merge_request_hook.open.json",
    "gitlab/note_hook.comment-on-commit.json",
    "gitlab/push_hook.json",
]
NOT_PAYLOADS = ["gitlab/ci-triggered-pipeline-variables.json"]


def test_every_fixture_is_covered() -> None:
    on_disk = {str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*.json")}
    assert on_disk == set(EXPECTED) | set(UNSUPPORTED) | set(NOT_PAYLOADS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_becomes_the_right_task(name: str) -> None:
    want = EXPECTED[name]
    task = events.parse_file(fixture_path(name))
    assert task.source is want.source
    assert task.kind is want.kind
    assert task.fingerprint.startswith(want.fingerprint)
    if not want.fingerprint.endswith(":"):
        assert task.fingerprint == want.fingerprint
    assert task.title == want.title
    assert (task.requester.login if task.requester else None) == want.requester
    assert task.labels == want.labels
    assert task.number == want.number
    assert task.on_pull_request is want.on_pull_request
    frames = task.alert.frames if task.alert else []
    assert len(frames) == want.frames
    if want.top_frame:
        top = task.top_frame()
        assert top is not None
        assert (top.filename, top.lineno) == want.top_frame
    if want.issue_link:
        assert task.links.issue == want.issue_link
    if want.alert_link:
        assert task.links.alert == want.alert_link
    assert (task.alert.needs_fetch if task.alert else False) is want.needs_fetch
    assert task.raw  # the raw payload is kept aside ...
    assert "raw" not in task.public_dict()  # ... and never printed


@pytest.mark.parametrize("name", UNSUPPORTED)
def test_unsupported_events_are_refused_clearly(name: str) -> None:
    with pytest.raises(UnsupportedEventError, match="not one AstraForge acts on"):
        events.parse_file(fixture_path(name))


def test_documentation_table_is_not_taken_for_a_payload() -> None:
    with pytest.raises(PayloadError, match="unknown event shape"):
        events.parse_file(fixture_path("gitlab/ci-triggered-pipeline-variables.json"))


def test_sentry_alert_details() -> None:
    task = events.parse_file(fixture_path("sentry/event_alert.triggered.issue-alert.json"))
    alert = task.alert
    assert alert is not None
    assert (alert.exception_type, alert.exception_value) == (
        "ReferenceError",
        "heck is not defined",
    )
    assert alert.level == "error"
    assert alert.culprit == "?(<anonymous>)"
    assert alert.organization == "test-org"
    assert alert.project == "front-end"
    assert alert.platform == "javascript"
    assert alert.tags["browser"] == "Chrome 75.0.3770"
    assert alert.request is not None
    assert alert.request.url == "https://null.jsbin.com/runner"
    assert alert.request.headers["User-Agent"].startswith("Mozilla/5.0")
    assert alert.rule == "Very Important Alert Rule!"
    first = alert.frames[0]
    assert first.abs_path == "https://static.jsbin.com/js/prod/runner-4.1.7.min.js"
    assert first.module == "prod/runner-4.1.7"
    assert first.colno == 10866
    assert first.in_app is False


def test_sentry_frames_keep_their_context_lines() -> None:
    task = events.parse_file(fixture_path("sentry/error.created.json"))
    frame = task.top_frame()
    assert frame is not None
    assert frame.context_line == "<meta charset=utf-8>"
    assert frame.pre_context == ["<!doctype html>", "<html>"]
    assert frame.post_context[0] == "<title>JS Bin Runner</title>"


def test_glitchtip_fields() -> None:
    task = events.parse_file(fixture_path("glitchtip/issue-alert.written-from-format.json"))
    alert = task.alert
    assert alert is not None
    assert alert.project == "shop-api"
    assert alert.environment == "production"
    assert alert.release == "shop-api@1.8.2"
    assert alert.culprit == "shop.pricing in average_price"
    assert alert.exception_type == "ZeroDivisionError"


def test_glitchtip_teams_style_alone() -> None:
    payload = json.loads(fixture_path("glitchtip/issue-alert.written-from-format.json").read_text())
    del payload["attachments"]
    task = events.parse(payload)
    assert task.fingerprint == "glitchtip:4242"
    assert task.alert is not None
    assert task.alert.short_id == "SHOP-API-7"


def test_issue_comment_on_pull_request_is_recognized() -> None:
    name = "github/issue_comment.created.on-pull-request.written-from-schema.json"
    task = events.parse_file(fixture_path(name))
    assert task.on_pull_request
    assert task.invocation == "command"
    assert task.instruction == "the failing lint job"


@pytest.mark.parametrize(
    "name",
    [
        "github/issues.labeled.json",
        "sentry/error.created.json",
        "gitlab/note_hook.comment-on-issue.json",
    ],
)
def test_cli_event_show_prints_task_and_decision(name: str) -> None:
    result = run_cli("event", "show", str(fixture_path(name)))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["task"]["fingerprint"] == events.parse_file(fixture_path(name)).fingerprint
    assert set(out["decision"]) == {"run", "reason"}
    assert out["decision"]["reason"]
    assert "raw" not in out["task"]


def test_cli_refuses_unsupported_event_with_one_line() -> None:
    result = run_cli("event", "show", str(fixture_path("github/pull_request.opened.json")))
    assert result.returncode == 4
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "pull_request" in lines[0]
    assert "(fix:" in lines[0]
