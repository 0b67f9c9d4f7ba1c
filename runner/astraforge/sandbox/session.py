"""A persistent shell session inside a sandbox, over any byte transport.

One long-lived ``/bin/sh`` reads commands on stdin. Each command runs in its own process
group (``setsid``) under a watchdog that kills the whole group at its timeout, so the
session survives; processes a command leaves in the background end with it, so that
neither a fork bomb nor a stray server outlives its command. The working directory and
exported variables carry over between commands through a state file. Output streams back
to the runner, which keeps only the head and tail of each stream (the middle is counted),
so a command printing gigabytes costs no memory.
"""

from __future__ import annotations

import secrets
import shlex
import threading
import time
from collections.abc import Callable, Mapping

from astraforge.errors import SandboxError
from astraforge.sandbox.base import ExecResult

STDOUT, STDERR = 1, 2
AF = "/tmp/.af"  # noqa: S108 - inside the sandbox, on its private tmpfs

BOOTSTRAP = f"""\
umask 022
mkdir -p {AF} && chmod 700 {AF}
SETSID=$(command -v setsid || true)
cd "$AF_WORKSPACE" && pwd > {AF}/cwd && : > {AF}/env
cat > {AF}/wrap <<'__AF_WRAP__'
read -r __af_cwd < {AF}/cwd; cd "$__af_cwd"
. {AF}/env
__af_c=$AF_CMD; __af_e=$AF_ENV; __af_u=$AF_UNSET; unset AF_CMD AF_ENV AF_UNSET __af_cwd
eval "$__af_e"
eval "$__af_c"
__af_rc=$?
unset $__af_u
export -p > {AF}/env
pwd > {AF}/cwd
exit $__af_rc
__AF_WRAP__
__af_run() {{
  AF_CMD=$__af_cmd AF_ENV=$__af_env AF_UNSET=$__af_unset $SETSID /bin/sh {AF}/wrap </dev/null &
  __af_pid=$!
  ( trap 'kill $__af_s 2>/dev/null; exit 0' TERM
    sleep "$1" & __af_s=$!
    wait $__af_s && {{ : > {AF}/timedout
      kill -KILL -$__af_pid 2>/dev/null || kill -KILL $__af_pid; }}
  ) </dev/null >/dev/null 2>&1 &
  __af_wd=$!
  wait $__af_pid; __af_rc=$?
  kill -KILL -$__af_pid 2>/dev/null; kill -KILL -$__af_pid 2>/dev/null
  kill $__af_wd 2>/dev/null; wait $__af_wd 2>/dev/null
  __af_to=F; [ -f {AF}/timedout ] && {{ __af_to=T; rm -f {AF}/timedout; }}
  printf '\\n__AF_END_%s %s %s\\n' "$2" "$__af_rc" "$__af_to"
  printf '\\n__AF_END_%s %s %s\\n' "$2" "$__af_rc" "$__af_to" >&2
}}
printf '\\n__AF_READY__\\n'
"""


class Capped:
    """Keeps the first and last ``limit // 2`` bytes of a stream and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.half = max(1, limit // 2)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, data: bytes | bytearray) -> None:
        self.total += len(data)
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > self.half:
                del self.tail[: len(self.tail) - self.half]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head) + len(self.tail)

    def text(self) -> str:
        if not self.truncated:
            return (self.head + self.tail).decode("utf-8", "replace")
        dropped = self.total - len(self.head) - len(self.tail)
        return (
            self.head.decode("utf-8", "replace")
            + f"\n[... {dropped} bytes omitted by AstraForge ...]\n"
            + self.tail.decode("utf-8", "replace")
        )


class _Watcher:
    """Feeds one stream into a Capped buffer until the end marker line arrives."""

    def __init__(self, marker: bytes, limit: int) -> None:
        self.marker = marker
        self.out = Capped(limit)
        self.window = bytearray()
        self.trailer: bytes | None = None

    def feed(self, data: bytes) -> None:
        if self.trailer is not None:
            return
        self.window += data
        at = self.window.find(self.marker)
        if at >= 0:
            end = self.window.find(b"\n", at + len(self.marker))
            if end < 0:
                return
            self.out.add(self.window[:at])
            self.trailer = bytes(self.window[at + len(self.marker) : end])
            self.window.clear()
            return
        keep = len(self.marker) + 64
        if len(self.window) > keep:
            self.out.add(self.window[:-keep])
            del self.window[:-keep]


class ShellSession:
    """The command protocol; a backend supplies ``send`` and feeds what the shell prints."""

    def __init__(self, send: Callable[[bytes], None], output_limit: int, workspace: str) -> None:
        self._send = send
        self._limit = output_limit
        self._workspace = workspace
        self._cond = threading.Condition()
        self._watchers: dict[int, _Watcher] = {}
        self._closed = False
        self._ready = False
        self._boot = bytearray()

    # -- called by the backend's reader ---------------------------------------------------
    def feed(self, stream: int, data: bytes) -> None:
        with self._cond:
            if not self._ready:
                if stream == STDOUT:
                    self._boot += data
                    if b"__AF_READY__\n" in self._boot:
                        self._ready = True
                        self._cond.notify_all()
                return
            watcher = self._watchers.get(stream)
            if watcher is not None:
                watcher.feed(data)
                if all(w.trailer is not None for w in self._watchers.values()):
                    self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- used by the sandbox ----------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> None:
        self._send(f"AF_WORKSPACE={shlex.quote(self._workspace)}\n".encode() + BOOTSTRAP.encode())
        with self._cond:
            if not self._cond.wait_for(lambda: self._ready or self._closed, timeout):
                raise SandboxError("the sandbox shell did not start in time")
            if self._closed:
                raise SandboxError(
                    "the sandbox shell exited at start: "
                    + self._boot.decode(errors="replace")[-300:]
                )

    def run(self, cmd: str, timeout: float, env: Mapping[str, str] | None = None) -> ExecResult:
        nonce = secrets.token_hex(8)
        marker = f"\n__AF_END_{nonce} ".encode()
        exports = "".join(
            f"export {k}={shlex.quote(v)}\n" for k, v in (env or {}).items() if k.isidentifier()
        )
        names = " ".join(k for k in (env or {}) if k.isidentifier())
        body = cmd.replace("\0", "")
        script = (
            f"__af_cmd={shlex.quote(body)}; __af_env={shlex.quote(exports)}; "
            f"__af_unset={shlex.quote(names)}\n"
            f"__af_run {max(1, int(timeout + 0.999))} {nonce}\n"
        )
        watchers = {STDOUT: _Watcher(marker, self._limit), STDERR: _Watcher(marker, self._limit)}
        started = time.monotonic()
        with self._cond:
            if self._closed:
                raise SandboxError("the sandbox shell is gone", "start a new sandbox")
            self._watchers = watchers
        self._send(script.encode("utf-8", "surrogateescape"))
        grace = timeout + 15.0
        with self._cond:
            finished = self._cond.wait_for(
                lambda: self._closed or all(w.trailer is not None for w in watchers.values()), grace
            )
            self._watchers = {}
        duration = time.monotonic() - started
        if not finished or self._closed:
            raise SandboxError(
                f"the sandbox shell stopped answering during: {cmd[:80]!r}",
                "the sandbox is unusable; start a new one",
            )
        trailer = (watchers[STDOUT].trailer or b"").decode().split()
        code = int(trailer[0]) if trailer and trailer[0].lstrip("-").isdigit() else -1
        timed_out = len(trailer) > 1 and trailer[1] == "T"
        out, err = watchers[STDOUT].out, watchers[STDERR].out
        return ExecResult(
            exit_code=code,
            stdout=out.text(),
            stderr=err.text(),
            truncated=out.truncated or err.truncated,
            duration=duration,
            timed_out=timed_out,
        )
