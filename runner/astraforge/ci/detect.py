"""Find the triggering event from the CI environment (GitHub Actions, GitLab CI)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from astraforge import events
from astraforge.errors import PayloadError, UsageError
from astraforge.events import forwarded, gitlab
from astraforge.events.commands import CommandSyntax
from astraforge.task import Repository, Task

CIName = Literal["github", "gitlab", "local"]
PAYLOAD_VARIABLE = "ASTRAFORGE_PAYLOAD"


@dataclass(frozen=True)
class CIEnvironment:
    """The CI system a run is in, its repository and its job URL."""

    name: CIName
    repository: Repository | None
    api_url: str | None
    run_url: str | None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def detect(env: Mapping[str, str]) -> CIEnvironment:
    """The CI system, from its environment variables."""
    if _truthy(env.get("GITHUB_ACTIONS")):
        full = env.get("GITHUB_REPOSITORY", "")
        owner, _, name = full.partition("/")
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        run_id = env.get("GITHUB_RUN_ID")
        return CIEnvironment(
            name="github",
            repository=Repository(forge="github", owner=owner, name=name, url=f"{server}/{full}")
            if owner and name
            else None,
            api_url=env.get("GITHUB_API_URL", "https://api.github.com"),
            run_url=f"{server}/{full}/actions/runs/{run_id}" if run_id and full else None,
        )
    if _truthy(env.get("GITLAB_CI")):
        server = env.get("CI_SERVER_URL", "https://gitlab.com").rstrip("/")
        return CIEnvironment(
            name="gitlab",
            repository=gitlab.repository_from_env(env),
            api_url=env.get("CI_API_V4_URL", f"{server}/api/v4"),
            run_url=env.get("CI_JOB_URL"),
        )
    return CIEnvironment(name="local", repository=None, api_url=None, run_url=None)


def task_from_ci(env: Mapping[str, str], syntax: CommandSyntax | None = None) -> Task:
    """The Task of the event that started this CI job."""
    ci = detect(env)
    if ci.name == "github":
        task = _github(env, syntax)
    elif ci.name == "gitlab":
        task = _gitlab(env, syntax)
    else:
        raise UsageError(
            "not running in GitHub Actions or GitLab CI, and no event file given",
            "pass --event FILE (a saved webhook payload)",
        )
    if task.repository is None and ci.repository is not None:
        task = task.model_copy(update={"repository": ci.repository})
    return task


def _github(env: Mapping[str, str], syntax: CommandSyntax | None) -> Task:
    name = env.get("GITHUB_EVENT_NAME")
    path = env.get("GITHUB_EVENT_PATH")
    if not name or not path:
        raise UsageError(
            "GITHUB_EVENT_NAME or GITHUB_EVENT_PATH is not set",
            "run AstraForge as a step of a GitHub Actions job",
        )
    return events.parse_file(Path(path), "github", event_name=name, syntax=syntax)


def _gitlab(env: Mapping[str, str], syntax: CommandSyntax | None) -> Task:
    if env.get(PAYLOAD_VARIABLE):
        raw = env[PAYLOAD_VARIABLE].encode()
        payload = events.decode_payload(raw, PAYLOAD_VARIABLE)
        if not forwarded.is_forwarded(payload):
            raise PayloadError(
                f"{PAYLOAD_VARIABLE} does not hold an AstraForge payload",
                "set it from the AstraForge relay",
            )
        return events.parse(payload, syntax=syntax)
    trigger = env.get("TRIGGER_PAYLOAD")
    if trigger:
        # A file-type variable: its value is the path of a file holding the webhook body.
        return events.parse_file(Path(trigger), syntax=syntax)
    return gitlab.from_variables(env)
