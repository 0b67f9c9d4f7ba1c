"""GitHub (and GitHub Enterprise through GITHUB_API_URL) via PyGithub.

Rate limits (403 or 429 with Retry-After or X-RateLimit-Reset) and 5xx are retried with
backoff by PyGithub's GithubRetry; what still fails becomes one ForgeError naming the token
permission the operation needs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from astraforge.branches import Author
from astraforge.errors import ForgeError
from astraforge.forges.base import (
    AlreadyExists,
    Comment,
    CommitInfo,
    GitAuth,
    JobLog,
    PullRequest,
    RepoInfo,
    download_tail,
)
from astraforge.forges.github_commits import GitDataWriter
from astraforge.policy.model import PERMISSIONS
from astraforge.task import CIRun, FailedJob, ReviewNote

API_URL = "https://api.github.com"


class GitHubForge:
    """GitHub and GitHub Enterprise through PyGithub."""

    name = "github"
    push_options: tuple[str, ...] = ()

    def __init__(
        self,
        full_name: str,
        token: str,
        api_url: str = API_URL,
        *,
        retries: int = 5,
        throttle: bool = True,
        rate_limit_wait: float = 300.0,
    ) -> None:
        import github

        self.full_name = full_name
        self._token = token
        retry = github.GithubRetry(
            total=retries,
            backoff_factor=0.5,
            secondary_rate_wait=min(60.0, rate_limit_wait),
            max_rate_limit_wait=rate_limit_wait,
            status_forcelist=[429, 500, 502, 503, 504],
            allowed_methods=None,  # POST and PATCH too: every call here is safe to repeat
        )
        self._gh = github.Github(
            auth=github.Auth.Token(token),
            base_url=api_url.rstrip("/"),
            retry=retry,
            timeout=30,
            seconds_between_requests=0.25 if throttle else None,
            seconds_between_writes=1.0 if throttle else None,
        )
        self._repo: Any = None

    @contextlib.contextmanager
    def _call(self, what: str, needs: str) -> Iterator[None]:
        import github
        import requests

        try:
            yield
        except github.GithubException as exc:
            raise _error(exc, what, needs, self.full_name) from None
        except requests.exceptions.RetryError as exc:
            raise ForgeError(
                f"GitHub kept failing to {what} ({_reason(exc)})",
                "GitHub may be down or rate-limiting this token; run again later",
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise ForgeError(
                f"cannot reach GitHub to {what} ({type(exc).__name__})",
                "check GITHUB_API_URL and the network",
            ) from None

    def _r(self) -> Any:
        if self._repo is None:
            with self._call(f"read {self.full_name}", "metadata: read"):
                self._repo = self._gh.get_repo(self.full_name)
        return self._repo

    def repo(self) -> RepoInfo:
        r = self._r()
        return RepoInfo(r.full_name, r.default_branch, r.clone_url, r.html_url)

    def git_auth(self) -> GitAuth:
        return GitAuth("x-access-token", self._token)

    def commit_writer(self, author: Author) -> GitDataWriter:
        return GitDataWriter(self._r(), self._call, author)

    def permission(self, user: str) -> str:
        import github

        with self._call(f"read {user}'s permission", "metadata: read (push access)"):
            try:
                role = self._r().get_collaborator_role_name(user)
            except github.UnknownObjectException:
                return "none"
            if role in PERMISSIONS:
                return str(role)
            return str(self._r().get_collaborator_permission(user))  # a custom role

    def _pr(self, pull: Any) -> PullRequest:
        head_repo = pull.head.repo
        return PullRequest(
            number=pull.number,
            url=pull.html_url,
            title=pull.title,
            body=pull.body or "",
            head=pull.head.ref,
            base=pull.base.ref,
            state=pull.state,
            draft=bool(pull.draft),
            labels=[label.name for label in pull.labels],
            head_repo=head_repo.full_name if head_repo is not None else None,
            head_sha=pull.head.sha,
            author=pull.user.login if pull.user else None,
        )

    def pull(self, number: int) -> PullRequest:
        with self._call(f"read pull request #{number}", "pull-requests: read"):
            return self._pr(self._r().get_pull(number))

    def pull_commits(self, number: int) -> list[CommitInfo]:
        with self._call(f"list the commits of #{number}", "pull-requests: read"):
            return [
                CommitInfo(c.sha, c.commit.message, c.author.login if c.author else None)
                for c in self._r().get_pull(number).get_commits()
            ]

    def review_notes(self, number: int, review_id: int) -> list[ReviewNote]:
        with self._call(f"read review {review_id} of #{number}", "pull-requests: read"):
            pull = self._r().get_pull(number)
            return [
                ReviewNote(
                    id=c.id,
                    body=c.body or "",
                    path=c.path,
                    line=c.line or c.original_line,
                    diff_hunk=c.diff_hunk,
                    author=c.user.login if c.user else None,
                )
                for c in pull.get_single_review_comments(review_id)
            ]

    def reply_review(self, number: int, note: ReviewNote, body: str) -> Comment:
        with self._call(f"reply to review comment {note.id}", "pull-requests: write"):
            c = self._r().get_pull(number).create_review_comment_reply(note.id, body)
            return Comment(c.id, c.body or "", c.html_url)

    def job_logs(self, run: CIRun) -> list[JobLog]:
        if run.provider == "github_checks":
            return [self._check_output(run)]
        found = []
        with self._call(f"read the jobs of workflow run {run.id}", "actions: read"):
            for job in self._r().get_workflow_run(run.id).jobs("latest"):
                if job.conclusion in ("failure", "timed_out"):
                    # A short-lived link to the log's storage: it takes no credentials.
                    log = download_tail(job.logs_url())
                    found.append(JobLog(FailedJob(id=job.id, name=job.name, url=job.html_url), log))
        return found

    def _check_output(self, run: CIRun) -> JobLog:
        """A CI app's check run as a log: its output and annotations (file:line message)."""
        with self._call(f"read check run {run.id}", "checks: read"):
            check = self._r().get_check_run(run.id)
            output = check.output
            parts = [p for p in (output.title, output.summary, output.text) if p]
            for note in check.get_annotations():
                where = f"{note.path}:{note.start_line}"
                parts.append(f"{note.annotation_level}: {where}: {note.title or ''} {note.message}")
        job = FailedJob(id=run.id, name=run.workflow, url=run.url)
        return JobLog(job, "\n".join(parts))

    def find_pr(self, branch: str) -> PullRequest | None:
        owner = self.full_name.split("/")[0]
        with self._call("list pull requests", "pull-requests: read"):
            for pull in self._r().get_pulls(state="open", head=f"{owner}:{branch}"):
                return self._pr(pull)
        return None

    def open_pr(self, *, head: str, base: str, title: str, body: str, draft: bool) -> PullRequest:
        with self._call(f"open a pull request from {head}", "pull-requests: write"):
            return self._pr(
                self._r().create_pull(base=base, head=head, title=title, body=body, draft=draft)
            )

    def update_pr(self, number: int, *, title: str, body: str) -> PullRequest:
        with self._call(f"update pull request #{number}", "pull-requests: write"):
            pull = self._r().get_pull(number)
            pull.edit(title=title, body=body)
            return self._pr(pull)

    def add_labels(self, number: int, labels: list[str]) -> None:
        if labels:
            with self._call(f"label #{number}", "issues: write"):
                self._r().get_issue(number).add_to_labels(*labels)

    def add_assignees(self, number: int, users: list[str]) -> None:
        if users:
            with self._call(f"assign #{number}", "issues: write"):
                self._r().get_issue(number).add_to_assignees(*users)

    def request_reviewers(self, number: int, users: list[str]) -> None:
        if users:
            with self._call(f"request reviews on #{number}", "pull-requests: write"):
                self._r().get_pull(number).create_review_request(reviewers=users)

    def comments(self, issue: int, *, pull: bool = False) -> list[Comment]:
        with self._call(f"read the comments of #{issue}", "issues: read"):
            return [
                Comment(c.id, c.body or "", c.html_url)
                for c in self._r().get_issue(issue).get_comments()
            ]

    def create_comment(self, issue: int, body: str, *, pull: bool = False) -> Comment:
        with self._call(f"comment on #{issue}", "issues: write"):
            c = self._r().get_issue(issue).create_comment(body)
            return Comment(c.id, c.body or "", c.html_url)

    def update_comment(
        self, issue: int, comment_id: int, body: str, *, pull: bool = False
    ) -> Comment:
        with self._call(f"edit comment {comment_id}", "issues: write"):
            c = self._r().get_issue(issue).get_comment(comment_id)
            c.edit(body)
            return Comment(c.id, body, c.html_url)

    def delete_comment(self, issue: int, comment_id: int, *, pull: bool = False) -> None:
        with self._call(f"delete comment {comment_id}", "issues: write"):
            self._r().get_issue(issue).get_comment(comment_id).delete()


def _reason(exc: Exception) -> str:
    text = str(exc)
    for code in ("500", "502", "503", "504", "403", "429"):
        if f"{code} error" in text or f"too many {code}" in text:
            return f"HTTP {code}"
    return type(exc).__name__


def _error(exc: Any, what: str, needs: str, repo: str) -> ForgeError:
    status = exc.status
    data = exc.data if isinstance(exc.data, dict) else {}
    message = str(data.get("message") or "")
    details = " ".join(
        str(e.get("message") or e.get("code") or "")
        for e in data.get("errors") or []
        if isinstance(e, dict)
    )
    if status == 422 and "already exists" in f"{message} {details}":
        return AlreadyExists(f"GitHub: {details or message}")
    if status == 401:
        return ForgeError(
            f"GitHub rejected the token (HTTP 401) trying to {what}",
            "check the github_token input / GITHUB_TOKEN",
        )
    if status == 403:
        return ForgeError(
            f"the token may not {what} in {repo} (HTTP 403: {message or 'forbidden'})",
            f"grant the token `{needs}` (workflow `permissions:` or the app's settings)",
        )
    if status == 404:
        return ForgeError(
            f"GitHub could not {what}: {repo} or the object was not found (HTTP 404)",
            f"check the repository name and that the token can see it (`{needs}`)",
        )
    suffix = f": {details or message}" if (details or message) else ""
    return ForgeError(f"GitHub refused to {what} (HTTP {status}){suffix}")
