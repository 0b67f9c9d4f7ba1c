"""The policy file: who may trigger, what the agent may do, and what may be pushed.

YAML validated by pydantic (unknown keys are errors). The bundled default is
``policies/default.yml``; a repository points ``policy:`` in .astraforge.yml at its own file,
which is read from the base branch (the commit checked out), never from an issue or a PR head.
"""

from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from astraforge import resources
from astraforge.errors import ConfigError, pydantic_error
from astraforge.gateway.allow import HostList

# Permission levels, weakest first. GitLab's access levels map onto them (forges/gitlab.py).
PERMISSIONS = ("none", "read", "triage", "write", "maintain", "admin")


def at_least(permission: str, required: str) -> bool:
    """Whether ``permission`` is ``required`` or stronger."""
    return PERMISSIONS.index(permission) >= PERMISSIONS.index(required)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TriggerPolicy(_Section):
    """Who may start a run."""

    permission: Literal["admin", "maintain", "write"] = Field(
        default="write", description="least repository permission a requester needs"
    )
    allowed_users: list[str] = Field(
        default_factory=list,
        description="logins allowed to trigger; empty means anyone with the permission",
    )
    allowed_bots: list[str] = Field(
        default_factory=list,
        description="exact bot logins (e.g. `renovate[bot]`) allowed to trigger; other "
        "`[bot]` logins never do",
    )
    denied_users: list[str] = Field(default_factory=list, description="logins that never trigger")

    def refuse(self, login: str, is_bot: bool) -> str | None:
        """Why these lists refuse ``login``, or None (the permission is checked apart)."""
        if login.lower() in {d.lower() for d in self.denied_users}:
            return f"{login!r} is on triggers.denied_users"
        if is_bot or login.endswith("[bot]"):
            if login not in self.allowed_bots:
                return f"bot {login!r} is not on the exact list triggers.allowed_bots"
            return None
        if self.allowed_users and login.lower() not in {u.lower() for u in self.allowed_users}:
            return f"{login!r} is not on triggers.allowed_users"
        return None


class SandboxPolicy(_Section):
    """Limits of the sandbox every agent command runs in."""

    network: Literal["none", "setup-only", "allowlist"] = Field(
        default="none",
        description="`setup-only`: network for setup commands, never the agent; `allowlist`: "
        "HTTP(S) through the gateway's proxy to the hosts in `allow` only, for the whole run",
    )
    allow: HostList = Field(
        default_factory=list,
        description="with `allowlist`: host, host:port or *.domain entries; a repository's "
        "policy may only narrow the trusted list",
    )
    cpus: float = Field(default=2.0, gt=0)
    memory_mb: int = Field(default=2048, ge=64)

    pids: int = Field(default=512, ge=16)
    disk_mb: int = Field(default=4096, ge=16, description="size cap of the workspace")
    command_timeout_seconds: float = Field(default=600.0, gt=0)
    setup_timeout_seconds: float = Field(default=900.0, gt=0)


class CommandRule(_Section):
    """A pattern of shell commands, and what the model is told when it matches."""

    pattern: str = Field(description="Python regular expression searched in the command line")
    reason: str = Field(default="", description="told to the model when it is refused")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @cached_property
    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern)


class CommandPolicy(_Section):
    """Which shell commands the agent may run."""

    allow: list[CommandRule] = Field(
        default_factory=list, description="when set, only commands matching one of these run"
    )
    deny: list[CommandRule] = Field(default_factory=list, description="commands refused")


class PathPolicy(_Section):
    """Which paths the agent may not change or read."""

    protected: list[str] = Field(default_factory=list, description="globs the agent may not change")
    protect_lockfiles: bool = Field(default=False, description="also protect `lockfiles`")
    lockfiles: list[str] = Field(default_factory=list)
    read_denied: list[str] = Field(
        default_factory=list,
        description="globs never copied into the sandbox and never read by the file tools",
    )


class DiffPolicy(_Section):
    """Limits on what a change may be."""

    max_files: int = Field(default=20, ge=1)
    max_changed_lines: int = Field(default=500, ge=1)
    allow_binary: bool = False
    allow_submodules: bool = False


class BudgetPolicy(_Section):
    """Ceilings: the configuration's budgets are lowered to these."""

    max_turns: int = Field(default=60, ge=1)
    max_tokens: int = Field(default=4_000_000, ge=1000)
    max_cost_usd: float = Field(default=10.0, ge=0)
    timeout_minutes: float = Field(default=60.0, gt=0)


class SecretPolicy(_Section):
    """How changes are scanned for secrets."""

    scan: bool = Field(default=True, description="scan the diff, commit message and PR body")
    plugins: list[str] = Field(
        default_factory=list,
        description="detect-secrets plugin class names to run (in-process)",
    )


class Policy(_Section):
    """The whole policy file."""

    version: Literal[1] = 1
    triggers: TriggerPolicy = Field(default_factory=TriggerPolicy)
    sandbox: SandboxPolicy = Field(default_factory=SandboxPolicy)
    commands: CommandPolicy = Field(default_factory=CommandPolicy)
    paths: PathPolicy = Field(default_factory=PathPolicy)
    diff: DiffPolicy = Field(default_factory=DiffPolicy)
    budgets: BudgetPolicy = Field(default_factory=BudgetPolicy)
    secrets: SecretPolicy = Field(default_factory=SecretPolicy)


def parse(text: str, origin: str) -> Policy:
    """A policy from YAML text, or one ConfigError naming ``origin``."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{origin}: invalid YAML{where}", "fix the policy file") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{origin}: a policy must be a mapping", "start from policies/default.yml"
        )
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            pydantic_error(exc, origin, Policy), "`astraforge policy schema` lists every field"
        ) from None


def default() -> Policy:
    """The bundled default policy."""
    return parse(resources.read_text("policies", "default.yml"), "policies/default.yml")


def load_file(path: Path) -> Policy:
    """A policy file from disk."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the policy ({exc.strerror})") from None
    return parse(text, str(path))


def json_schema() -> str:
    """The JSON schema of the policy file."""
    schema = Policy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "AstraForge policy"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
