"""Configuration: `.astraforge.yml` in the target repository, action inputs / environment,
and command-line flags.

Precedence, highest first: command-line flags > environment (action inputs, GitLab template
inputs) > the repository's file > defaults.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from astraforge.errors import ConfigError
from astraforge.events.commands import CommandSyntax
from astraforge.sandbox.config import BwrapConfig, DockerConfig, SandboxSpec

if TYPE_CHECKING:
    from astraforge.policy.model import SandboxPolicy

INSTRUCTION_FILES = (
    "AGENTS.md",
    "CLAUDE.md",
    ".github/copilot-instructions.md",
    "CONTRIBUTING.md",
)
CONFIG_FILES = (".astraforge.yml", ".astraforge.yaml")
MAX_CONFIG_BYTES = 1024 * 1024


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TriggerConfig(_Section):
    """What asks for a run, and who may ask."""

    label: str = Field(default="astraforge", description="issue label that starts a run")
    command: str = Field(
        default="/astraforge", description="comment prefix that starts a run: `/astraforge fix ...`"
    )
    mention: str = Field(
        default="@astraforge",
        description="handle whose mention in a comment starts a run; '' disables",
    )
    dispatch_types: list[str] = Field(
        default_factory=lambda: ["astraforge-alert", "astraforge"],
        description="repository_dispatch event types that start a run",
    )
    bot_logins: list[str] = Field(
        default_factory=lambda: ["astraforge[bot]", "github-actions[bot]"],
        description="AstraForge's own accounts: their events never trigger a run",
    )
    alert_levels: list[str] = Field(
        default_factory=lambda: ["error", "fatal"],
        description="alert levels that start a run (an alert without a level passes)",
    )
    environments: list[str] = Field(
        default_factory=list, description="alert environments that start a run; empty means all"
    )

    def syntax(self) -> CommandSyntax:
        return CommandSyntax(command=self.command, mention=self.mention)


class Price(_Section):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


# Published list prices (USD per million tokens); a model missing here counts tokens only.
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "gpt-4.1": {"input": 2.0, "output": 8.0},
    "gpt-4.1-mini": {"input": 0.4, "output": 1.6},
    "gpt-4.1-nano": {"input": 0.1, "output": 0.4},
    "gpt-4o": {"input": 2.5, "output": 10.0},
    "gpt-4o-mini": {"input": 0.15, "output": 0.6},
    "o3": {"input": 2.0, "output": 8.0},
    "o4-mini": {"input": 1.1, "output": 4.4},
}


class ModelConfig(_Section):
    """The LLM, reached through any OpenAI-compatible API."""

    name: str = Field(
        default="gpt-4.1",
        description="model name as the API knows it (the deployment name on Azure); "
        "`replay:FILE` replays a recorded trajectory",
    )
    api: Literal["openai", "azure"] = Field(
        default="openai", description="`azure` for Azure OpenAI; `openai` for every other API"
    )
    base_url: str | None = Field(
        default=None,
        description="API base URL (the resource endpoint on Azure); default OpenAI's, "
        "or OPENAI_BASE_URL",
    )
    api_version: str = Field(default="2024-10-21", description="Azure OpenAI API version")
    api_key_env: str = Field(
        default="OPENAI_API_KEY", description="name of the environment variable holding the API key"
    )
    temperature: float | None = Field(
        default=0.0, ge=0, le=2, description="null leaves it to the server (reasoning models)"
    )
    timeout_seconds: float = Field(default=120.0, gt=0, description="per request")
    max_retries: int = Field(
        default=4, ge=0, le=20, description="retries on 429, 5xx, timeouts and connection errors"
    )
    extra_headers: dict[str, str] = Field(default_factory=dict)
    context_window: int = Field(
        default=128_000, ge=4096, description="tokens; older tool outputs are elided near it"
    )
    max_output_tokens: int = Field(default=8192, ge=256, description="per reply")
    max_tokens_param: Literal["max_completion_tokens", "max_tokens"] = Field(
        default="max_completion_tokens",
        description="request field that caps a reply; older servers only know max_tokens",
    )
    prices: dict[str, Price] = Field(
        default_factory=lambda: {k: Price(**v) for k, v in DEFAULT_PRICES.items()},
        description="USD per million tokens by model name; unknown models count tokens only",
    )

    def price(self) -> Price | None:
        return self.prices.get(self.name)


class SandboxSettings(_Section):
    """Where the agent's commands run."""

    backend: Literal["docker", "bwrap"] = "docker"
    image: str = Field(default="python:3.12-slim", description="sandbox image (docker backend)")

    def spec(
        self, limits: SandboxPolicy | None = None, exclude: list[str] | None = None
    ) -> SandboxSpec:
        """The sandbox configuration, with the policy's limits when given."""
        common: dict[str, object] = {"exclude": list(exclude or [])}
        if limits is not None:
            common.update(
                cpus=limits.cpus,
                memory_mb=limits.memory_mb,
                pids=limits.pids,
                workspace_mb=limits.disk_mb,
                command_timeout=limits.command_timeout_seconds,
                setup_timeout=limits.setup_timeout_seconds,
                setup_network=limits.network == "setup-only",
            )
        if self.backend == "bwrap":
            return BwrapConfig.model_validate(common)
        return DockerConfig.model_validate({**common, "image": self.image})


class ContextConfig(_Section):
    """What the agent is told besides the task."""

    max_tokens: int = Field(
        default=24_000,
        ge=2000,
        description="budget of the first prompt; least relevant "
        "parts are dropped to fit (far frames, breadcrumbs, repository map)",
    )
    max_frames: int = Field(default=8, ge=1, description="stack frames shown with their code")
    window_lines: int = Field(default=8, ge=1, le=100, description="lines around a frame's line")
    suspect_commits: int = Field(default=5, ge=0, description="recent commits on failing lines")
    instruction_files: list[str] = Field(
        default_factory=lambda: list(INSTRUCTION_FILES),
        description="guidance files read from the base branch (never executed)",
    )
    sentry_url: str = Field(
        default="https://sentry.io",
        description="Sentry or GlitchTip base URL for fetching an issue's latest event; "
        "SENTRY_URL overrides it",
    )
    sentry_token_env: str = Field(
        default="SENTRY_AUTH_TOKEN", description="variable holding a token with event:read"
    )


class Budgets(_Section):
    """Hard limits the runner enforces on the agent."""

    max_turns: int = Field(default=40, ge=1)
    max_tokens: int = Field(default=2_000_000, ge=1000)
    max_cost_usd: float = Field(default=5.0, ge=0)
    timeout_minutes: float = Field(default=30.0, gt=0, description="wall time of the agent")


class PublishConfig(_Section):
    """How results are published."""

    branch_prefix: str = Field(default="astraforge", pattern=r"^[A-Za-z0-9._/-]+$")
    draft: bool = Field(default=False, description="open pull requests as drafts")
    labels: list[str] = Field(
        default_factory=lambda: ["astraforge"], description="labels added to the pull request"
    )
    assignees: list[str] = Field(default_factory=list, description="assigned to a new PR")
    reviewers: list[str] = Field(default_factory=list, description="asked to review a new PR")
    author_name: str = Field(default="AstraForge", description="commit author and committer")
    author_email: str = Field(default="astraforge@users.noreply.github.com")


class Config(_Section):
    """`.astraforge.yml`: every field is optional."""

    trigger: TriggerConfig = Field(default_factory=TriggerConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    engine: Literal["builtin"] = Field(default="builtin", description="the agent engine")
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    setup: list[str] = Field(
        default_factory=list, description="commands run in the sandbox before the agent starts"
    )
    test_command: str | None = Field(
        default=None, description="how to run the tests; detected when unset"
    )
    context: ContextConfig = Field(default_factory=ContextConfig)
    budgets: Budgets = Field(default_factory=Budgets)
    publish: PublishConfig = Field(default_factory=PublishConfig)
    policy: str | None = Field(
        default=None,
        description="policy file in the repository, read "
        "from the default branch; the bundled default when unset",
    )
    dry_run: bool = Field(default=False, description="do everything except write to the forge")


# Environment variables (action inputs and GitLab template inputs pass through these).
ENV_FIELDS: dict[str, str] = {
    "ASTRAFORGE_TRIGGER_LABEL": "trigger.label",
    "ASTRAFORGE_TRIGGER_PHRASE": "trigger.command",
    "ASTRAFORGE_MODEL": "model.name",
    "OPENAI_BASE_URL": "model.base_url",
    "ASTRAFORGE_OPENAI_BASE_URL": "model.base_url",
    "ASTRAFORGE_BACKEND": "sandbox.backend",
    "ASTRAFORGE_SANDBOX_IMAGE": "sandbox.image",
    "ASTRAFORGE_MAX_TURNS": "budgets.max_turns",
    "ASTRAFORGE_MAX_COST_USD": "budgets.max_cost_usd",
    "ASTRAFORGE_TIMEOUT_MINUTES": "budgets.timeout_minutes",
    "ASTRAFORGE_DRAFT": "publish.draft",
    "ASTRAFORGE_DRY_RUN": "dry_run",
}
CONFIG_FILE_ENV = "ASTRAFORGE_CONFIG_FILE"


def _set_path(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    target[leaf] = value


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()[: MAX_CONFIG_BYTES + 1]
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read the configuration file ({exc.strerror})",
            "pass an existing file with --config or ASTRAFORGE_CONFIG_FILE",
        ) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: configuration file is larger than 1 MiB")
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8", "save the file as UTF-8") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}", "fix the YAML syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the configuration must be a mapping, got {type(data).__name__}")
    return data


def env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for name, dotted in ENV_FIELDS.items():
        value = env.get(name, "").strip()
        if value:
            _set_path(overrides, dotted, value)
    return overrides


def validate(data: Mapping[str, Any], origin: str) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{origin}: {where}: {first['msg']}{more}") from None


def load(
    repo: Path | None = None,
    *,
    file: Path | None = None,
    env: Mapping[str, str] | None = None,
    cli: Mapping[str, Any] | None = None,
) -> Config:
    """Build the configuration from defaults, the repository's file, the environment and flags.

    ``cli`` maps dotted field names (``"model.name"``) to values; None values are ignored.
    """
    env = env if env is not None else {}
    origin = "defaults"
    data: dict[str, Any] = {}
    named = file or (Path(env[CONFIG_FILE_ENV]) if env.get(CONFIG_FILE_ENV) else None)
    if named is not None:
        if repo is not None and not named.is_absolute():
            named = repo / named
        if not named.is_file():
            raise ConfigError(
                f"{named}: configuration file not found",
                "create it (`astraforge config schema` lists the fields) or drop the option",
            )
        data, origin = read_file(named), str(named)
    elif repo is not None:
        found = next((repo / n for n in CONFIG_FILES if (repo / n).is_file()), None)
        if found is not None:
            data, origin = read_file(found), str(found)
    validate(data, origin)  # name the file when the file itself is wrong
    data = _merge(data, env_overrides(env))
    validate(data, f"{origin} + environment")
    flags: dict[str, Any] = {}
    for dotted, value in (cli or {}).items():
        if value is not None:
            _set_path(flags, dotted, value)
    return validate(_merge(data, flags), f"{origin} + environment + flags")


def json_schema() -> str:
    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "AstraForge configuration (.astraforge.yml)"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
