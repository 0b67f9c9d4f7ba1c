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
