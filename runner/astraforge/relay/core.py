"""What the relay does with one webhook, and how it sends what it admitted.

Sentry integration-platform webhooks are verified by ``Sentry-Hook-Signature`` (HMAC-SHA256
of the raw body with the client secret, compared in constant time), a fresh
``Sentry-Hook-Timestamp`` and, since that header is not signed, a fresh event time inside the
signed body (:mod:`astraforge.relay.formats`); no body is admitted twice. Unsigned senders
(Sentry's legacy webhook plugin, GlitchTip) must present the shared secret in the path or the
``X-AstraForge-Secret`` header. Each route takes only its own source's format, and alerts
only. A verified alert that would start a run (level, environment, not resolved or ignored)
and has a route is admitted once per Sentry issue within the dedupe window and the rate
limits, and queued as a GitHub ``repository_dispatch`` or a GitLab pipeline trigger carrying
AstraForge's versioned payload.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from astraforge import events
from astraforge.ci.detect import PAYLOAD_VARIABLE
from astraforge.config import TriggerConfig
from astraforge.errors import AstraForgeError, PayloadError, UnsupportedEventError
from astraforge.events import forwarded
from astraforge.relay import formats
from astraforge.relay.config import RelayConfig, Route
from astraforge.relay.state import MAX_ATTEMPTS, Job, Store
from astraforge.task import Kind, Source, Task
from astraforge.trigger import decide

KINDS = ("sentry", "sentry-legacy", "glitchtip")
DEDUPED = "this issue was forwarded within the window"
MAX_BODY = 5 * 1024 * 1024
TIMEOUT = 15.0
Log = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Verdict:
    """The relay's answer to one webhook."""

    status: int
    decision: str  # forwarded, deduplicated, rate_limited, rejected, ignored
    reason: str
    fingerprint: str | None = None
    route: str | None = None

    def body(self) -> dict[str, Any]:
        return {"decision": self.decision, "reason": self.reason, "fingerprint": self.fingerprint}


class Relay:
    """Admits webhooks (signature, dedupe, limits) and sends them on."""

    def __init__(
        self,
        config: RelayConfig,
        store: Store,
        env: Mapping[str, str],
        log: Log,
        counters: Counters | None = None,
    ):
        self.config, self.store, self.env, self.log = config, store, env, log
        self.counters = counters or Counters(config)
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._trigger = TriggerConfig(
            alert_levels=config.alert_levels, environments=config.environments
        )

    # -- receiving --------------------------------------------------------------------------
    def receive(
        self, path: str, headers: Mapping[str, str], body: bytes, verify: bool = True
    ) -> Verdict:
        verdict = self._receive(path, {k.lower(): v for k, v in headers.items()}, body, verify)
        self.counters.add("decision", verdict.decision)
        self.log(
            {
                "event": "webhook",
                "path": _safe_path(path),
                **verdict.body(),
                "status": verdict.status,
                "route": verdict.route,
            }
        )
        return verdict

    def _receive(self, path: str, headers: dict[str, str], body: bytes, verify: bool) -> Verdict:
        parts = [p for p in urllib.parse.urlsplit(path).path.split("/") if p]
        if len(parts) < 2 or parts[0] != "hooks" or parts[1] not in KINDS:
            return Verdict(
                404, "rejected", f"no such endpoint; POST to /hooks/{{{','.join(KINDS)}}}"
            )
        kind = parts[1]
        if len(body) > MAX_BODY:
            return Verdict(413, "rejected", "body larger than 5 MiB")
        if verify:
            problem = self._authenticate(kind, parts[2:], headers, body)
            if problem:
                return Verdict(401, "rejected", problem)
        try:
            payload = events.decode_payload(body, "webhook body")
            wrong = formats.refusal(kind, payload)
            if wrong:
                return Verdict(400, "rejected", f"/hooks/{kind}: {wrong}")
            if verify and kind == "sentry":
                stale = self._stale(payload)
                if stale:
                    return Verdict(401, "rejected", stale)
            quick = formats.quick_fingerprint(kind, payload)
            if quick and self.store.seen(quick, self.config.dedupe_window_seconds):
                return Verdict(202, "deduplicated", DEDUPED, quick)  # most of a storm
            source = Source.GLITCHTIP if kind == "glitchtip" else Source.SENTRY
            resource = headers.get("sentry-hook-resource")
            task = events.parse(payload, source, event_name=resource)
        except UnsupportedEventError as exc:
            return Verdict(202, "ignored", exc.message)
        except PayloadError as exc:
            return Verdict(400, "rejected", exc.message)
        if task.kind is not Kind.ALERT:
            reason = f"/hooks/{kind} forwards alerts only, not a {task.kind.value}"
            return Verdict(400, "rejected", reason, task.fingerprint)
        return self.admit(task, hashlib.sha256(body).hexdigest())

    def _stale(self, payload: dict[str, Any]) -> str | None:
        """Why a signed Sentry body is too old to act on, by the time inside it."""
        when = formats.event_time(payload)
        if when is None:
            return "the signed body holds no event time"
        if time.time() - when > self.config.max_timestamp_age_seconds:
            return "stale event: older than max_timestamp_age_seconds by its own signed time"
        return None

    def _authenticate(
        self, kind: str, rest: list[str], headers: dict[str, str], body: bytes
    ) -> str | None:
        if kind == "sentry":
            secret = self.config.secret(self.config.sentry_client_secret_env, self.env)
            signature = headers.get("sentry-hook-signature", "")
            expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            if not signature or not hmac.compare_digest(signature.strip(), expected):
                return "missing or invalid Sentry-Hook-Signature"
            try:
                stamp = float(headers.get("sentry-hook-timestamp", ""))
            except ValueError:
                return "missing Sentry-Hook-Timestamp"
            if abs(time.time() - stamp) > self.config.max_timestamp_age_seconds:
                return "stale Sentry-Hook-Timestamp"
            return None
        secret = self.config.secret(self.config.shared_secret_env, self.env)
        given = rest[0] if rest else headers.get("x-astraforge-secret", "")
        if not given or not hmac.compare_digest(given.encode(), secret.encode()):
            return "missing or wrong shared secret (path /hooks/<kind>/<secret> or header)"
        return None

    def admit(self, task: Task, digest: str | None = None) -> Verdict:
        """Forward an alert once per issue within the window and the limits; a body (by
        ``digest``) is never admitted twice."""
        if task.alert is None:
            return Verdict(202, "ignored", f"{task.event} is not an alert")
        decision = decide(task, self._trigger)
        if not decision.run:
            return Verdict(202, "ignored", decision.reason, task.fingerprint)
        route = self.config.route_for(task.alert.organization, task.alert.project)
        if route is None:
            where = f"{task.alert.organization or '?'}/{task.alert.project or '?'}"
            return Verdict(202, "ignored", f"no route for {where}", task.fingerprint)
        window = self.config.dedupe_window_seconds
        if self.store.seen(task.fingerprint, window):
            return Verdict(202, "deduplicated", DEDUPED, task.fingerprint, route.name)
        if digest and not self.store.first_time(digest, self.config.max_timestamp_age_seconds):
            return Verdict(409, "rejected", "replayed: this body was already received")
        payload = forwarded.encode(task)
        admission = self.store.admit(
            task.fingerprint,
            route.name,
            payload,
            window=self.config.dedupe_window_seconds,
            route_limit=route.max_per_hour,
            global_limit=self.config.max_per_hour,
        )
        if admission == "deduplicated":
            return Verdict(202, "deduplicated", DEDUPED, task.fingerprint, route.name)
        if admission == "rate_limited":
            return Verdict(
                202, "rate_limited", "the hourly limit is reached", task.fingerprint, route.name
            )
        return Verdict(202, "forwarded", f"queued for {route.name}", task.fingerprint, route.name)

    # -- sending ----------------------------------------------------------------------------
    def start(self) -> None:
        self._worker = threading.Thread(target=self._work, name="relay-outbox", daemon=True)
        self._worker.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout)

    def _work(self) -> None:
        while not self._stop.is_set():
            if not self.send_one():
                self._stop.wait(0.05)
        while self.send_one():  # drain what is ready before exiting
            pass

    def send_one(self) -> bool:
        job = self.store.next_job()
        if job is None:
            return False
        route = next((r for r in self.config.routes if r.name == job.route), None)
        try:
            if route is None:
                raise PermanentError(f"route {job.route} is no longer configured")
            dispatch(route, job.payload, self.env)
        except PermanentError as exc:
            final = Job(job.id, job.fingerprint, job.route, job.payload, MAX_ATTEMPTS)
            self.store.retry(final, str(exc), 0)  # marks it failed
            self.store.release(job.fingerprint)  # a later alert may try again
            self._count(job.route, "failed", job, str(exc))
            return True
        except (TransientError, OSError) as exc:
            delay = min(300.0, 2.0**job.attempts)
            again = self.store.retry(job, str(exc), delay)
            if not again:
                self.store.release(job.fingerprint)
            self._count(job.route, "retry" if again else "failed", job, str(exc))
            return True
        self.store.done(job)
        self._count(job.route, "sent", job, None)
        return True

    def drain(self, deadline: float = 60.0) -> None:
        """Send everything ready now (one-shot use)."""
        end = time.monotonic() + deadline
        while time.monotonic() < end and self.send_one():
            pass

    def _count(self, route: str, result: str, job: Job, error: str | None) -> None:
        self.counters.add("dispatch", f"{route}/{result}")
        self.log(
            {
                "event": "dispatch",
                "route": route,
                "result": result,
                "fingerprint": job.fingerprint,
                "attempt": job.attempts,
                "error": error,
            }
        )

    def metrics(self) -> str:
        lines = [
            "# HELP astraforge_relay_webhooks_total Webhooks received, by decision.",
            "# TYPE astraforge_relay_webhooks_total counter",
        ]
        for decision in DECISIONS:
            count = self.counters.get("decision", decision)
            lines.append(f'astraforge_relay_webhooks_total{{decision="{decision}"}} {count}')
        lines += [
            "# HELP astraforge_relay_dispatches_total Sends to GitHub or GitLab, by result.",
            "# TYPE astraforge_relay_dispatches_total counter",
        ]
        for route in self.config.routes:
            for result in RESULTS:
                count = self.counters.get("dispatch", f"{route.name}/{result}")
                lines.append(
                    f'astraforge_relay_dispatches_total{{route="{route.name}",'
                    f'result="{result}"}} {count}'
                )
        return "\n".join(lines) + "\n"


DECISIONS = ("forwarded", "deduplicated", "rate_limited", "rejected", "ignored")
RESULTS = ("sent", "retry", "failed")


class Counters:
    """Metric counters; shared by every worker process when made with ``shared=True`` before
    the workers fork (an array in shared memory), so /metrics answers for the whole relay."""

    def __init__(self, config: RelayConfig, shared: bool = False) -> None:
        keys = [f"decision:{d}" for d in DECISIONS] + [
            f"dispatch:{r.name}/{result}" for r in config.routes for result in RESULTS
        ]
        self._index = {key: i for i, key in enumerate(keys)}
        if shared:
            import multiprocessing

            self._values: Any = multiprocessing.Array("q", len(keys))
            self._lock: Any = self._values.get_lock()
        else:
            self._values = [0] * len(keys)
            self._lock = threading.Lock()

    def add(self, kind: str, name: str) -> None:
        index = self._index.get(f"{kind}:{name}")
        if index is not None:
            with self._lock:
                self._values[index] += 1

    def get(self, kind: str, name: str) -> int:
        index = self._index.get(f"{kind}:{name}")
        return int(self._values[index]) if index is not None else 0


class TransientError(AstraForgeError):
    """The target failed in a way a retry may fix (5xx, 429, network)."""


class PermanentError(AstraForgeError):
    """The target refused for good (bad token, missing repository)."""


def dispatch(route: Route, payload: dict[str, Any], env: Mapping[str, str]) -> None:
    """Send one forwarded payload to its target."""
    if route.github is not None:
        target = route.github
        token = env.get(target.token_env, "")
        url = f"{target.api_url.rstrip('/')}/repos/{target.repository}/dispatches"
        body = json.dumps({"event_type": target.event_type, "client_payload": payload}).encode()
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "Content-Type": "application/json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
    else:
        assert route.gitlab is not None
        lab = route.gitlab
        project = urllib.parse.quote(lab.project, safe="")
        url = f"{lab.server_url.rstrip('/')}/api/v4/projects/{project}/trigger/pipeline"
        body = urllib.parse.urlencode(
            {
                "token": env.get(lab.trigger_token_env, ""),
                "ref": lab.ref,
                f"variables[{PAYLOAD_VARIABLE}]": json.dumps(payload),
            }
        ).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode(errors="replace")
        if exc.code == 429 or exc.code >= 500:
            raise TransientError(f"HTTP {exc.code} from {url}: {detail}") from None
        raise PermanentError(f"HTTP {exc.code} from {url}: {detail}") from None
    except (urllib.error.URLError, TimeoutError) as exc:
        raise TransientError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from None


def _safe_path(path: str) -> str:
    """The request path without a shared secret in it."""
    parts = path.split("?")[0].split("/")
    return "/".join(parts[:3]) + ("/<secret>" if len(parts) > 3 else "")
