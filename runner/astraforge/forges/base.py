"""The Forge protocol: the few things AstraForge asks of GitHub, GitLab or the local forge."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from astraforge.errors import ForgeError


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

    def permission(self, user: str) -> str: ...

    def find_pr(self, branch: str) -> PullRequest | None: ...

    def open_pr(
        self, *, head: str, base: str, title: str, body: str, draft: bool
    ) -> PullRequest: ...

    def update_pr(self, number: int, *, title: str, body: str) -> PullRequest: ...

    def add_labels(self, number: int, labels: list[str]) -> None: ...

    def add_assignees(self, number: int, users: list[str]) -> None: ...

    def request_reviewers(self, number: int, users: list[str]) -> None: ...

    def comments(self, issue: int) -> list[Comment]: ...

    def create_comment(self, issue: int, body: str) -> Comment: ...

    def update_comment(self, issue: int, comment_id: int, body: str) -> Comment: ...

    def delete_comment(self, issue: int, comment_id: int) -> None: ...


class AlreadyExists(ForgeError):
    """The forge refused to create something because it exists (a race we lost)."""


def marker(topic: str) -> str:
    """The hidden line that identifies AstraForge's comment on one topic."""
    return f"<!-- astraforge:{topic} -->"


def upsert_comment(forge: Forge, issue: int, topic: str, body: str) -> tuple[Comment, bool]:
    """Create or edit the one comment carrying ``topic``'s marker; (comment, wrote).

    Two runs of one task at once may each create one; a run that finds more than one after
    creating its own keeps the oldest, deletes its own, and edits the survivor, so the
    comments converge to one."""
    tag = marker(topic)
    text = f"{tag}\n{body}"
    existing = [c for c in forge.comments(issue) if c.body.startswith(tag)]
    if not existing:
        mine = forge.create_comment(issue, text)
        existing = [c for c in forge.comments(issue) if c.body.startswith(tag)]
        oldest = min(existing, key=lambda c: c.id, default=mine)
        if oldest.id == mine.id:
            return mine, True
        forge.delete_comment(issue, mine.id)
        return forge.update_comment(issue, oldest.id, text), True
    survivor = min(existing, key=lambda c: c.id)
    if survivor.body.strip() == text.strip():
        return survivor, False
    return forge.update_comment(issue, survivor.id, text), True
