"""The relay's configuration file (YAML, validated; secrets come from environment variables
named in it, never from the file)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from astraforge.errors import ConfigError, pydantic_error


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GitHubTarget(_Section):
    """A GitHub repository that gets repository_dispatch."""

    repository: str = Field(pattern=r"^[\w.-]+/[\w.-]+$", description="owner/name")
    token_env: str = Field(
        default="RELAY_GITHUB_TOKEN",
        description="variable holding a token with Contents: write on the repository",
    )
    api_url: str = "https://api.github.com"
    event_type: str = "astraforge-alert"


class GitLabTarget(_Section):
    """A GitLab project whose pipeline trigger is called."""

    project: str = Field(description="numeric id or full path (group/name)")
    trigger_token_env: str = Field(
        default="RELAY_GITLAB_TRIGGER_TOKEN",
        description="variable holding a pipeline trigger token",
    )
    ref: str = "main"
    server_url: str = "https://gitlab.com"


class Route(_Section):
    """Which alerts go to which target."""

    name: str = Field(description="used in logs and metrics")
    organization: str = Field(default="*", description="Sentry organization slug, or *")
    project: str = Field(default="*", description="Sentry or GlitchTip project slug, or *")
    github: GitHubTarget | None = None
    gitlab: GitLabTarget | None = None
    max_per_hour: int = Field(default=10, ge=1, description="forwards per hour to this target")

    @model_validator(mode="after")
    def _one_target(self) -> Route:
        if (self.github is None) == (self.gitlab is None):
            raise ValueError("give exactly one of github: and gitlab:")
        return self

    def matches(self, organization: str | None, project: str | None) -> bool:
        return self.organization in ("*", organization or "") and self.project in (
            "*",
            project or "",
        )


def default_state_path() -> Path:
    """Where the relay keeps its SQLite state unless told: the user's state directory."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "astraforge" / "relay.db"


class State(_Section):
    """Where the relay keeps its dedupe, limits and outbox."""

    backend: Literal["sqlite", "redis"] = "sqlite"
    path: str = Field(
        default_factory=lambda: str(default_state_path()),
        description="SQLite file (default: $XDG_STATE_HOME/astraforge/relay.db, never the "
        "working directory)",
    )
    redis_url: str = Field(default="redis://127.0.0.1:6379/0")


class RelayConfig(_Section):
    """The relay's configuration file."""

    sentry_client_secret_env: str = Field(
        default="SENTRY_CLIENT_SECRET",
        description="variable holding the Sentry integration's client secret",
    )
    shared_secret_env: str = Field(
        default="RELAY_SHARED_SECRET",
        description="variable holding the secret that unsigned senders (Sentry's legacy webhook "
        "plugin, GlitchTip) put in the path /hooks/<kind>/<secret> or the header "
        "X-AstraForge-Secret",
    )
    max_timestamp_age_seconds: int = Field(
        default=300,
        ge=10,
        description="events older than this (by the time inside the signed body) are refused; "
        "every admitted body is remembered at least this long, so none is admitted twice",
    )
    read_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="a connection must deliver a request's headers and body within this "
        "(and an idle keep-alive connection is closed after it)",
    )
    max_pending_connections: int = Field(
        default=256,
        ge=1,
        description="connections per worker still waiting for a whole request; more are "
        "closed at once",
    )
    dedupe_window_seconds: int = Field(
        default=24 * 3600, ge=1, description="at most one run per Sentry issue in this window"
    )
    max_per_hour: int = Field(default=100, ge=1, description="forwards per hour, all targets")
    alert_levels: list[str] = Field(default_factory=lambda: ["error", "fatal"])
    environments: list[str] = Field(default_factory=list)
    state: State = Field(default_factory=State)
    routes: list[Route] = Field(min_length=1)

    def route_for(self, organization: str | None, project: str | None) -> Route | None:
        return next((r for r in self.routes if r.matches(organization, project)), None)

    def secret(self, env_name: str, env: Mapping[str, str] | None = None) -> str:
        value = (env if env is not None else os.environ).get(env_name, "").strip()
        if not value:
            raise ConfigError(
                f"{env_name} is not set", f"export {env_name} (the relay reads secrets from env)"
            )
        return value


def load(path: Path) -> RelayConfig:
    """The relay's configuration file, validated."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the relay configuration ({exc.strerror})") from None
    except yaml.YAMLError:
        raise ConfigError(f"{path}: invalid YAML", "fix the relay configuration") from None
    try:
        return RelayConfig.model_validate(data or {})
    except ValidationError as exc:
        raise ConfigError(
            pydantic_error(exc, str(path), RelayConfig), "see the relay section of the README"
        ) from None
