"""Host-side git: hooks disabled, no system or global configuration, never a token in argv
or .git/config."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
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
