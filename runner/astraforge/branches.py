"""Branches on the forge: a fix commit built beside the checkout and pushed with a header
(never a token in argv or .git/config), and a follow-up's branch fetched, continued with a
commit on its tip and pushed without ever forcing over anyone."""

from __future__ import annotations

import base64
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from astraforge.errors import AstraForgeError
from astraforge.git import run_git

TRAILER = "AstraForge-Fingerprint"


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
class PushResult:
    """Where a branch ended, and whether this run pushed it."""

    branch: str
    commit: str
    pushed: bool  # False: the branch already held this tree
    attempts: int


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
    attempts: int = 3,
    push_options: Sequence[str] = (),
) -> PushResult:
    """Put ``patch`` on ``base`` at ``branch`` of ``url``: one commit on the default branch's
    tip, replacing an earlier AstraForge commit for the same task. A branch holding anyone
    else's commits is never overwritten; a lost race is retried from a fresh look."""
    work = WorkRepo(checkout)
    try:
        commit, tree = work.commit(base, patch, message, author)
        last = ""
        for attempt in range(1, attempts + 1):
            tip = work.remote_tip(url, branch, auth)
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
            accepted, last = work.push(url, branch, commit, tip, auth, push_options)
            if accepted:
                return PushResult(branch, commit, True, attempt)
            if "stale info" not in last and "fetch first" not in last and "rejected" not in last:
                break
        lines = [ln for ln in last.splitlines() if ln.strip()]
        raise PushRejected(
            f"pushing {branch} failed: {lines[-1] if lines else 'no reason given'}",
            "check the token's `contents: write` permission and branch protection; "
            "the patch is kept",
        )
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
        self,
        patch: str,
        message: str,
        author: Author,
        push_options: Sequence[str] = (),
        attempts: int = 3,
    ) -> PushResult:
        """Commit ``patch`` on the branch's tip and push it as a fast-forward: a commit someone
        pushed meanwhile stays, the patch goes on top of it, and nothing is ever forced."""
        tip, last = self.tip, ""
        for attempt in range(1, attempts + 1):
            commit, _ = self.work.commit(tip, patch, message, author)
            accepted, last = self.work.push(
                self.url, self.branch, commit, tip, self.auth, push_options
            )
            if accepted:
                self.tip = commit
                return PushResult(self.branch, commit, True, attempt)
            if "stale info" not in last and "fetch first" not in last and "rejected" not in last:
                break
            tip = self.work.fetch(self.url, self.branch, self.auth)  # someone pushed: go on top
        lines = [ln for ln in last.splitlines() if ln.strip()]
        raise PushRejected(
            f"pushing {self.branch} failed: {lines[-1] if lines else 'no reason given'}",
            "check the token's `contents: write` permission and branch protection; "
            "the patch is kept",
        )

    def close(self) -> None:
        self.work.close()
