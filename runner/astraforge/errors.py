"""One error hierarchy: every failure a user can fix carries an exit code and a remedy.

The CLI prints ``error: <message> (fix: <remediation>)`` on one line and exits with
``exit_code``; the traceback is shown only with ``-v``.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError


class AstraForgeError(Exception):
    """Base of every error the runner reports to a user."""

    exit_code = 1
    default_remediation = "re-run with -v for details"

    def __init__(self, message: str, remediation: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.remediation = remediation or self.default_remediation

    def one_line(self) -> str:
        text = f"{self.message} (fix: {self.remediation})"
        return " ".join(text.split())

    def __str__(self) -> str:
        return self.one_line()


class UsageError(AstraForgeError):
    """A bad flag or a missing file."""

    exit_code = 2
    default_remediation = "see `astraforge --help`"


class ConfigError(AstraForgeError):
    """The configuration or the policy is wrong."""

    exit_code = 3
    default_remediation = "correct the configuration; `astraforge config schema` lists every field"


class PayloadError(AstraForgeError):
    """The event payload is unreadable, malformed, or not an event AstraForge handles."""

    exit_code = 4
    default_remediation = "pass the webhook payload exactly as the platform sent it"


class UnsupportedEventError(PayloadError):
    """A valid payload of an event AstraForge does not act on."""

    default_remediation = (
        "trigger AstraForge on issues, issue and PR comments, reviews, failed workflow runs, "
        "repository_dispatch, workflow_dispatch, GitLab issue/note/pipeline hooks or pipeline "
        "triggers, or Sentry/GlitchTip alerts"
    )


class ForgeError(AstraForgeError):
    """The forge refused or could not be reached."""

    exit_code = 5
    default_remediation = "check the forge token and its permissions"


class SandboxError(AstraForgeError):
    """The sandbox could not be created or stopped answering."""

    exit_code = 6
    default_remediation = (
        "check that a Docker daemon (`docker info`) or bubblewrap (`bwrap --version`) is "
        "available, or choose the other backend with --backend"
    )


class GatewayError(SandboxError):
    """The gateway (the sandbox's model endpoint and egress proxy) could not serve."""

    default_remediation = (
        "run with -v for the details; `astraforge sandbox run` shows the gateway alone"
    )


class ModelError(AstraForgeError):
    """The model API refused or kept failing."""

    exit_code = 7
    default_remediation = "check the model name, base URL and API key"


class PolicyError(AstraForgeError):
    """The policy blocked the change."""

    exit_code = 8
    default_remediation = "review the policy file; the report lists the rule that blocked the run"


class EngineError(AstraForgeError):
    """A coding-agent engine cannot run in this sandbox, or ended with an error of its own."""

    exit_code = 9
    default_remediation = (
        "read the engine's lines in trajectory.jsonl; `astraforge engines list` shows what "
        "each engine needs"
    )


def _field_names(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names allowed at ``loc`` (for "did you mean")."""
    current: Any = model
    for part in loc[:-1]:
        fields = getattr(current, "model_fields", {})
        if part not in fields:
            return []
        current = fields[part].annotation
    return list(getattr(current, "model_fields", {}))


def pydantic_error(exc: ValidationError, origin: str, model: type[BaseModel]) -> str:
    """One line naming the first problem of a file or setting, with "did you mean" for a
    misspelt key: ``origin: field.path: message``."""
    first = exc.errors()[0]
    loc = tuple(first["loc"])
    where = ".".join(str(p) for p in loc) or "(top level)"
    message = first["msg"]
    if first["type"] == "extra_forbidden" and loc:
        close = difflib.get_close_matches(str(loc[-1]), _field_names(model, loc), n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{origin}: {where}: {message}{more}"
