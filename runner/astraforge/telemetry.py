"""The runner's own crash reports, sent to Sentry when ASTRAFORGE_SENTRY_DSN is set.

Only crashes (unexpected exceptions) are reported, never the user's errors. Every string of
a report goes through the redactor (the run's secret values and token shapes) in
``before_send``, local variables are not collected, and reports carry the task fingerprint.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from typing import Any

from astraforge import __version__
from astraforge.redact import Redactor, secrets_from_env

DSN_VARIABLE = "ASTRAFORGE_SENTRY_DSN"
_state: dict[str, Any] = {"on": False}


def init(env: Mapping[str, str]) -> bool:
    """Report the runner's own crashes to ASTRAFORGE_SENTRY_DSN, scrubbed."""
    dsn = env.get(DSN_VARIABLE, "").strip()
    if not dsn:
        return False
    import sentry_sdk

    redactor = Redactor(secrets_from_env({k: v for k, v in env.items() if k != DSN_VARIABLE}))

    def before_send(event: Any, hint: Any) -> Any:
        return redactor.scrub(event)

    sentry_sdk.init(
        dsn=dsn,
        release=f"astraforge@{__version__}",
        environment=env.get("ASTRAFORGE_ENVIRONMENT", "ci"),
        before_send=before_send,
        default_integrations=False,
        include_local_variables=False,
        send_default_pii=False,
        max_breadcrumbs=0,
    )
    # the command that crashed, as one string: Sentry cuts lists after 10 items
    sentry_sdk.set_extra("argv", shlex.join(sys.argv))
    _state["on"] = True
    return True


def tag_task(fingerprint: str) -> None:
    """Tag crash reports with the task's fingerprint."""
    if _state["on"]:
        import sentry_sdk

        sentry_sdk.set_tag("astraforge.fingerprint", fingerprint)


def report_crash(exc: BaseException) -> None:
    """Report one crash, if telemetry is on."""
    if _state["on"]:
        import sentry_sdk

        sentry_sdk.capture_exception(exc)
        sentry_sdk.flush(timeout=10)
