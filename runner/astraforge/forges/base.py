"""The Forge protocol: the few things AstraForge asks of GitHub, GitLab or the local forge."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from astraforge.branches import Author, Writer
from astraforge.errors import ForgeError
from astraforge.task import CIRun, FailedJob, ReviewNote

MAX_LOG = 2 * 1024 * 1024  # bytes kept of a failed job's log (the end, where failures are)


@dataclass(frozen=True)
class RepoInfo:
    """What a forge says about the repository."""

    full_name: str
    default_branch: str
    clone_url: str  # HTTPS (or file) URL git pushes to; never carries credentials
    web_url: str


@dataclass(frozen=True)
class PullRequest:
    """A pull or merge request."""

    number: int
    url: str
    title: str
    body: str
    head: str
    base: str
    state: str = "open"
    draft: bool = False
    labels: list[str] = field(default_factory=list)
    head_repo: str | None = None  # full name of the head branch's repository; None: unknown
    head_sha: str | None = None
    author: str | None = None


@dataclass(frozen=True)
class CommitInfo:
    """A commit of a pull request, and the forge account of its author when known."""

    sha: str
    message: str
    login: str | None


@dataclass(frozen=True)
class JobLog:
    """A failed CI job and the end of its log."""

    job: FailedJob
    log: str


@dataclass(frozen=True)
class Comment:
    """A comment on an issue or pull request."""

    id: int
    body: str
    url: str = ""


@dataclass(frozen=True)
class GitAuth:
    """How git authenticates to the forge's HTTP remote: Basic with this user and token."""

    username: str
    token: str


class Forge(Protocol):
    """The few things AstraForge asks of a forge."""

    name: str
    # Options sent with every push: GitLab gets ``ci.skip``, so that pushing the agent's
    # branch starts no pipeline that would run its code with the project's CI/CD variables.
    push_options: tuple[str, ...]

    def repo(self) -> RepoInfo: ...

    def git_auth(self) -> GitAuth | None: ...

    # Writes a fix commit through the forge's API (GitHub signs those); None: git push only.
    def commit_writer(self, author: Author) -> Writer | None: ...

    def permission(self, user: str) -> str: ...

    def find_pr(self, branch: str) -> PullRequest | None: ...

    def open_pr(
        self, *, head: str, base: str, title: str, body: str, draft: bool
    ) -> PullRequest: ...

    def update_pr(self, number: int, *, title: str, body: str) -> PullRequest: ...

    def add_labels(self, number: int, labels: list[str]) -> None: ...

    def add_assignees(self, number: int, users: list[str]) -> None: ...

    def request_reviewers(self, number: int, users: list[str]) -> None: ...

    def pull(self, number: int) -> PullRequest: ...

    def pull_commits(self, number: int) -> list[CommitInfo]: ...

    def review_notes(self, number: int, review_id: int) -> list[ReviewNote]: ...

    def reply_review(self, number: int, note: ReviewNote, body: str) -> Comment: ...

    def job_logs(self, run: CIRun) -> list[JobLog]: ...

    # ``pull``: the comments of a pull/merge request (GitLab keeps them apart from issues).
    def comments(self, issue: int, *, pull: bool = False) -> list[Comment]: ...

    def create_comment(self, issue: int, body: str, *, pull: bool = False) -> Comment: ...

    def update_comment(
        self, issue: int, comment_id: int, body: str, *, pull: bool = False
    ) -> Comment: ...

    def delete_comment(self, issue: int, comment_id: int, *, pull: bool = False) -> None: ...


class AlreadyExists(ForgeError):
    """The forge refused to create something because it exists (a race we lost)."""


def marker(topic: str) -> str:
    """The hidden line that identifies AstraForge's comment on one topic."""
    return f"<!-- astraforge:{topic} -->"


def upsert_comment(
    forge: Forge, issue: int, topic: str, body: str, *, pull: bool = False
) -> tuple[Comment, bool]:
    """Create or edit the one comment carrying ``topic``'s marker; (comment, wrote).

    Two runs of one task at once may each create one; a run that finds more than one after
    creating its own keeps the oldest, deletes its own, and edits the survivor, so the
    comments converge to one."""
    tag = marker(topic)
    text = f"{tag}\n{body}"
    existing = [c for c in forge.comments(issue, pull=pull) if c.body.startswith(tag)]
    if not existing:
        mine = forge.create_comment(issue, text, pull=pull)
        existing = [c for c in forge.comments(issue, pull=pull) if c.body.startswith(tag)]
        oldest = min(existing, key=lambda c: c.id, default=mine)
        if oldest.id == mine.id:
            return mine, True
        forge.delete_comment(issue, mine.id, pull=pull)
        return forge.update_comment(issue, oldest.id, text, pull=pull), True
    survivor = min(existing, key=lambda c: c.id)
    if survivor.body.strip() == text.strip():
        return survivor, False
    return forge.update_comment(issue, survivor.id, text, pull=pull), True


def tail(chunks: Iterable[bytes], limit: int = MAX_LOG) -> str:
    """The end of a log as text (where a failure is), marked when cut; only ``limit``
    bytes are ever held."""
    kept, total = bytearray(), 0
    for chunk in chunks:
        total += len(chunk)
        kept += chunk
        if len(kept) > limit:
            del kept[: len(kept) - limit]
    text = kept.decode("utf-8", "replace")
    return text if total <= limit else f"[... {total - limit} bytes of the log cut]\n{text}"


def download_tail(url: str, limit: int = MAX_LOG) -> str:
    """The end of a log at ``url``, fetched without credentials (a storage link the API
    handed out), or one ForgeError."""
    import requests

    try:
        with requests.get(url, timeout=60, stream=True) as response:
            response.raise_for_status()
            return tail(response.iter_content(1 << 16), limit)
    except requests.RequestException as exc:
        raise ForgeError(
            f"could not download a job log ({type(exc).__name__})",
            "the log may have expired; run the failed workflow again",
        ) from None
