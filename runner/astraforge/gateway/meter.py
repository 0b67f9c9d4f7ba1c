"""The run's budget as the gateway enforces it: one :class:`~astraforge.agent.loop.Budget`
shared with the built-in agent, so every engine and every call in the sandbox spends the same
tokens, cost and wall time."""

from __future__ import annotations

import threading

from astraforge.agent.loop import MIN_REPLY, Budget
from astraforge.agent.model import Usage
from astraforge.gateway.usage import Counted


class Meter:
    """Admits and records calls against the run's budget, from any thread."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.exhausted: str | None = None  # the budget that refused a call
        self._lock = threading.Lock()

    def admit(self, prompt: int, cap: int) -> int | str:
        """The reply cap the call may have, or the name of the budget that refuses it. A
        call asking for a small reply is judged as the agent's own are (at least
        MIN_REPLY), and keeps its own cap."""
        with self._lock:
            admitted = self.budget.admit(prompt, max(cap, MIN_REPLY))
            if isinstance(admitted, str):
                self.exhausted = admitted
                return admitted
            return min(admitted, cap)

    def record(self, counted: Counted) -> float:
        if not (counted.prompt or counted.completion):
            return 0.0
        with self._lock:
            return self.budget.record(Usage(counted.prompt, counted.completion, counted.estimated))
