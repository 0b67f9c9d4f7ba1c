"""Budget arithmetic and context fitting, without a model or sandbox."""

from __future__ import annotations

from pathlib import Path

from astraforge.agent.loop import ELIDED, Budget, Conversation
from astraforge.agent.model import Usage
from astraforge.agent.trajectory import Trajectory, read_events
from astraforge.config import Budgets, Price
from astraforge.redact import Redactor


def test_admit_lowers_the_reply_cap_to_what_is_left() -> None:
    budget = Budget(Budgets(max_tokens=10_000), None)
    assert budget.admit(1000, 8192) == 8192
    budget.record(Usage(5000, 500))
    assert budget.admit(1000, 8192) == 10_000 - 5500 - 1000
    assert budget.admit(4400, 8192) == "tokens"


def test_admit_by_cost_and_turns() -> None:
    budget = Budget(Budgets(max_cost_usd=0.01, max_turns=3), Price(input=2.0, output=8.0))
    cap = budget.admit(1000, 8192)
    assert isinstance(cap, int)
    assert budget.cost(1000, cap) <= 0.01
    budget.record(Usage(4000, 0))  # $0.008
    assert budget.admit(1000, 8192) == "cost"
    budget = Budget(Budgets(max_turns=1), None)
    budget.record(Usage(1, 1))
    assert budget.admit(1, 1000) == "turns"


def test_unknown_price_counts_tokens_only() -> None:
    budget = Budget(Budgets(max_cost_usd=0.0), None)
    assert budget.admit(100, 1000) == 1000
    budget.record(Usage(100, 100))
    assert budget.report()["cost_usd"] is None


def test_fit_elides_oldest_tool_outputs_first(tmp_path: Path) -> None:
    trajectory = Trajectory(tmp_path / "t.jsonl", Redactor())
    trajectory.write("start")
    conversation = Conversation([{"role": "system", "content": "s"}], trajectory)
    for i in range(6):
        conversation.add({"role": "assistant", "content": None}, record=False)
        conversation.add(
            {"role": "tool", "tool_call_id": str(i), "content": f"{i}" * 3000}, record=False
        )
    conversation.fit(3500)
    contents = [m["content"] for m in conversation.messages if m["role"] == "tool"]
    assert contents[0] == ELIDED
    assert contents[1] == ELIDED
    assert contents[-1] == "5" * 3000
    assert contents[-3] == "3" * 3000
    assert conversation.estimate() <= 3500
    elided = [e for e in read_events(tmp_path / "t.jsonl") if e["type"] == "elided"]
    assert elided
    assert elided[0]["count"] >= 2


def test_trajectory_survives_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    trajectory = Trajectory(path, Redactor(["secret-value-123"]))
    trajectory.write("start", note="secret-value-123")
    trajectory.write("tool", name="shell")
    trajectory.close()
    with path.open("a") as handle:
        handle.write('{"type": "tool", "na')
    events = list(read_events(path))
    assert [e["type"] for e in events] == ["start", "tool"]
    assert events[0]["note"] == "[REDACTED]"
    assert events[0]["version"] == 1
