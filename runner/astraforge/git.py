"""Host-side git: hooks disabled, no system or global configuration, never a token in argv
or .git/config."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from astraforge.errors import AstraForgeError

_IDENTITY = {
    "GIT_AUTHOR_NAME": "AstraForge",
    "GIT_AUTHOR_EMAIL": "astraforge@users.noreply.github.com",
    "GIT_COMMITTER_NAME": "AstraForge",
    "GIT_COMMITTER_EMAIL": "astraforge@users.noreply.github.com",
}


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment for git: no user/system config, no prompts, no pager."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
    env.update(_IDENTITY)
    env.update(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_PAGER": "cat",
            "HOME": os.devnull,
        }
    )
    env.update(extra or {})
    return env


def run_git(
    args: Sequence[str],
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run host git with hooks off and no user configuration."""
    cmd = [
        "git",
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "core.fsmonitor=false",
        "-c",
        "protocol.file.allow=always",
        *args,
    ]
    result = subprocess.run(
        cmd, cwd=cwd, env=git_env(env), input=input, capture_output=True, check=False
    )
    if check and result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip().splitlines()
        raise AstraForgeError(
            f"git {args[0]} failed: {message[-1] if message else result.returncode}",
            "see the log above; the run's patch is kept as an artifact",
        )
    return result


def is_checkout(repo: Path) -> bool:
    """Whether ``repo`` is the top of a git working tree."""
    return (repo / ".git").exists()


def resolve(repo: Path, ref: str) -> str | None:
    """The commit ``ref`` names, or None."""
    result = run_git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], repo, check=False)
    return result.stdout.decode().strip() or None if result.returncode == 0 else None


def head_commit(repo: Path) -> str | None:
    """The checked-out commit: where a run starts from."""
    return resolve(repo, "HEAD") if is_checkout(repo) else None


def default_branch_from_env(env: Mapping[str, str]) -> str | None:
    """The default branch as the CI states it (GitLab's CI_DEFAULT_BRANCH, or the
    ``repository.default_branch`` of GitHub's event payload)."""
    if env.get("CI_DEFAULT_BRANCH"):
        return env["CI_DEFAULT_BRANCH"]
    path = env.get("GITHUB_EVENT_PATH")
    if path:
        import json

        try:
            with open(path, encoding="utf-8") as handle:
                event = json.load(handle)
        except (OSError, ValueError):
            return None
        repository = event.get("repository") if isinstance(event, dict) else None
        branch = repository.get("default_branch") if isinstance(repository, dict) else None
        return branch if isinstance(branch, str) and branch else None
    return None


def trusted_commit(repo: Path, env: Mapping[str, str] | None = None) -> str | None:
    """The default branch's commit in ``repo``, where configuration and policy are read
    from: ``origin/HEAD``, else the remote-tracking branch of the default branch the CI
    names, else the checked-out commit. Never a working tree."""
    if not is_checkout(repo):
        return None
    candidates = ["refs/remotes/origin/HEAD"]
    branch = default_branch_from_env(env or {})
    if branch:
        candidates.append(f"refs/remotes/origin/{branch}")
    candidates.append("HEAD")
    for ref in candidates:
        commit = resolve(repo, ref)
        if commit:
            return commit
    return None


def show_file(repo: Path, commit: str, path: str, limit: int) -> bytes | None:
    """A regular file's bytes (at most ``limit``) as committed, or None when it is missing
    or not a regular file (a symlink, a directory)."""
    spec = f"{commit}:{path.lstrip('/')}"
    kind = run_git(["cat-file", "-t", spec], repo, check=False)
    if kind.returncode != 0 or kind.stdout.strip() != b"blob":
        return None
    mode = run_git(["ls-tree", "-z", commit, "--", path.lstrip("/")], repo, check=False)
    if not mode.stdout.startswith((b"100644 ", b"100755 ")):
        return None
    return run_git(["cat-file", "blob", spec], repo).stdout[:limit]


# -- publishing: a commit built beside the checkout, pushed with a header --------------------

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
    are made and pushed from here, so the user's checkout, index and config stay untouched."""

    def __init__(self, checkout: Path) -> None:
        objects = run_git(["rev-parse", "--git-path", "objects"], checkout).stdout.decode().strip()
        self.dir = Path(tempfile.mkdtemp(prefix="astraforge-work-"))
        run_git(["init", "-q", "--bare", "."], self.dir)
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

    def fetch(self, url: str, branch: str, auth: Mapping[str, str]) -> None:
        self.git(
            "fetch",
            "-q",
            "--no-tags",
            "--",
            url,
            f"+refs/heads/{branch}:refs/astraforge/tip",
            env=auth,
        )

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
