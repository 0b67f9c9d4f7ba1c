"""One error hierarchy: every failure a user can fix carries an exit code and a remedy.

The CLI prints ``error: <message> (fix: <remediation>)`` on one line and exits with
``exit_code``; the traceback is shown only with ``-v``.
"""

from __future__ import annotations


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
    exit_code = 2
    default_remediation = "see `astraforge --help`"


class ConfigError(AstraForgeError):
    exit_code = 3
    default_remediation = "correct the configuration; `astraforge config schema` lists every field"


class PayloadError(AstraForgeError):
    """The event payload is unreadable, malformed, or not an event AstraForge handles."""

    exit_code = 4
    default_remediation = "pass the webhook payload exactly as the platform sent it"


class UnsupportedEventError(PayloadError):
    default_remediation = (
        "trigger AstraForge on issues, issue comments, repository_dispatch, workflow_dispatch, "
        "GitLab issue/note hooks or pipeline triggers, or Sentry/GlitchTip alerts"
    )


class ForgeError(AstraForgeError):
    exit_code = 5
    default_remediation = "check the forge token and its permissions"


class SandboxError(AstraForgeError):
    exit_code = 6
    default_remediation = (
        "check that a Docker daemon (`docker info`) or bubblewrap (`bwrap --version`) is "
        "available, or choose the other backend with --backend"
    )


class ModelError(AstraForgeError):
    exit_code = 7
    default_remediation = "check the model name, base URL and API key"


class PolicyError(AstraForgeError):
    exit_code = 8
    default_remediation = "review the policy file; the report lists the rule that blocked the run"
