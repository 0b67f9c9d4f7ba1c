"""The tool-calling loop and the budgets the runner enforces on it.

Budgets are checked before every model call with the worst case of that call (the prompt as
estimated plus the reply cap sent with the request), so no call can take a budget past its
limit: the reply cap is lowered to what is left, and a call that cannot fit is not made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from astraforge import tokens
from astraforge.agent.model import DeadlineReached, Message, Model, Usage
from astraforge.agent.tools import Finish, Toolbox, specs
from astraforge.agent.trajectory import Trajectory
from astraforge.config import Budgets, Price
from astraforge.progress import Progress
from astraforge.redact import Redactor

ESTIMATE_MARGIN = 32  # tokens
MIN_REPLY = 256  # a call that cannot afford this many reply tokens is not made
KEEP_RECENT_TOOL_OUTPUTS = 3
ELIDED = "[output elided to fit the context window; run the tool again if it is needed]"
REMINDER = (
    "Continue by calling tools. When the change is complete and tested, or no change is "
    "needed, call `finish`."
)


@dataclass
class Budget:
    """The run's budgets and what has been spent of them."""

    limits: Budgets
    price: Price | None
    started: float = field(default_factory=time.monotonic)
    turns: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    estimated: bool = False

    @property
    def deadline(self) -> float:
        return self.started + self.limits.timeout_minutes * 60

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def cost(self, prompt: int, completion: int) -> float:
        if self.price is None:
            return 0.0
        return (prompt * self.price.input + completion * self.price.output) / 1_000_000

    def admit(self, prompt_estimate: int, max_output: int) -> int | str:
        """The reply cap for the next call, or the name of the budget that forbids it."""
        if self.turns >= self.limits.max_turns:
            return "turns"
        if self.time_left() <= 0:
            return "time"
        cap = min(max_output, self.limits.max_tokens - self.total_tokens - prompt_estimate)
        if cap < MIN_REPLY:
            return "tokens"
        if self.price is not None and self.price.output > 0:
            left = self.limits.max_cost_usd - self.cost_usd - self.cost(prompt_estimate, 0)
            cap = min(cap, int(left * 1_000_000 / self.price.output))
            if cap < MIN_REPLY:
                return "cost"
        return cap

    def record(self, usage: Usage) -> float:
        self.turns += 1
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.estimated |= usage.estimated
        spent = self.cost(usage.prompt_tokens, usage.completion_tokens)
        self.cost_usd += spent
        return spent

    def report(self) -> dict[str, Any]:
        return {
            "turns": self.turns,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cost_usd": round(self.cost_usd, 6) if self.price is not None else None,
            "estimated": self.estimated,
            "seconds": round(time.monotonic() - self.started, 3),
        }


@dataclass
class LoopEnd:
    """How the tool loop ended: finished, text only, or a budget ran out."""

    how: str  # finished | text_only | budget
    finish: Finish | None = None
    budget: str | None = None


class Conversation:
    """The messages sent to the model, and a running estimate of their size."""

    def __init__(self, messages: list[Message], trajectory: Trajectory) -> None:
        self.messages: list[Message] = []
        self.trajectory = trajectory
        self._anchor = 0  # messages covered by the last reported prompt size
        self._anchor_tokens = 0
        for message in messages:
            self.add(message)

    def add(self, message: Message, record: bool = True) -> None:
        self.messages.append(message)
        if record:
            self.trajectory.write("message", message=message)

    def calibrate(self, usage: Usage) -> None:
        """The server's count of the prompt just sent, plus its reply, anchor the estimate."""
        if not usage.estimated:
            self._anchor = len(self.messages)
            self._anchor_tokens = usage.prompt_tokens + usage.completion_tokens

    def estimate(self) -> int:
        """The next prompt's size, erring high: the last reported size, plus an estimate of
        what was added since, plus a margin for how servers re-encode the reply."""
        if self._anchor == 0:
            raw = tokens.count_messages(self.messages, tokens.estimate_high)
        else:
            tail = self.messages[self._anchor :]
            raw = self._anchor_tokens + tokens.count_messages(tail, tokens.estimate_high)
        return raw + raw // 50 + ESTIMATE_MARGIN

    def fit(self, limit: int) -> None:
        """Elide the oldest tool outputs until the estimate is under ``limit``."""
        if self.estimate() <= limit:
            return
        outputs = [m for m in self.messages if m["role"] == "tool" and m["content"] != ELIDED]
        elided = 0
        for message in outputs[:-KEEP_RECENT_TOOL_OUTPUTS]:
            if self.estimate() <= limit:
                break
            message["content"] = ELIDED
            self._anchor = 0  # the anchored prompt changed
            elided += 1
        if elided:
            self.trajectory.write("elided", count=elided, estimate=self.estimate())


def run_loop(
    model: Model,
    toolbox: Toolbox,
    conversation: Conversation,
    budget: Budget,
    trajectory: Trajectory,
    redact: Redactor,
    *,
    max_output: int,
    context_window: int,
    progress: Progress | None = None,
) -> LoopEnd:
    """Call the model and run its tool calls until it finishes or a budget runs out."""
    progress = progress or Progress()
    tools = specs()
    reminded = False
    while True:
        conversation.fit(context_window - max_output)
        estimate = conversation.estimate()
        admitted = budget.admit(estimate, max_output)
        if isinstance(admitted, str):
            trajectory.write("budget", budget=admitted, usage=budget.report())
            return LoopEnd("budget", budget=admitted)
        turn = budget.turns + 1
        trajectory.write("request", turn=turn, max_output=admitted, prompt_estimate=estimate)
        asked = time.monotonic()
        try:
            reply = model.complete(
                conversation.messages, tools, max_output=admitted, deadline=budget.deadline
            )
        except DeadlineReached:
            trajectory.write("budget", budget="time", usage=budget.report())
            return LoopEnd("budget", budget="time")
        spent = budget.record(reply.usage)
        progress.model_call(
            turn,
            reply.usage.prompt_tokens,
            reply.usage.completion_tokens,
            time.monotonic() - asked,
            spent if budget.price is not None else None,
        )
        trajectory.write("response", turn=turn, reply=reply.to_json(), cost_usd=spent)
        conversation.add(reply.message(), record=False)
        conversation.calibrate(reply.usage)
        if not reply.tool_calls:
            if reminded:
                return LoopEnd("text_only")
            reminded = True
            conversation.add({"role": "user", "content": REMINDER})
            continue
        reminded = False
        finish: Finish | None = None
        for call in reply.tool_calls:
            if finish is not None:
                content, ok = "not run: finish was already called", False
                result = None
            else:
                started = time.monotonic()
                result = toolbox.call(call.name, call.arguments, time_left=budget.time_left())
                content, ok = redact(result.content), result.ok
                finish = result.finish
            seconds = round(time.monotonic() - started, 3) if result else 0.0
            if result is not None:
                progress.tool_call(
                    call.name, _argument(call.arguments), result.exit_code, seconds, ok
                )
            trajectory.write(
                "tool",
                turn=turn,
                call_id=call.id,
                name=call.name,
                arguments=call.arguments,
                ok=ok,
                refused=bool(result and result.refused),
                exit_code=result.exit_code if result else None,
                seconds=seconds,
                result=content,
            )
            conversation.add(
                {"role": "tool", "tool_call_id": call.id, "content": content}, record=False
            )
        if finish is not None:
            return LoopEnd("finished", finish=finish)


def _argument(arguments: str) -> str:
    """The argument of a tool call worth a log line: its command, path or pattern."""
    import json

    try:
        data = json.loads(arguments)
    except ValueError:
        return arguments[:80]
    if isinstance(data, dict):
        for key in ("command", "path", "pattern"):
            if isinstance(data.get(key), str):
                return str(data[key])
    return arguments[:80]
