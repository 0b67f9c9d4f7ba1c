"""GitLab (gitlab.com or self-managed through CI_SERVER_URL) via python-gitlab.

429 (with Retry-After or RateLimit-Reset) and 5xx are retried with backoff by python-gitlab;
what still fails becomes one ForgeError naming the token scope or role the operation needs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from astraforge.branches import TRAILER, Author
from astraforge.errors import ForgeError
from astraforge.forges.base import (
    AlreadyExists,
    Comment,
    CommitInfo,
    GitAuth,
    JobLog,
    PullRequest,
    RepoInfo,
    tail,
)
from astraforge.task import CIRun, FailedJob, ReviewNote

SERVER_URL = "https://gitlab.com"
# GitLab access levels onto AstraForge's permission names.
ACCESS = {50: "admin", 40: "maintain", 30: "write", 20: "triage", 10: "read", 5: "read"}
DRAFT = "Draft: "


class GitLabForge:
    """GitLab.com and self-managed GitLab through python-gitlab."""

    name = "gitlab"
    push_options: tuple[str, ...] = ("ci.skip",)

    def __init__(
        self,
        project: str,
        token: str,
        server_url: str = SERVER_URL,
        *,
        job_token: bool = False,
    ) -> None:
        import gitlab

        self.project_path = project
        self._token, self._job_token = token, job_token
        self._gl = gitlab.Gitlab(
            server_url.rstrip("/"),
            private_token=None if job_token else token,
            job_token=token if job_token else None,
            timeout=30,
            retry_transient_errors=True,  # python-gitlab retries 429 and 5xx up to 10 times
            keep_base_url=True,
        )
        self._project: Any = None

    @contextlib.contextmanager
    def _call(self, what: str, needs: str) -> Iterator[None]:
        import gitlab
        import requests

        try:
            yield
        except gitlab.exceptions.GitlabError as exc:
            raise _error(exc, what, needs, self.project_path) from None
        except requests.exceptions.ConnectionError as exc:
            raise ForgeError(
                f"cannot reach GitLab to {what} ({type(exc).__name__})",
                "check CI_SERVER_URL and the network",
            ) from None

    def _p(self) -> Any:
        if self._project is None:
            with self._call(f"read project {self.project_path}", "read_api, Reporter"):
                self._project = self._gl.projects.get(self.project_path)
        return self._project

    def repo(self) -> RepoInfo:
        p = self._p()
        return RepoInfo(p.path_with_namespace, p.default_branch, p.http_url_to_repo, p.web_url)

    def git_auth(self) -> GitAuth:
        return GitAuth("gitlab-ci-token" if self._job_token else "oauth2", self._token)

    def commit_writer(self, author: Author) -> None:
        return None  # commits are pushed with git (with ci.skip)

    def _user_id(self, user: str) -> int | None:
        with self._call(f"look up user {user}", "read_api"):
            found = self._gl.users.list(username=user, get_all=False)
        return int(found[0].id) if found else None

    def permission(self, user: str) -> str:
        import gitlab

        user_id = self._user_id(user)
        if user_id is None:
            return "none"
        with self._call(f"read {user}'s membership", "read_api, Reporter"):
            try:
                member = self._p().members_all.get(user_id)
            except gitlab.exceptions.GitlabGetError as exc:
                if exc.response_code == 404:
                    return "none"
                raise
        return ACCESS.get(int(member.access_level), "none")

    def _mr(self, mr: Any) -> PullRequest:
        title = mr.title
        source = getattr(mr, "source_project_id", None)
        same = source is None or source == getattr(mr, "target_project_id", source)
        author = getattr(mr, "author", None) or {}
        return PullRequest(
            head_repo=self.project_path if same else f"project {source}",
            head_sha=getattr(mr, "sha", None),
            author=author.get("username") if isinstance(author, dict) else None,
            number=mr.iid,
            url=mr.web_url,
            title=title.removeprefix(DRAFT),
            body=mr.description or "",
            head=mr.source_branch,
            base=mr.target_branch,
            state="open" if mr.state == "opened" else mr.state,
            draft=bool(getattr(mr, "draft", False)) or title.startswith(DRAFT),
            labels=list(mr.labels or []),
        )

    def find_pr(self, branch: str) -> PullRequest | None:
        with self._call("list merge requests", "read_api, Reporter"):
            found = self._p().mergerequests.list(
                source_branch=branch, state="opened", get_all=False
            )
        return self._mr(found[0]) if found else None

    def open_pr(self, *, head: str, base: str, title: str, body: str, draft: bool) -> PullRequest:
        with self._call(f"open a merge request from {head}", "api, Developer"):
            mr = self._p().mergerequests.create(
                {
                    "source_branch": head,
                    "target_branch": base,
                    "title": (DRAFT if draft else "") + title,
                    "description": body,
                    "remove_source_branch": True,
                }
            )
        return self._mr(mr)

    def update_pr(self, number: int, *, title: str, body: str) -> PullRequest:
        with self._call(f"update merge request !{number}", "api, Developer"):
            mr = self._p().mergerequests.get(number)
            mr.title = (DRAFT if mr.title.startswith(DRAFT) else "") + title
            mr.description = body
            mr.save()
        return self._mr(mr)

    def _edit(self, number: int, what: str, **fields: Any) -> None:
        with self._call(what, "api, Developer"):
            self._p().mergerequests.update(number, fields)

    def add_labels(self, number: int, labels: list[str]) -> None:
        if labels:
            self._edit(number, f"label !{number}", add_labels=",".join(labels))

    def _ids(self, users: list[str]) -> list[int]:
        return [i for i in (self._user_id(u) for u in users) if i is not None]

    def add_assignees(self, number: int, users: list[str]) -> None:
        if users:
            self._edit(number, f"assign !{number}", assignee_ids=self._ids(users))

    def request_reviewers(self, number: int, users: list[str]) -> None:
        if users:
            self._edit(number, f"request reviews on !{number}", reviewer_ids=self._ids(users))

    def pull(self, number: int) -> PullRequest:
        with self._call(f"read merge request !{number}", "read_api, Reporter"):
            return self._mr(self._p().mergerequests.get(number))

    def pull_commits(self, number: int) -> list[CommitInfo]:
        with self._call(f"list the commits of !{number}", "read_api, Reporter"):
            commits = list(self._p().mergerequests.get(number, lazy=True).commits())
        # GitLab names a commit's author by e-mail only: the account is looked up by its
        # public e-mail, once per address, and not for AstraForge's own commits.
        logins: dict[str, str | None] = {}
        found = []
        for commit in commits:
            message, email = commit.message or "", str(commit.author_email or "")
            if f"{TRAILER}:" not in message and email not in logins:
                logins[email] = self._login_by_email(email)
            found.append(CommitInfo(commit.id, message, logins.get(email)))
        return found

    def _login_by_email(self, email: str) -> str | None:
        """The account whose public e-mail (or username) is exactly ``email``, if one."""
        if not email:
            return None
        with self._call("look up a commit author", "read_api"):
            found = self._gl.users.list(search=email, get_all=False)
        exact = [u for u in found if email in (getattr(u, "public_email", None), u.username)]
        return str(exact[0].username) if len(exact) == 1 else None

    def review_notes(self, number: int, review_id: int) -> list[ReviewNote]:
        return []  # GitLab sends each diff note in its own hook

    def reply_review(self, number: int, note: ReviewNote, body: str) -> Comment:
        if not note.thread:
            return self.create_comment(number, body, pull=True)
        with self._call(f"reply in discussion {note.thread}", "api, Reporter"):
            mr = self._p().mergerequests.get(number, lazy=True)
            created = mr.discussions.get(note.thread, lazy=True).notes.create({"body": body})
        return Comment(created.id, body)

    def job_logs(self, run: CIRun) -> list[JobLog]:
        found = []
        with self._call(f"read the jobs of pipeline {run.id}", "read_api, Reporter"):
            pipeline = self._p().pipelines.get(run.id, lazy=True)
            for job in pipeline.jobs.list(scope="failed", get_all=True):
                if getattr(job, "allow_failure", False):
                    continue
                chunks = (
                    self._p()
                    .jobs.get(job.id, lazy=True)
                    .trace(streamed=True, iterator=True, chunk_size=1 << 16)
                )
                url = getattr(job, "web_url", None)
                found.append(JobLog(FailedJob(id=job.id, name=job.name, url=url), tail(chunks)))
        return found

    def _notes(self, issue: int, pull: bool) -> Any:
        owner = self._p().mergerequests if pull else self._p().issues
        return owner.get(issue, lazy=True).notes

    def comments(self, issue: int, *, pull: bool = False) -> list[Comment]:
        with self._call(f"read the notes of {_ref(issue, pull)}", "read_api, Reporter"):
            return [Comment(n.id, n.body) for n in self._notes(issue, pull).list(iterator=True)]

    def create_comment(self, issue: int, body: str, *, pull: bool = False) -> Comment:
        with self._call(f"comment on {_ref(issue, pull)}", "api, Reporter"):
            note = self._notes(issue, pull).create({"body": body})
        return Comment(note.id, note.body)

    def update_comment(
        self, issue: int, comment_id: int, body: str, *, pull: bool = False
    ) -> Comment:
        with self._call(f"edit note {comment_id}", "api, Reporter"):
            self._notes(issue, pull).update(comment_id, {"body": body})
        return Comment(comment_id, body)

    def delete_comment(self, issue: int, comment_id: int, *, pull: bool = False) -> None:
        with self._call(f"delete note {comment_id}", "api, Reporter"):
            self._notes(issue, pull).delete(comment_id)


def _ref(number: int, pull: bool) -> str:
    return f"!{number}" if pull else f"#{number}"


def _error(exc: Any, what: str, needs: str, project: str) -> ForgeError:
    status = exc.response_code
    message = str(exc.error_message or "")
    if status == 409 or (status == 422 and "already exists" in message):
        return AlreadyExists(f"GitLab: {message}")
    if status == 401:
        return ForgeError(
            f"GitLab rejected the token (HTTP 401) trying to {what}",
            "check GITLAB_TOKEN (a project access token with the api scope)",
        )
    if status == 403:
        return ForgeError(
            f"the token may not {what} in {project} (HTTP 403: {message or 'forbidden'})",
            f"give the token scope and role `{needs}`",
        )
    if status == 404:
        return ForgeError(
            f"GitLab could not {what}: {project} or the object was not found (HTTP 404)",
            f"check the project path and that the token can see it (`{needs}`)",
        )
    if status in (429, 500, 502, 503, 504):
        return ForgeError(
            f"GitLab kept failing to {what} (HTTP {status})",
            "GitLab may be down or rate-limiting this token; run again later",
        )
    return ForgeError(f"GitLab refused to {what} (HTTP {status}): {message}")
