"""The latest event of a Sentry (or GlitchTip) issue, for payloads that carry no frames.

``GET /api/0/organizations/{org}/issues/{issue_id}/events/latest/`` when the organization is
known, else ``GET /api/0/issues/{issue_id}/events/latest/`` (the form GlitchTip implements);
``Authorization: Bearer <token>`` with the ``event:read`` scope.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from astraforge.errors import AstraForgeError

MAX_BYTES = 8 * 1024 * 1024
TIMEOUT = 20.0


class FetchError(AstraForgeError):
    """The event could not be fetched; the run goes on without its frames."""


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to the same scheme and host: the token goes nowhere else."""

    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> Any:
        old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        if (old.scheme, old.netloc) != (new.scheme, new.netloc):
            raise FetchError(
                f"Sentry redirected to another host ({new.netloc}); the token is not sent there",
                "set context.sentry_url (SENTRY_URL) to the final address",
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SameHostRedirects)


def latest_event_urls(base_url: str, issue_id: str, organization: str | None) -> list[str]:
    """Where an issue's latest event is: org-scoped first, then unscoped."""
    base = base_url.rstrip("/")
    issue = urllib.parse.quote(issue_id, safe="")
    urls = []
    if organization:
        org = urllib.parse.quote(organization, safe="")
        urls.append(f"{base}/api/0/organizations/{org}/issues/{issue}/events/latest/")
    urls.append(f"{base}/api/0/issues/{issue}/events/latest/")
    return urls


def fetch_latest_event(
    base_url: str, token: str, issue_id: str, organization: str | None = None
) -> dict[str, Any]:
    """The latest event of a Sentry (or GlitchTip) issue."""
    last = ""
    for url in latest_event_urls(base_url, issue_id, organization):
        request = urllib.request.Request(  # noqa: S310 - the configured Sentry URL
            url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
        )
        try:
            with _OPENER.open(request, timeout=TIMEOUT) as response:
                data = response.read(MAX_BYTES + 1)
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise FetchError(
                    f"Sentry refused the token (HTTP {exc.code}) fetching issue {issue_id}",
                    "give the token the event:read scope",
                ) from None
            last = f"HTTP {exc.code}"
            if exc.code == 404:
                continue
            break
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise FetchError(
                f"cannot reach Sentry at {base_url} ({reason})",
                "check context.sentry_url (self-hosted Sentry or GlitchTip)",
            ) from None
        if len(data) > MAX_BYTES:
            raise FetchError(f"the latest event of issue {issue_id} is larger than 8 MiB")
        try:
            event = json.loads(data)
        except json.JSONDecodeError:
            raise FetchError(f"Sentry answered {url} with something other than JSON") from None
        if not isinstance(event, dict):
            raise FetchError(f"Sentry answered {url} with a {type(event).__name__}, not an event")
        return event
    raise FetchError(f"issue {issue_id} has no latest event at {base_url} ({last})")
