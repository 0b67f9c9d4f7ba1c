"""The live status comment: a checklist of the run's phases, edited in place as it goes.

Phase changes are posted at once; other updates (turns, cost) at most once every
``min_interval`` seconds, so a long run makes a bounded number of API calls. A failed edit
is a warning, never the end of the run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

PHASES = (
    ("context", "Context gathered"),
    ("tests_before", "Tests before the change"),
    ("agent", "Agent working"),
    ("tests_after", "Tests after the change"),
    ("policy", "Policy checks"),
    ("publish", "Pull request"),
)
MIN_INTERVAL = 10.0  # seconds between edits that are not phase changes

Post = Callable[[str], None]


class Checklist:
    """The run's phases with their state and details, as markdown."""

    def __init__(self, header: str) -> None:
        self.header = header
        self.done: list[str] = []
        self.current: str | None = None
        self.details: dict[str, str] = {}

    def enter(self, phase: str, detail: str = "") -> None:
        """``phase`` starts: the one before it is done."""
        if self.current and self.current != phase and self.current not in self.done:
            self.done.append(self.current)
        self.current = phase
        if detail:
            self.details[phase] = detail

    def markdown(self) -> str:
        """The checklist as the comment shows it."""
        lines = [self.header, ""]
        for name, label in PHASES:
            mark = "x" if name in self.done else " "
            now = " ⏳" if name == self.current else ""
            detail = self.details.get(name)
            lines.append(f"- [{mark}] {label}{now}" + (f": {detail}" if detail else ""))
        return "\n".join(lines)


class LiveStatus:
    """Posts the checklist: phase changes at once, other updates rate-limited."""

    def __init__(
        self,
        post: Post,
        header: str,
        *,
        min_interval: float = MIN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._post = post
        self.checklist = Checklist(header)
        self._interval = min_interval
        self._clock = clock
        self._last = float("-inf")
        self._lock = threading.Lock()
        self.posts = 0

    def phase(self, name: str, detail: str = "") -> None:
        """A phase change: posted at once."""
        with self._lock:
            self.checklist.enter(name, detail)
            self._send()

    def update(self, name: str, detail: str) -> None:
        """New details of the current phase: posted if the last post is old enough."""
        with self._lock:
            self.checklist.details[name or self.checklist.current or ""] = detail
            if self._clock() - self._last >= self._interval:
                self._send()

    def _send(self) -> None:
        self._last = self._clock()
        self.posts += 1
        self._post(self.checklist.markdown())
