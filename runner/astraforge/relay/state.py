"""The relay's state: one claim per Sentry issue within the dedupe window, forwards per hour
per target and overall, and a durable outbox of forwards still to send.

A webhook is *admitted* in one atomic step (dedupe, rate limits, then claim and enqueue) and
answered at once; a worker sends the outbox. A relay killed and restarted resumes its
outbox, so nothing admitted is lost. SQLite (one file, any number of processes on one host)
by default; Redis for several relay instances behind a load balancer.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

Admission = Literal["queued", "deduplicated", "rate_limited"]
HOUR = 3600.0
MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class Job:
    """One admitted webhook waiting in the outbox."""

    id: str
    fingerprint: str
    route: str
    payload: dict[str, Any]
    attempts: int


class Store(Protocol):
    """The relay's shared state: claims, counters and the outbox."""

    def seen(self, fingerprint: str, window: float) -> bool: ...

    def admit(
        self,
        fingerprint: str,
        route: str,
        payload: dict[str, Any],
        *,
        window: float,
        route_limit: int,
        global_limit: int,
    ) -> Admission: ...

    def next_job(self) -> Job | None: ...

    def done(self, job: Job) -> None: ...

    def retry(self, job: Job, error: str, delay: float) -> bool: ...

    def release(self, fingerprint: str) -> None: ...

    def recovered(self) -> int: ...

    def first_time(self, digest: str, ttl: float) -> bool:
        """Remember ``digest`` for ``ttl`` seconds; whether it was new."""
        ...

    def close(self) -> None: ...


class SQLiteStore:
    """State in SQLite, for any number of processes on one host."""

    def __init__(self, path: str, recover: bool = True) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self.path = path
        db = self._db()
        db.executescript(
            """
            PRAGMA journal_mode=WAL;
            CREATE TABLE IF NOT EXISTS claims (fingerprint TEXT PRIMARY KEY, at REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS bodies (digest TEXT PRIMARY KEY, until REAL NOT NULL);
            CREATE INDEX IF NOT EXISTS bodies_until ON bodies (until);
            CREATE TABLE IF NOT EXISTS outbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT, fingerprint TEXT NOT NULL,
                route TEXT NOT NULL, payload TEXT NOT NULL, created REAL NOT NULL,
                state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
                not_before REAL NOT NULL DEFAULT 0, error TEXT);
            CREATE INDEX IF NOT EXISTS outbox_route ON outbox (route, created);
            CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state, not_before);
            """
        )
        # A send cut short by a crash: send it again (at least once beats never). Only the
        # first process of a relay does this, before its workers start sending.
        self._recovered = 0
        if recover:
            self._recovered = db.execute(
                "UPDATE outbox SET state='pending' WHERE state='sending'"
            ).rowcount
        db.commit()

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA busy_timeout=30000")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def recovered(self) -> int:
        return self._recovered

    def first_time(self, digest: str, ttl: float) -> bool:
        now = time.time()
        db = self._db()
        with contextlib.closing(db.cursor()) as cursor:
            cursor.execute("BEGIN IMMEDIATE")
            try:
                cursor.execute("DELETE FROM bodies WHERE until < ?", (now,))
                cursor.execute(
                    "INSERT OR IGNORE INTO bodies (digest, until) VALUES (?, ?)",
                    (digest, now + ttl),
                )
                new = cursor.rowcount == 1
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
        return new

    def seen(self, fingerprint: str, window: float) -> bool:
        """A cheap read before the atomic admit: most of a storm is repeats."""
        row = (
            self._db()
            .execute("SELECT at FROM claims WHERE fingerprint=?", (fingerprint,))
            .fetchone()
        )
        return row is not None and time.time() - row[0] < window

    def admit(
        self,
        fingerprint: str,
        route: str,
        payload: dict[str, Any],
        *,
        window: float,
        route_limit: int,
        global_limit: int,
    ) -> Admission:
        db = self._db()
        now = time.time()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT at FROM claims WHERE fingerprint=?", (fingerprint,)).fetchone()
            if row is not None and now - row[0] < window:
                db.execute("ROLLBACK")
                return "deduplicated"
            per_route = db.execute(
                "SELECT COUNT(*) FROM outbox WHERE route=? AND created>?", (route, now - HOUR)
            ).fetchone()[0]
            overall = db.execute(
                "SELECT COUNT(*) FROM outbox WHERE created>?", (now - HOUR,)
            ).fetchone()[0]
            if per_route >= route_limit or overall >= global_limit:
                db.execute("ROLLBACK")
                return "rate_limited"
            db.execute("INSERT OR REPLACE INTO claims VALUES (?, ?)", (fingerprint, now))
            db.execute(
                "INSERT INTO outbox (fingerprint, route, payload, created) VALUES (?, ?, ?, ?)",
                (fingerprint, route, json.dumps(payload), now),
            )
            db.execute("COMMIT")
            return "queued"
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def next_job(self) -> Job | None:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        row = db.execute(
            "SELECT id, fingerprint, route, payload, attempts FROM outbox "
            "WHERE state='pending' AND not_before<=? ORDER BY id LIMIT 1",
            (time.time(),),
        ).fetchone()
        if row is None:
            db.execute("COMMIT")
            return None
        db.execute("UPDATE outbox SET state='sending', attempts=attempts+1 WHERE id=?", (row[0],))
        db.execute("COMMIT")
        return Job(str(row[0]), row[1], row[2], json.loads(row[3]), row[4] + 1)

    def done(self, job: Job) -> None:
        self._db().execute("UPDATE outbox SET state='sent', error=NULL WHERE id=?", (int(job.id),))

    def retry(self, job: Job, error: str, delay: float) -> bool:
        failed = job.attempts >= MAX_ATTEMPTS
        self._db().execute(
            "UPDATE outbox SET state=?, error=?, not_before=? WHERE id=?",
            ("failed" if failed else "pending", error[:500], time.time() + delay, int(job.id)),
        )
        return not failed

    def release(self, fingerprint: str) -> None:
        self._db().execute("DELETE FROM claims WHERE fingerprint=?", (fingerprint,))

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


# Redis: claims are keys with a TTL, limits are per-hour counters, the outbox is a stream
# with a consumer group, so several relays share the work and a dead relay's unacknowledged
# entries are claimed by the others.
_ADMIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 'deduplicated' end
local route = tonumber(redis.call('GET', KEYS[2]) or '0')
local overall = tonumber(redis.call('GET', KEYS[3]) or '0')
if route >= tonumber(ARGV[2]) or overall >= tonumber(ARGV[3]) then return 'rate_limited' end
redis.call('SET', KEYS[1], ARGV[5], 'EX', ARGV[1])
redis.call('INCR', KEYS[2]); redis.call('EXPIRE', KEYS[2], 7200)
redis.call('INCR', KEYS[3]); redis.call('EXPIRE', KEYS[3], 7200)
redis.call('XADD', KEYS[4], '*', 'job', ARGV[4])
return 'queued'
"""
STREAM, GROUP, DELAYED = "astraforge:outbox", "relays", "astraforge:delayed"
# A failed send leaves the stream and waits in a sorted set until its retry time.
_RETRY = """
redis.call('XACK', KEYS[1], ARGV[4], ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return 1
"""
# Jobs whose retry time has come go back into the stream.
_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, 16)
for _, job in ipairs(due) do
  redis.call('ZREM', KEYS[2], job)
  redis.call('XADD', KEYS[1], '*', 'job', job)
end
return #due
"""


class RedisStore:
    """State in Redis, shared by relays behind a load balancer."""

    def __init__(self, url: str, idle_ms: int = 60_000) -> None:
        import redis

        self._redis: Any = redis.Redis.from_url(url, decode_responses=True, socket_timeout=10)
        self._admit = self._redis.register_script(_ADMIT)
        self._retry = self._redis.register_script(_RETRY)
        self._due = self._redis.register_script(_DUE)
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        self.idle_ms = idle_ms
        try:
            self._redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def recovered(self) -> int:
        return 0

    def first_time(self, digest: str, ttl: float) -> bool:
        key = f"astraforge:body:{digest}"
        return bool(self._redis.set(key, 1, nx=True, ex=max(1, int(ttl) + 1)))

    def seen(self, fingerprint: str, window: float) -> bool:
        return bool(self._redis.exists(f"astraforge:claim:{fingerprint}"))

    def admit(
        self,
        fingerprint: str,
        route: str,
        payload: dict[str, Any],
        *,
        window: float,
        route_limit: int,
        global_limit: int,
    ) -> Admission:
        hour = int(time.time() // HOUR)
        job = json.dumps({"fingerprint": fingerprint, "route": route, "payload": payload})
        keys = [
            f"astraforge:claim:{fingerprint}",
            f"astraforge:route:{route}:{hour}",
            f"astraforge:all:{hour}",
            STREAM,
        ]
        result = self._admit(
            keys=keys, args=[int(window), route_limit, global_limit, job, time.time()]
        )
        return str(result)  # type: ignore[return-value]

    def next_job(self) -> Job | None:
        self._due(keys=[STREAM, DELAYED], args=[time.time()])
        claimed = self._redis.xautoclaim(STREAM, GROUP, self.consumer, self.idle_ms, "0-0", count=1)
        entries = claimed[1] if claimed and len(claimed) > 1 else []
        if not entries:
            read = self._redis.xreadgroup(GROUP, self.consumer, {STREAM: ">"}, count=1)
            entries = read[0][1] if read else []
        if not entries:
            return None
        entry_id, fields = entries[0]
        data = json.loads(fields["job"])
        pending = self._redis.xpending_range(STREAM, GROUP, entry_id, entry_id, 1)
        delivered = int(pending[0]["times_delivered"]) if pending else 1
        attempts = int(data.get("attempts", 0)) + delivered
        return Job(entry_id, data["fingerprint"], data["route"], data["payload"], attempts)

    def done(self, job: Job) -> None:
        self._redis.xack(STREAM, GROUP, job.id)
        self._redis.xdel(STREAM, job.id)

    def retry(self, job: Job, error: str, delay: float) -> bool:
        if job.attempts >= MAX_ATTEMPTS:
            self.done(job)
            return False
        data = {
            "fingerprint": job.fingerprint,
            "route": job.route,
            "payload": job.payload,
            "attempts": job.attempts,
            "error": error[:500],
        }
        self._retry(
            keys=[STREAM, DELAYED], args=[job.id, json.dumps(data), time.time() + delay, GROUP]
        )
        return True

    def release(self, fingerprint: str) -> None:
        self._redis.delete(f"astraforge:claim:{fingerprint}")

    def close(self) -> None:
        self._redis.close()


def open_store(backend: str, path: str, redis_url: str, recover: bool = True) -> Store:
    """The store a configuration names."""
    if backend == "redis":
        return RedisStore(redis_url)
    return SQLiteStore(path, recover)
