"""Forges: GitHub, GitLab and a local directory, behind one protocol. Imported lazily."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from astraforge import credentials
from astraforge.errors import ForgeError, UsageError
from astraforge.forges.base import Forge

FORGES = ("github", "gitlab", "local")


def open_forge(
    kind: str,
    *,
    repository: str | None,
    env: Mapping[str, str],
    forge_dir: Path | None = None,
) -> Forge:
    """The forge a run publishes to, with its token from the environment."""
    if kind == "local":
        if forge_dir is None:
            raise UsageError(
                "--forge local needs --forge-dir DIR", "create one with `astraforge forge init`"
            )
        from astraforge.forges.local import LocalForge

        return LocalForge(forge_dir)

    def need_repository() -> str:
        if not repository:
            raise UsageError(
                f"no repository to publish to on {kind}",
                "run inside the CI job, or pass the event of a repository",
            )
        return repository

    if kind == "github":
        from astraforge.forges.github import API_URL, GitHubForge

        token = env.get("ASTRAFORGE_GITHUB_TOKEN") or env.get("GITHUB_TOKEN") or ""
        if not token.strip():
            raise ForgeError(
                "GITHUB_TOKEN is not set",
                "pass `github_token: ${{ secrets.GITHUB_TOKEN }}` to the action (it needs "
                "contents, pull-requests and issues: write)",
            )
        api = env.get("GITHUB_API_URL") or API_URL
        credentials.for_run(env).check(api, token)
        return GitHubForge(need_repository(), token.strip(), api)
    if kind == "gitlab":
        from astraforge.forges.gitlab import SERVER_URL, GitLabForge

        token = env.get("ASTRAFORGE_GITLAB_TOKEN") or env.get("GITLAB_TOKEN") or ""
        job_token = False
        if not token.strip() and env.get("CI_JOB_TOKEN"):
            token, job_token = env["CI_JOB_TOKEN"], True
        if not token.strip():
            raise ForgeError(
                "GITLAB_TOKEN is not set",
                "add a project access token with the api scope and the Developer role as the "
                "masked CI/CD variable GITLAB_TOKEN",
            )
        server = env.get("CI_SERVER_URL") or SERVER_URL
        credentials.for_run(env).check(server, token)
        return GitLabForge(need_repository(), token.strip(), server, job_token=job_token)
    raise UsageError(f"unknown forge {kind!r}", f"choose one of {', '.join(FORGES)}")
