"""A forge in a directory, for the demo and for trying AstraForge offline.

Layout::

    FORGE_DIR/
      remote.git/            a bare repository: the "origin" branches are pushed to
      repo.json              {"full_name", "default_branch"} (optional)
      permissions.json       {"login": "write", ...} (optional; absent users have "none")
      pulls/<number>.json    title, body, head, base, state, labels, assignees, reviewers, draft
      comments/<issue>.json  [{"id", "body"}, ...]; a pull request's are pull-<number>.json
      reviews/<id>.json      [{"id", "body", "path", "line", "diff_hunk", "author"}, ...]
      runs/<id>.json         {"jobs": [{"id", "name", "conclusion", "log"}, ...]}

Every change takes an exclusive lock on the directory, so concurrent runs see one state.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from pathlib import Path
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
    tail,
)
from astraforge.git import run_git
from astraforge.task import CIRun, FailedJob, ReviewNote


class LocalForge:
    """A forge in a directory, for the demo and for trying AstraForge offline."""

    name = "local"
    push_options: tuple[str, ...] = ()

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.remote = self.root / "remote.git"
        if not self.remote.is_dir():
            raise ForgeError(
                f"{self.root} is not a local forge: {self.remote} is missing",
                "create it with `astraforge forge init DIR --from REPO`",
            )

    @classmethod
    def init(cls, root: Path, source: Path, full_name: str = "local/repo") -> LocalForge:
        """A new forge whose remote is a bare clone of ``source``."""
        root = root.resolve()
        root.mkdir(parents=True, exist_ok=True)
        run_git(["clone", "-q", "--bare", str(source.resolve()), str(root / "remote.git")], root)
        head = run_git(["symbolic-ref", "--short", "HEAD"], root / "remote.git").stdout
        (root / "repo.json").write_text(
            json.dumps({"full_name": full_name, "default_branch": head.decode().strip()}) + "\n"
        )
        return cls(root)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.root / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self, path: Path, default: Any) -> Any:
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return default

    def _write(self, path: Path, data: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        tmp.replace(path)

    def state(self) -> dict[str, Any]:
        """The repository, pull requests and comments, as JSON-ready data."""
        pulls = [
            self._read(self.root / "pulls" / f"{n}.json", {}) | {"number": n}
            for n in self._numbers()
        ]
        comments = {
            p.stem: self._read(p, []) for p in sorted((self.root / "comments").glob("*.json"))
        }
        return {"repo": self.repo().__dict__, "pulls": pulls, "comments": comments}

    # -- Forge ------------------------------------------------------------------------------
    def repo(self) -> RepoInfo:
        meta = self._read(self.root / "repo.json", {})
        head = run_git(["symbolic-ref", "--short", "HEAD"], self.remote, check=False).stdout
        return RepoInfo(
            full_name=meta.get("full_name", "local/repo"),
            default_branch=meta.get("default_branch") or head.decode().strip() or "main",
            clone_url=str(self.remote),
            web_url=self.root.as_uri(),
        )

    def git_auth(self) -> GitAuth | None:
        return None

    def commit_writer(self, author: Author) -> None:
        return None  # a local bare repository: pushed with git

    def permission(self, user: str) -> str:
        return str(self._read(self.root / "permissions.json", {}).get(user, "none"))

    def _pull(self, number: int) -> PullRequest:
        data = self._read(self.root / "pulls" / f"{number}.json", None)
        if data is None:
            raise ForgeError(f"pull request #{number} does not exist in {self.root}")
        tip = run_git(
            ["rev-parse", "--verify", "--quiet", f"refs/heads/{data['head']}"],
            self.remote,
            check=False,
        ).stdout
        return PullRequest(
            head_repo=self.repo().full_name,
            head_sha=tip.decode().strip() or None,
            author=data.get("author", "astraforge"),
            number=number,
            url=(self.root / "pulls" / f"{number}.json").as_uri(),
            title=data["title"],
            body=data["body"],
            head=data["head"],
            base=data["base"],
            state=data["state"],
            draft=data.get("draft", False),
            labels=list(data.get("labels", [])),
        )

    def _numbers(self) -> list[int]:
        return sorted(int(p.stem) for p in (self.root / "pulls").glob("*.json"))

    def find_pr(self, branch: str) -> PullRequest | None:
        for number in self._numbers():
            pull = self._pull(number)
            if pull.head == branch and pull.state == "open":
                return pull
        return None

    def open_pr(self, *, head: str, base: str, title: str, body: str, draft: bool) -> PullRequest:
        with self._locked():
            if run_git(
                ["rev-parse", "--verify", f"refs/heads/{head}"], self.remote, check=False
            ).returncode:
                raise ForgeError(f"branch {head} was not pushed to {self.remote}")
            existing = self.find_pr(head)
            if existing is not None:
                raise AlreadyExists(f"a pull request already exists for {head}: #{existing.number}")
            number = max(self._numbers(), default=0) + 1
            self._write(
                self.root / "pulls" / f"{number}.json",
                {
                    "title": title,
                    "body": body,
                    "head": head,
                    "base": base,
                    "state": "open",
                    "draft": draft,
                    "labels": [],
                    "assignees": [],
                    "reviewers": [],
                },
            )
        return self._pull(number)

    def _edit(self, number: int, **changes: Any) -> None:
        with self._locked():
            path = self.root / "pulls" / f"{number}.json"
            data = self._read(path, None)
            if data is None:
                raise ForgeError(f"pull request #{number} does not exist in {self.root}")
            for key, value in changes.items():
                if isinstance(value, list):
                    data[key] = list(dict.fromkeys([*data.get(key, []), *value]))
                else:
                    data[key] = value
            self._write(path, data)

    def update_pr(self, number: int, *, title: str, body: str) -> PullRequest:
        self._edit(number, title=title, body=body)
        return self._pull(number)

    def add_labels(self, number: int, labels: list[str]) -> None:
        self._edit(number, labels=labels)

    def add_assignees(self, number: int, users: list[str]) -> None:
        self._edit(number, assignees=users)

    def request_reviewers(self, number: int, users: list[str]) -> None:
        self._edit(number, reviewers=users)

    def pull(self, number: int) -> PullRequest:
        return self._pull(number)

    def pull_commits(self, number: int) -> list[CommitInfo]:
        pull = self._pull(number)
        log = run_git(
            ["log", "--format=%H%x00%an%x00%B%x00", f"refs/heads/{pull.base}..{pull.head_sha}"],
            self.remote,
        ).stdout.decode(errors="replace")
        fields = log.split("\0")
        return [
            CommitInfo(fields[i].strip(), fields[i + 2], fields[i + 1] or None)
            for i in range(0, len(fields) - 2, 3)
        ]

    def review_notes(self, number: int, review_id: int) -> list[ReviewNote]:
        return [
            ReviewNote.model_validate(note)
            for note in self._read(self.root / "reviews" / f"{review_id}.json", [])
        ]

    def reply_review(self, number: int, note: ReviewNote, body: str) -> Comment:
        return self.create_comment(
            number, f"> in reply to review comment {note.id}\n\n{body}", pull=True
        )

    def job_logs(self, run: CIRun) -> list[JobLog]:
        jobs = self._read(self.root / "runs" / f"{run.id}.json", {}).get("jobs", [])
        return [
            JobLog(
                FailedJob(id=int(job["id"]), name=str(job["name"])),
                tail([str(job.get("log", "")).encode()]),
            )
            for job in jobs
            if job.get("conclusion") in ("failure", "failed")
        ]

    def _comments_file(self, issue: int, pull: bool) -> Path:
        return self.root / "comments" / (f"pull-{issue}.json" if pull else f"{issue}.json")

    def comments(self, issue: int, *, pull: bool = False) -> list[Comment]:
        stored = self._read(self._comments_file(issue, pull), [])
        return [Comment(c["id"], c["body"]) for c in stored]

    def create_comment(self, issue: int, body: str, *, pull: bool = False) -> Comment:
        with self._locked():
            path = self._comments_file(issue, pull)
            stored = self._read(path, [])
            new_id = max((int(c["id"]) for c in stored), default=0) + 1
            self._write(path, [*stored, {"id": new_id, "body": body}])
        return Comment(new_id, body)

    def update_comment(
        self, issue: int, comment_id: int, body: str, *, pull: bool = False
    ) -> Comment:
        with self._locked():
            path = self._comments_file(issue, pull)
            stored = self._read(path, [])
            for comment in stored:
                if comment["id"] == comment_id:
                    comment["body"] = body
                    break
            else:
                raise ForgeError(f"comment {comment_id} on #{issue} does not exist")
            self._write(path, stored)
        return Comment(comment_id, body)

    def delete_comment(self, issue: int, comment_id: int, *, pull: bool = False) -> None:
        with self._locked():
            path = self._comments_file(issue, pull)
            stored = self._read(path, [])
            self._write(path, [c for c in stored if c["id"] != comment_id])
