"""The gateway answering from a recorded run: ``--model replay:FILE`` replays the model
calls made through the gateway (the trajectory's ``gateway`` events), so a run whose sandbox
called the model (an engine, a tool, a test) can be replayed offline with the same answers."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astraforge.agent.trajectory import read_events


@dataclass(frozen=True)
class Recorded:
    """One answered call as the trajectory holds it."""

    stream: bool
    reply: Any  # the JSON reply, or the SSE text of a stream
    prompt_tokens: int
    completion_tokens: int


class ReplayBook:
    """The recorded answers of a trajectory, in order, per protocol."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._calls: dict[str, deque[Recorded]] = {}
        for event in read_events(path):
            if event["type"] != "gateway" or event.get("status") != 200:
                continue
            recorded = Recorded(
                bool(event.get("stream")),
                event.get("reply"),
                int(event.get("prompt_tokens") or 0),
                int(event.get("completion_tokens") or 0),
            )
            self._calls.setdefault(str(event.get("protocol")), deque()).append(recorded)

    def __bool__(self) -> bool:
        return any(self._calls.values())

    def next(self, protocol: str, stream: bool) -> Recorded | str:
        """The next recorded answer in ``protocol``, or why there is none to give."""
        queue = self._calls.get(protocol)
        if not queue:
            return f"the replayed run made no more {protocol} calls through the gateway"
        if queue[0].stream != stream:
            kind = "a stream" if queue[0].stream else "not a stream"
            return f"the replayed run's next {protocol} call was {kind}"
        return queue.popleft()
