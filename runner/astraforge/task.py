"""The normalized Task: what every payload from every platform becomes."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Source(StrEnum):
    """The platform an event came from."""

    GITHUB = "github"
    GITLAB = "gitlab"
    SENTRY = "sentry"
    GLITCHTIP = "glitchtip"
    MANUAL = "manual"


class Kind(StrEnum):
    """What a task asks for."""

    ISSUE = "issue"
    COMMENT_COMMAND = "comment_command"
    ALERT = "alert"
    REQUEST = "request"
    FOLLOW_UP = "follow_up"  # a comment or review on a pull/merge request
    CI_FAILURE = "ci_failure"  # a failed workflow run or pipeline


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Repository(_Model):
    """A repository as an event names it."""

    forge: str = Field(description="github, gitlab or local")
    owner: str = Field(description="owner login or GitLab namespace path")
    name: str
    default_branch: str | None = None
    url: str | None = None

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class Requester(_Model):
    """The person (or bot) who asked."""

    login: str
    association: str | None = Field(
        default=None, description="GitHub author_association, or a permission the payload states"
    )
    is_bot: bool = False


class Links(_Model):
    """Where to read about the task."""

    issue: str | None = None
    comment: str | None = None
    alert: str | None = None
    event: str | None = None


class Frame(_Model):
    """One stack frame of an alert."""

    filename: str | None = None
    abs_path: str | None = None
    module: str | None = None
    function: str | None = None
    lineno: int | None = None
    colno: int | None = None
    in_app: bool | None = None
    context_line: str | None = None
    pre_context: list[str] = Field(default_factory=list)
    post_context: list[str] = Field(default_factory=list)


class Breadcrumb(_Model):
    """One event that happened before an error."""

    timestamp: str | float | None = None
    category: str | None = None
    level: str | None = None
    message: str | None = None
    type: str | None = None


class RequestInfo(_Model):
    """The HTTP request an error happened in."""

    method: str | None = None
    url: str | None = None
    query: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)


class Alert(_Model):
    """What an alert says about an error."""

    issue_id: str | None = None
    short_id: str | None = None
    event_id: str | None = None
    organization: str | None = None
    project: str | None = None
    platform: str | None = None
    level: str | None = None
    status: str | None = None
    culprit: str | None = None
    environment: str | None = None
    release: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    request: RequestInfo | None = None
    breadcrumbs: list[Breadcrumb] = Field(default_factory=list)
    exception_type: str | None = None
    exception_value: str | None = None
    frames: list[Frame] = Field(
        default_factory=list, description="oldest call first; the crashing frame is last"
    )
    frames_dropped: int = Field(default=0, description="frames left out to cap the payload")
    needs_fetch: bool = Field(
        default=False, description="the payload has no frames: fetch the issue's latest event"
    )
    rule: str | None = None


class PullRef(_Model):
    """The pull/merge request a follow-up is about, as far as the event tells."""

    number: int
    head: str | None = Field(default=None, description="the head (source) branch")
    head_repo: str | None = Field(
        default=None, description="full name of the repository the head branch lives in"
    )
    base: str | None = None
    head_sha: str | None = None
    url: str | None = None


class ReviewNote(_Model):
    """A review comment on a line of a pull/merge request."""

    id: int
    body: str
    path: str | None = None
    line: int | None = None
    diff_hunk: str | None = None
    thread: str | None = Field(default=None, description="GitLab discussion id")
    author: str | None = None


class FailedJob(_Model):
    """A failed CI job, and the failing part of its log once the runner fetched it."""

    id: int
    name: str
    url: str | None = None
    excerpt: str = ""


class CIRun(_Model):
    """A finished workflow run or pipeline."""

    provider: Literal["github_actions", "github_checks", "gitlab_ci"]
    id: int
    workflow: str = Field(description="workflow name (GitHub) or pipeline name/ref (GitLab)")
    conclusion: str = Field(description="failure, success, ... (GitHub); failed, ... (GitLab)")
    head_branch: str | None = None
    head_sha: str | None = None
    head_repo: str | None = None
    url: str | None = None
    source: str | None = Field(
        default=None, description="what started the run: push, pull_request, trigger, ..."
    )
    jobs: list[FailedJob] = Field(default_factory=list)


class Round(_Model):
    """One round of work on a pull/merge request: what was asked and what came of it."""

    number: int
    kind: Literal["first", "comment", "review", "ci"]
    request: str = ""
    by: str | None = None
    result: str = ""
    summary: str | None = None
    root_cause: str | None = None
    tests_before: bool | None = None
    tests_after: bool | None = None


class Thread(_Model):
    """What a follow-up resumes: the original task, the earlier rounds, the branch as it is."""

    fingerprint: str = Field(description="the original task's fingerprint (commit trailers)")
    title: str = Field(description="the original task's title")
    body: str = Field(default="", description="the original task's text (capped)")
    pr_title: str = Field(description="the pull/merge request's title as it is")
    rounds: list[Round] = Field(default_factory=list)
    branch: str
    tip: str = Field(description="the head branch's commit the follow-up starts from")
    diff: str = Field(default="", description="the branch against its base, as it is now")


class Task(_Model):
    """What every payload from every platform becomes."""

    source: Source
    kind: Kind
    event: str = Field(description="the platform's event name, e.g. issues.labeled, event_alert")
    repository: Repository | None = None
    number: int | None = Field(default=None, description="issue number (GitHub) or iid (GitLab)")
    on_pull_request: bool = Field(
        default=False, description="the comment was made on a pull/merge request"
    )
    title: str
    body: str = ""
    instruction: str | None = Field(
        default=None, description="free text after the command or mention, or a plain request"
    )
    invocation: Literal["command", "mention"] | None = Field(
        default=None, description="how a comment asked for a run, if it did"
    )
    requester: Requester | None = None
    labels: list[str] = Field(default_factory=list)
    added_label: str | None = Field(default=None, description="the label this event added")
    links: Links = Field(default_factory=Links)
    fingerprint: str = Field(description="stable id of the problem, e.g. github:o/r#12")
    alert: Alert | None = None
    pull: PullRef | None = Field(default=None, description="the PR/MR of a follow-up")
    review: list[ReviewNote] = Field(
        default_factory=list, description="review comments a follow-up answers"
    )
    review_id: int | None = Field(default=None, description="a submitted review's id (GitHub)")
    ci: CIRun | None = Field(default=None, description="the failed run of a CI follow-up")
    thread: Thread | None = Field(
        default=None, description="filled by the runner for a follow-up: what it resumes"
    )
    raw: dict[str, Any] = Field(default_factory=dict, exclude=True, repr=False)

    def top_frame(self) -> Frame | None:
        """The crashing frame: the last in-app frame, else the last frame."""
        if not self.alert or not self.alert.frames:
            return None
        in_app = [f for f in self.alert.frames if f.in_app]
        return (in_app or self.alert.frames)[-1]

    def public_dict(self) -> dict[str, Any]:
        """The Task as JSON-ready data, without the raw payload."""
        return self.model_dump(mode="json", exclude={"raw"})
