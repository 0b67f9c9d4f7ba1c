"""Progress as it happens: one log line per step of a run, a heartbeat with the budget used,
and the phases the live status comment shows.

Every line goes to ``say``, which is the CI log's (redacted and neutralized); a line may
come from the heartbeat's thread, so ``say`` must be thread-safe (the CI log is).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

Say = Callable[[str], None]
PhaseHook = Callable[[str, str], None]  # phase name, detail
UsageFn = Callable[[], dict[str, Any]]
HEARTBEAT = 30.0  # seconds


def _money(value: Any) -> str:
    return f", ${value:.4f}" if isinstance(value, int | float) else ""


class Progress:
    """What a run says while it works."""

    def __init__(
        self,
        say: Say | None = None,
        on_phase: PhaseHook | None = None,
        on_update: PhaseHook | None = None,
        heartbeat: float = HEARTBEAT,
    ) -> None:
        self._say = say or (lambda line: None)
        self._on_phase = on_phase
        self._on_update = on_update
        self._interval = heartbeat
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.current = ""

    def say(self, line: str) -> None:
        """One log line."""
        self._say(line)

    def phase(self, name: str, detail: str = "") -> None:
        """A new phase of the run (context, tests_before, agent, tests_after, policy, publish)."""
        self.current = name
        if self._on_phase is not None:
            self._on_phase(name, detail)

    def update(self, detail: str) -> None:
        """New facts about the current phase (the live status comment rate-limits them)."""
        if self._on_update is not None:
            self._on_update(self.current, detail)

    def model_call(
        self, turn: int, prompt: int, completion: int, seconds: float, cost: float | None
    ) -> None:
        """A model call came back."""
        self._say(
            f"model call {turn}: {prompt} + {completion} tokens in {seconds:.1f}s{_money(cost)}"
        )

    def tool_call(
        self, name: str, argument: str, exit_code: int | None, seconds: float, ok: bool
    ) -> None:
        """A tool call ended."""
        short = " ".join(argument.split())
        short = short if len(short) <= 80 else short[:79] + "…"
        result = f"exit {exit_code}" if exit_code is not None else ("ok" if ok else "failed")
        self._say(f"  {name} {short} -> {result} ({seconds:.1f}s)")

    def retry(self, attempt: int, failure: str, wait: float) -> None:
        """A model call failed and is tried again after ``wait`` seconds."""
        self._say(f"model call failed ({failure}); retry {attempt} in {wait:.1f}s")

    def pull(self, status: str) -> None:
        """Progress of a sandbox image pull."""
        self._say(f"image: {status}")

    def start_heartbeat(self, usage: UsageFn) -> None:
        """Every ``heartbeat`` seconds, one line (and a status update) with the budget used."""
        if self._interval <= 0 or self._thread is not None:
            return
        started = time.monotonic()

        def beat() -> None:
            while not self._stop.wait(self._interval):
                used = usage()
                line = (
                    f"still working ({time.monotonic() - started:.0f}s): "
                    f"{used.get('turns', 0)} turn(s), {used.get('total_tokens', 0)} tokens"
                    f"{_money(used.get('cost_usd'))}"
                )
                self._say(line)
                self.update(line.partition(": ")[2])

        self._thread = threading.Thread(target=beat, name="astraforge-heartbeat", daemon=True)
        self._thread.start()

    def stop_heartbeat(self) -> None:
        """End the heartbeat."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
