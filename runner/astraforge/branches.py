"""Branches on the forge: a fix commit built beside the checkout and written to the branch
(pushed with a header, never a token in argv or .git/config, or through the forge's API by a
:class:`Writer`), and a follow-up's branch fetched, continued with a commit on its tip and
written without ever forcing over anyone."""

from __future__ import annotations

import base64
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from astraforge.errors import AstraForgeError
from astraforge.git import run_git

TRAILER = "AstraForge-Fingerprint"


class Unsupported(AstraForgeError):
    """The forge cannot write a branch this way; another :class:`Writer` may."""

    exit_code = 5


class PushRejected(AstraForgeError):
    """The remote refused the push; the patch is kept as an artifact."""

    exit_code = 5


@dataclass(frozen=True)
class Author:
    """The author and committer of a fix commit."""

    name: str
    email: str


def auth_env(username: str, token: str) -> dict[str, str]:
    """Environment that makes git send ``Authorization: Basic`` to the remote.

    The header travels in GIT_CONFIG_* variables: never in argv, a remote URL or .git/config.
    """
    basic = base64.b64encode(f"{username}:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }


class WorkRepo:
    """A private bare repository borrowing the checkout's objects (git alternates): commits
    are made and pushed from here, so the user's checkout, index and config stay untouched.
    A shallow checkout is not borrowed from (its history stops short); what is needed is
    fetched instead."""

    def __init__(self, checkout: Path) -> None:
        objects = run_git(["rev-parse", "--git-path", "objects"], checkout).stdout.decode().strip()
        shallow = run_git(["rev-parse", "--is-shallow-repository"], checkout, check=False)
        self.dir = Path(tempfile.mkdtemp(prefix="astraforge-work-"))
        run_git(["init", "-q", "--bare", "."], self.dir)
        if shallow.stdout.strip() != b"true":
            alternates = self.dir / "objects" / "info" / "alternates"
            alternates.write_text(str((checkout / objects).resolve()) + "\n")

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def git(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        input: bytes | None = None,
    ) -> str:
        return run_git(list(args), self.dir, env=env, check=check, input=input).stdout.decode()

    def commit(self, base: str, patch: str, message: str, author: Author) -> tuple[str, str]:
        """(commit, tree) of ``patch`` applied to ``base``, with ``base`` as parent."""
        index = self.dir / "astraforge.index"
        env = {"GIT_INDEX_FILE": str(index)}
        self.git("read-tree", base, env=env)
        applied = run_git(
            ["apply", "--cached", "--binary", "--whitespace=nowarn", "-"],
            self.dir,
            env=env,
            input=patch.encode("utf-8", "surrogateescape"),
            check=False,
        )
        if applied.returncode != 0:
            reason = applied.stderr.decode(errors="replace").strip().splitlines()
            raise AstraForgeError(
                f"the patch does not apply to {base[:12]}: {reason[0] if reason else '?'}",
                "the checkout is not the commit the agent started from",
            )
        tree = self.git("write-tree", env=env).strip()
        identity = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": author.name,
            "GIT_COMMITTER_EMAIL": author.email,
        }
        commit = self.git(
            "commit-tree", tree, "-p", base, "-F", "-", env=identity, input=message.encode()
        ).strip()
        return commit, tree

    def describe(self, commit: str) -> tuple[str, list[str], str]:
        """(tree, parents, message) of a commit, the message byte for byte."""
        raw = self.git("cat-file", "commit", commit)
        header, _, message = raw.partition("\n\n")
        fields = [line.split(" ", 1) for line in header.splitlines() if " " in line]
        tree = next(value for key, value in fields if key == "tree")
        return tree, [value for key, value in fields if key == "parent"], message

    def blob(self, sha: str) -> bytes:
        """A blob's bytes."""
        return run_git(["cat-file", "blob", sha], self.dir).stdout

    def remote_tip(self, url: str, branch: str, auth: Mapping[str, str]) -> str | None:
        out = self.git("ls-remote", "--", url, f"refs/heads/{branch}", env=auth)
        return out.split()[0] if out.strip() else None

    def fetch(
        self, url: str, branch: str, auth: Mapping[str, str], into: str = "refs/astraforge/tip"
    ) -> str:
        """Fetch ``branch`` into the local ref ``into``; the commit it holds."""
        self.git("fetch", "-q", "--no-tags", "--", url, f"+refs/heads/{branch}:{into}", env=auth)
        return self.git("rev-parse", into).strip()

    def push(
        self,
        url: str,
        branch: str,
        commit: str,
        expect: str | None,
        auth: Mapping[str, str],
        options: Sequence[str] = (),
    ) -> tuple[bool, str]:
        """Push with a lease on the branch's expected tip; (accepted, git's message)."""
        lease = f"--force-with-lease=refs/heads/{branch}:{expect or ''}"
        flags = [f"--push-option={option}" for option in options]
        result = run_git(
            ["push", "--porcelain", lease, *flags, "--", url, f"{commit}:refs/heads/{branch}"],
            self.dir,
            env=auth,
            check=False,
        )
        text = (result.stdout + result.stderr).decode(errors="replace")
        return result.returncode == 0, text


@dataclass(frozen=True)
class Written:
    """What writing a commit to a branch gave: whether the forge took it, the commit the
    branch now holds (an API writes its own commit object), and the forge's words."""

    accepted: bool
    commit: str
    detail: str = ""
    verified: bool | None = None  # the forge signed the commit and shows it as verified
    how: str = "push"
    note: str = ""  # why it was written the way it was, when that is news


class Writer(Protocol):
    """Puts a commit made in a :class:`WorkRepo` at a branch of the forge, only if the branch
    is still at ``expect`` (None: the branch must not exist)."""

    def write(self, work: WorkRepo, branch: str, commit: str, expect: str | None) -> Written: ...


@dataclass(frozen=True)
class GitPush:
    """Writes with ``git push`` and a lease on the expected tip."""

    url: str
    auth: Mapping[str, str]
    options: Sequence[str] = ()

    def write(self, work: WorkRepo, branch: str, commit: str, expect: str | None) -> Written:
        """Push ``commit`` to ``branch``."""
        accepted, text = work.push(self.url, branch, commit, expect, self.auth, self.options)
        return Written(accepted, commit, text)


class Preferred:
    """Writes with ``first``; where the forge cannot (:class:`Unsupported`), with ``then``
    from there on, saying so once."""

    def __init__(self, first: Writer, then: Writer) -> None:
        self.first: Writer | None = first
        self.then = then
        self.note = ""

    def write(self, work: WorkRepo, branch: str, commit: str, expect: str | None) -> Written:
        """Write with the preferred writer while it works."""
        if self.first is not None:
            try:
                return self.first.write(work, branch, commit, expect)
            except Unsupported as exc:
                self.first, self.note = None, f"{exc.message}; pushed with git instead"
        written = self.then.write(work, branch, commit, expect)
        return replace(written, note=self.note)


@dataclass(frozen=True)
class PushResult:
    """Where a branch ended, and whether this run wrote it."""

    branch: str
    commit: str
    pushed: bool  # False: the branch already held this tree
    attempts: int
    verified: bool | None = None
    how: str = "push"  # "push", or "api" (written through the forge's API)
    note: str = ""

    @classmethod
    def wrote(cls, branch: str, commit: str, attempt: int, written: Written) -> PushResult:
        """The result of an accepted write: how it was written, from ``written``."""
        return cls(branch, commit, True, attempt, written.verified, written.how, written.note)


def _rejected(branch: str, detail: str) -> PushRejected:
    lines = [ln for ln in detail.splitlines() if ln.strip()]
    return PushRejected(
        f"pushing {branch} failed: {lines[-1] if lines else 'no reason given'}",
        "check the token's `contents: write` permission and branch protection; the patch is kept",
    )


def publish_branch(
    checkout: Path,
    *,
    base: str,
    patch: str,
    message: str,
    author: Author,
    url: str,
    branch: str,
    fingerprint: str,
    auth: Mapping[str, str],
    writer: Writer,
    attempts: int = 3,
) -> PushResult:
    """Put ``patch`` on ``base`` at ``branch`` of ``url``: one commit on the default branch's
    tip, replacing an earlier AstraForge commit for the same task. A branch holding anyone
    else's commits is never overwritten; a lost race is retried from a fresh look. ``url`` and
    ``auth`` read the branch; ``writer`` writes it."""
    work = WorkRepo(checkout)
    try:
        commit, tree = work.commit(base, patch, message, author)
        last, tip = "", work.remote_tip(url, branch, auth)
        for attempt in range(1, attempts + 1):
            if tip is not None:
                work.fetch(url, branch, auth)
                if work.git("rev-parse", f"{tip}^{{tree}}").strip() == tree:
                    return PushResult(branch, tip, False, attempt)
                log = work.git("log", "--format=%B%x00", f"{base}..{tip}")
                foreign = [
                    m for m in log.split("\0") if m.strip() and f"{TRAILER}: {fingerprint}" not in m
                ]
                if foreign:
                    raise PushRejected(
                        f"branch {branch} has {len(foreign)} commit(s) not made by AstraForge "
                        "for this task; they are not overwritten",
                        "merge or delete the branch, then run again; the patch is kept",
                    )
            written = writer.write(work, branch, commit, tip)
            if written.accepted:
                return PushResult.wrote(branch, written.commit, attempt, written)
            last = written.detail
            moved = work.remote_tip(url, branch, auth)
            if moved == tip:
                break  # the branch did not move: a refusal, not a lost race
            tip = moved  # a lost race: look again from the new tip
        raise _rejected(branch, last)
    finally:
        work.close()


class FetchedBranch:
    """A follow-up's branch and its base, fetched into a :class:`WorkRepo`: the sandbox starts
    from the branch's tip (its objects are here), the prompt shows the branch's diff against
    its base, and the follow-up's commit goes on top of the tip."""

    def __init__(self, checkout: Path, url: str, branch: str, base: str, auth: Mapping[str, str]):
        self.url, self.branch, self.auth = url, branch, auth
        self.work = WorkRepo(checkout)
        try:
            self.base_tip = self.work.fetch(url, base, auth, "refs/astraforge/base")
            self.tip = self.work.fetch(url, branch, auth)
        except BaseException:
            self.work.close()
            raise

    @property
    def objects(self) -> Path:
        """The object store holding the branch (and, through alternates, the checkout)."""
        return self.work.dir / "objects"

    def diff(self, limit: int = 60_000) -> str:
        """The branch's change against the point it left its base, as a patch (capped)."""
        base = self.work.git("merge-base", self.base_tip, self.tip, check=False).strip()
        text = self.work.git(
            "diff",
            "--no-color",
            "--no-ext-diff",
            "--find-renames",
            f"{base or self.base_tip}..{self.tip}",
        )
        if len(text) > limit:
            text = text[:limit] + f"\n[... {len(text) - limit} more characters of the diff cut]\n"
        return text

    def extend(
        self, patch: str, message: str, author: Author, writer: Writer, attempts: int = 3
    ) -> PushResult:
        """Commit ``patch`` on the branch's tip and write it as a fast-forward: a commit someone
        pushed meanwhile stays, the patch goes on top of it, and nothing is ever forced."""
        tip, last = self.tip, ""
        for attempt in range(1, attempts + 1):
            commit, _ = self.work.commit(tip, patch, message, author)
            written = writer.write(self.work, self.branch, commit, tip)
            if written.accepted:
                self.tip = written.commit
                if written.commit != commit:  # the forge made its own commit object: fetch it
                    self.tip = self.work.fetch(self.url, self.branch, self.auth)
                return PushResult.wrote(self.branch, self.tip, attempt, written)
            last = written.detail
            moved = self.work.fetch(self.url, self.branch, self.auth)
            if moved == tip:
                break  # the branch did not move: a refusal, not a lost race
            tip = moved  # someone pushed: go on top
        raise _rejected(self.branch, last)

    def close(self) -> None:
        self.work.close()
