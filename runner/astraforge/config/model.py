"""The configuration's fields: what `.astraforge.yml`, the environment and flags may set.

Which of them a repository's own file may set is decided in :mod:`astraforge.config.load`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from astraforge.events.commands import CommandSyntax
from astraforge.gateway.allow import HostList
from astraforge.sandbox.config import BwrapConfig, DockerConfig, SandboxSpec

if TYPE_CHECKING:
    from astraforge.policy.model import SandboxPolicy

INSTRUCTION_FILES = (
    "AGENTS.md",
    "CLAUDE.md",
    ".github/copilot-instructions.md",
    "CONTRIBUTING.md",
)


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
    api: Literal["openai", "azure", "anthropic"] = Field(
        default="openai",
        description="`azure` for Azure OpenAI, `anthropic` for Anthropic's Messages API; "
        "`openai` for every other API",
    )
    base_url: str | None = Field(
        default=None,
        description="API base URL (the resource endpoint on Azure); default OpenAI's, "
        "or OPENAI_BASE_URL",
    )
    api_version: str = Field(default="2024-10-21", description="Azure OpenAI API version")
    responses: bool | None = Field(
        default=None,
        description="the upstream serves OpenAI's Responses API itself (default: OpenAI's own "
        "API and Azure); otherwise the gateway translates Responses calls (trusted)",
    )
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
    extra_headers: dict[str, str] = Field(
        default_factory=dict, description="headers sent with every model request (trusted)"
    )
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
    allowed: list[str] = Field(
        default_factory=list,
        description="model names a repository's own file may choose (trusted; "
        "ASTRAFORGE_ALLOWED_MODELS); a repository cannot pick a model otherwise",
    )

    def price(self) -> Price | None:
        return self.prices.get(self.name)


class SandboxSettings(_Section):
    """Where the agent's commands run."""

    backend: Literal["docker", "bwrap"] = "docker"
    image: str = Field(default="python:3.12-slim", description="sandbox image (docker backend)")
    include: list[str] = Field(
        default_factory=list,
        description="untracked paths of the checkout also copied into the sandbox (trusted; "
        "ASTRAFORGE_SANDBOX_INCLUDE); only files git tracks are copied otherwise",
    )
    network: Literal["none", "setup-only", "allowlist"] | None = Field(
        default=None,
        description="the sandbox's network, over the trusted policy's (trusted; "
        "ASTRAFORGE_NETWORK): `allowlist` lets HTTP(S) out through the gateway to `allow` only",
    )
    allow: HostList = Field(
        default_factory=list,
        description="hosts the gateway's proxy lets the sandbox reach: host, host:port, "
        "*.domain (trusted; ASTRAFORGE_ALLOW); a repository's policy may only narrow it",
    )
    allow_private: list[str] = Field(
        default_factory=list,
        description="loopback or private addresses an allowed name may resolve to (trusted; "
        "ASTRAFORGE_ALLOW_PRIVATE); refused otherwise",
    )

    def spec(
        self, limits: SandboxPolicy | None = None, exclude: list[str] | None = None
    ) -> SandboxSpec:
        """The sandbox configuration, with the policy's limits when given."""
        common: dict[str, object] = {"exclude": list(exclude or []), "include": self.include}
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


PersonalData = Literal["ip_address", "user_agent", "cookies", "auth_headers", "email"]


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
    personal_data: list[PersonalData] = Field(
        default_factory=list,
        description="personal data from alerts that may reach the model (trusted; "
        "ASTRAFORGE_PERSONAL_DATA); by default none does",
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
    commit: Literal["auto", "api", "push"] = Field(
        default="auto",
        description="how the fix commit reaches the branch. auto: through GitHub's API on "
        "GitHub.com and GHES (GitHub signs it and shows it verified; the author above becomes "
        "a Co-authored-by trailer), git push elsewhere or where the API cannot update a branch "
        "conditionally; api: the API only; push: git push, with the author above",
    )


class FollowUpConfig(_Section):
    """Comments and reviews on a pull/merge request continue its branch."""

    any_pr: bool = Field(
        default=False,
        description="also continue same-repository PRs AstraForge did not open (trusted)",
    )


class CIFixConfig(_Section):
    """Failed CI runs on AstraForge's pull/merge requests are fixed on their branch."""

    max_rounds: int = Field(
        default=2, ge=0, description="automatic CI fix attempts per PR, then it stops (trusted)"
    )
    workflows: list[str] = Field(
        default_factory=list,
        description="workflow (GitHub) or pipeline names whose failures are fixed; empty: "
        "every failure the CI integration forwards (trusted)",
    )
    default_branch: bool = Field(
        default=False,
        description="fix failures on the default branch too, with a new PR per workflow and "
        "commit (trusted)",
    )
    log_tokens: int = Field(
        default=3000, ge=200, le=50_000, description="tokens kept of each failed job's log"
    )


EngineName = Literal[
    "builtin", "codex", "claude", "gemini", "opencode", "kilo", "qwen", "vibe", "aider"
]


class Config(_Section):
    """`.astraforge.yml`: every field is optional."""

    trigger: TriggerConfig = Field(default_factory=TriggerConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    engine: EngineName = Field(
        default="builtin",
        description="the agent engine: the built-in tool loop, or a coding-agent CLI run in "
        "the sandbox through the gateway (`astraforge engines list`)",
    )
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
    follow_up: FollowUpConfig = Field(default_factory=FollowUpConfig)
    ci_fix: CIFixConfig = Field(default_factory=CIFixConfig)
    policy: str | None = Field(
        default=None,
        description="policy file in the repository, read from the default branch; it can only "
        "tighten the trusted policy",
    )
    base_policy: str | None = Field(
        default=None,
        description="the trusted policy file that a repository's policy can only tighten "
        "(trusted; ASTRAFORGE_POLICY_FILE); the bundled default when unset",
    )
    dry_run: bool = Field(default=False, description="do everything except write to the forge")
    on_unverified: Literal["draft", "block"] = Field(
        default="draft",
        description="a change the runner's own tests did not pass: open a draft PR with a "
        "warning, or publish nothing (trusted; ASTRAFORGE_ON_UNVERIFIED)",
    )

    _warnings: list[str] = PrivateAttr(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        """Settings of the repository's file that were ignored, one line each."""
        return self._warnings


def json_schema() -> str:
    """The JSON schema of .astraforge.yml."""
    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "AstraForge configuration (.astraforge.yml)"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
