"""A persistent shell session inside a sandbox, over any byte transport.

One long-lived ``/bin/sh`` is the sandbox's main process and reads commands on stdin. Each
command runs in a forked subshell (no exec on the way), so a command's ``exit`` or crash
never ends the session; the working directory and exported variables carry over through a
state file. When the command ends, the shell kills every other process in the sandbox
(``kill -KILL -1``, repeated until none is left), so nothing a command starts outlives it,
not even a process that called ``setsid`` or double-forked.

Output streams back to the runner, which keeps only the head and tail of each stream (the
middle is counted), so a command printing gigabytes costs no memory. The end of a command
is a line carrying a random per-command nonce on both streams: command output cannot forge
it. Timeouts are the runner's: when one passes, the backend sends the shell SIGUSR1, whose
trap kills the command; no watchdog process runs per command.
"""

from __future__ import annotations

import secrets
import shlex
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from astraforge.errors import SandboxError

STDOUT, STDERR = 1, 2
AF = "/tmp/.af"  # noqa: S108 - inside the sandbox, on its private tmpfs
GRACE = 15.0  # seconds to wait for a killed command's end marker

BOOTSTRAP = f"""\
umask 022
AF={AF}
mkdir -p $AF && chmod 700 $AF && cd "$AF_WORKSPACE" && pwd > $AF/cwd && : > $AF/env || exit 90
__af_nl=$(printf '\\nx'); __af_nl=${{__af_nl%x}}
trap 'kill -KILL $__af_pid 2>/dev/null; __af_killed=1' USR1
__af_run() {{
  __af_killed=
  (
    read -r __af_c < $AF/cwd; cd "$__af_c" 2>/dev/null || cd "$AF_WORKSPACE"
    . $AF/env
    eval "$__af_env"
    unset __af_c __af_env
    eval "$__af_cmd"
    __af_rc=$?
    unset $__af_unset
    export -p > $AF/env
    pwd > $AF/cwd
    exit $__af_rc
  ) </dev/null &
  __af_pid=$!
  wait $__af_pid; __af_rc=$?
  [ -n "$__af_killed" ] && {{ wait $__af_pid 2>/dev/null; __af_rc=137; }}
  while kill -KILL -1 2>/dev/null; do :; done
  __af_pid=
  __af_end "$1" $__af_rc
}}
__af_end() {{
  printf '\n__AF_END_%s %s\n' "$1" "$2"
  printf '\n__AF_END_%s %s\n' "$1" "$2" >&2
}}
__af_real() {{
  __af_r=$1; __af_q=$AF_WORKSPACE; __af_s=${{1#"$AF_WORKSPACE"}}
  while [ -n "$__af_s" ]; do
    __af_s=${{__af_s#/}}; __af_q=$__af_q/${{__af_s%%/*}}
    [ "$__af_s" = "${{__af_s#*/}}" ] && __af_s= || __af_s=${{__af_s#*/}}
    [ -L "$__af_q" ] && {{ __af_r=; break; }}
  done
  [ -n "$__af_r" ] && return 0
  __af_r=$(realpath -- "$1" 2>/dev/null) || {{ echo "$2: no such file" >&2; return 2; }}
  case "$__af_r" in "$AF_WORKSPACE"|"$AF_WORKSPACE"/*) ;;
    *) echo "$2 is a symlink leading outside the workspace; not followed" >&2; return 3;; esac
}}
__af_read() {{
  __af_real "$1" "$2" || return $?
  [ -e "$__af_r" ] || {{ echo "$2: no such file" >&2; return 2; }}
  [ -f "$__af_r" ] || {{ echo "$2 is not a regular file" >&2; return 4; }}
  cat -- "$__af_r" </dev/null
}}
__af_write() {{
  __af_d=${{1%/*}}; __af_p=$__af_d
  while [ ! -e "$__af_p" ] && [ ! -L "$__af_p" ]; do __af_p=${{__af_p%/*}}; done
  __af_real "$__af_p" "$2" || return $?
  [ -d "$__af_d" ] || mkdir -p -- "$__af_d" </dev/null || return 3
  __af_real "$__af_d" "$2" || return 3
  __af_t="$__af_r/${{1##*/}}"
  if [ -L "$__af_t" ]; then __af_real "$__af_t" "$2" || return $?; __af_t=$__af_r; fi
  [ -e "$__af_t" ] && [ ! -f "$__af_t" ] && {{ echo "$2 is not a regular file" >&2; return 4; }}
  base64 -d > "$__af_t"
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

    def data(self) -> bytes:
        """Everything kept, as bytes (whole when not truncated)."""
        return bytes(self.head + self.tail)

    def text(self) -> str:
        if not self.truncated:
            return self.data().decode("utf-8", "replace")
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


@dataclass(frozen=True)
class Raw:
    """A command's result: stdout as text (the middle marked when cut) and as bytes."""

    exit_code: int
    stdout: str
    data: bytes  # stdout's bytes; whole unless ``truncated``
    stderr: str
    truncated: bool
    duration: float
    timed_out: bool


class ShellSession:
    """The command protocol; a backend supplies ``send`` (bytes to the shell's stdin),
    ``interrupt`` (deliver SIGUSR1 to the shell) and feeds what the shell prints."""

    def __init__(
        self,
        send: Callable[[bytes], None],
        interrupt: Callable[[], None],
        output_limit: int,
        workspace: str,
    ) -> None:
        self._send = send
        self._interrupt = interrupt
        self._limit = output_limit
        self._workspace = workspace
        self._cond = threading.Condition()
        self._watchers: dict[int, _Watcher] = {}
        self._closed = False
        self._ready = False
        self._boot = bytearray()
        self._lock = threading.Lock()  # one command at a time

    # -- called by the backend's reader ---------------------------------------------------
    def feed(self, stream: int, data: bytes) -> None:
        with self._cond:
            if not self._ready:
                self._boot += data
                if stream == STDOUT and b"__AF_READY__\n" in self._boot:
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

    @property
    def alive(self) -> bool:
        return not self._closed

    # -- used by the sandbox ----------------------------------------------------------------
    def start(self, timeout: float = 30.0, prelude: str = "") -> str:
        """Start the protocol; ``prelude`` runs first (what it prints before the shell is
        ready is returned)."""
        first = f"AF_WORKSPACE={shlex.quote(self._workspace)}\n{prelude}\n"
        self._send(first.encode() + BOOTSTRAP.encode())
        with self._cond:
            if not self._cond.wait_for(lambda: self._ready or self._closed, timeout):
                raise SandboxError("the sandbox shell did not start in time")
            if self._closed:
                raise SandboxError(
                    "the sandbox shell exited at start: "
                    + self._boot.decode(errors="replace")[-300:]
                )
            return self._boot.decode(errors="replace").split("__AF_READY__")[0]

    def run(
        self,
        cmd: str,
        timeout: float,
        env: Mapping[str, str] | None = None,
        limit: int | None = None,
    ) -> Raw:
        """Run ``cmd`` in the workspace's session; stdout is capped at ``limit`` bytes (head
        and tail), stderr at the session's output limit."""
        env = env or {}
        names = [k for k in env if k.isidentifier() and not k.startswith("__af")]
        exports = "".join(f"export {k}={shlex.quote(env[k])}\n" for k in names)
        head = (
            f"__af_cmd={shlex.quote(cmd.replace(chr(0), ''))}; __af_env={shlex.quote(exports)}; "
            f"__af_unset={shlex.quote(' '.join(names))}\n"
        )
        with self._lock:
            return self._run(lambda n: f"{head}__af_run {n}\n", cmd, timeout, limit or self._limit)

    def call(self, script: str, timeout: float, limit: int | None = None) -> Raw:
        """Run one of the session's own file operations (``script`` is built by the runner
        with every argument quoted) in the main shell itself: no fork, no saved state. It
        runs only between commands, when ``kill -1`` has left no other process that could
        race it."""
        with self._lock:
            return self._run(
                lambda n: f"{{ {script}\n}} </dev/null\n__af_end {n} $?\n",
                script,
                timeout,
                limit or self._limit,
            )

    def _run(self, build: Callable[[str], str], cmd: str, timeout: float, limit: int) -> Raw:
        nonce = secrets.token_hex(8)
        marker = f"\n__AF_END_{nonce} ".encode()
        script = build(nonce)
        watchers = {STDOUT: _Watcher(marker, limit), STDERR: _Watcher(marker, self._limit)}
        started = time.monotonic()
        with self._cond:
            if self._closed:
                raise SandboxError("the sandbox shell is gone", "start a new sandbox")
            self._watchers = watchers
        self._send(script.encode("utf-8", "surrogateescape"))
        timed_out = False

        def finished() -> bool:
            return self._closed or all(w.trailer is not None for w in watchers.values())

        with self._cond:
            done = self._cond.wait_for(finished, max(0.0, timeout))
        if not done:
            timed_out = True
            self._interrupt()
            with self._cond:
                done = self._cond.wait_for(finished, GRACE)
        with self._cond:
            self._watchers = {}
            closed = self._closed
        duration = time.monotonic() - started
        if not done or (closed and not all(w.trailer is not None for w in watchers.values())):
            raise SandboxError(
                f"the sandbox shell stopped answering during: {cmd[:80]!r}",
                "the sandbox is unusable; start a new one",
            )
        trailer = (watchers[STDOUT].trailer or b"").decode().split()
        code = int(trailer[0]) if trailer and trailer[0].lstrip("-").isdigit() else -1
        out, err = watchers[STDOUT].out, watchers[STDERR].out
        return Raw(
            exit_code=code,
            stdout=out.text(),
            data=out.data(),
            stderr=err.text(),
            truncated=out.truncated or err.truncated,
            duration=duration,
            timed_out=timed_out,
        )
