"""The agent loop end to end: the real openai client against a scripted server on loopback,
tools executed in real sandboxes, budgets, faults, trajectories and replay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import IMAGE, commit
from tests.servers.llm import ScriptedLLM, Step, call, error, reply, scripted

from astraforge.agent.loop import REMINDER
from astraforge.agent.run import AgentRun, run_agent
from astraforge.agent.trajectory import read_events
from astraforge.config import Config
from astraforge.events import manual

TEST_COMMAND = "python3 -m unittest -q"
BUGGY = "def mean(values):\n    return sum(values) / (len(values) - 1)\n"
FIXED = "def mean(values):\n    return sum(values) / len(values)\n"
LLM_KEY = "sk-test-CANARY-llm-key-0123456789abcdef"
FORGE_TOKEN = "ghp_" + "C4nary" * 6
CI_SECRET = "ci-variable-CANARY-5d1e2f"


def make_buggy_repo(root: Path) -> Path:
    """A git repository with a real failing test."""
    repo = root / "buggy"
    repo.mkdir()
    (repo / "stats.py").write_text(BUGGY)
    (repo / "test_stats.py").write_text(
        "import unittest\n\nfrom stats import mean\n\n\n"
        "class MeanTest(unittest.TestCase):\n"
        "    def test_mean(self):\n        self.assertEqual(mean([1, 2, 3]), 2)\n"
    )
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull}
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=env)
    subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-qm",
            "init",
        ],
        check=True,
        env=env,
    )
    return repo


FIX_SCRIPT = [
    reply(call("read_file", path="stats.py")),
    reply(call("edit_file", path="stats.py", old="/ (len(values) - 1)", new="/ len(values)")),
    reply(call("shell", command=TEST_COMMAND)),
    reply(
        call(
            "finish",
            summary="mean() divided by n - 1; it now divides by n.",
            root_cause="off-by-one in the divisor",
            tests="python3 -m unittest: 1 test passes",
        )
    ),
]


@pytest.fixture
def buggy(tmp_path: Path) -> Path:
    return make_buggy_repo(tmp_path)


def config(llm: ScriptedLLM, backend: str = "bwrap", **sections: Any) -> Config:
    data: dict[str, Any] = {
        "model": {"name": "test-model", "base_url": llm.url, "max_retries": 2},
        "sandbox": {"backend": backend, "image": IMAGE},
        "test_command": TEST_COMMAND,
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return Config.model_validate(data)


def agent(repo: Path, out: Path, cfg: Config, task: str = "fix mean()") -> AgentRun:
    env = {"OPENAI_API_KEY": LLM_KEY, "GITHUB_TOKEN": FORGE_TOKEN}
    return run_agent(manual.parse({"request": task}), cfg, repo, out, env=env)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "astraforge", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


def events(out: Path, type: str) -> list[dict[str, Any]]:
    return [e for e in read_events(out / "trajectory.jsonl") if e["type"] == type]


@pytest.mark.parametrize("backend", ["bwrap", "docker"])
def test_scripted_fix_is_fixed_with_evidence_and_replays_identically(
    buggy: Path, tmp_path: Path, backend: str
) -> None:
    out = tmp_path / "out"
    with scripted(FIX_SCRIPT) as llm:
        result = cli(
            "agent",
            "--repo",
            str(buggy),
            "--task",
            "mean() is wrong",
            "--base-url",
            llm.url,
            "--model",
            "test-model",
            "--backend",
            backend,
            "--image",
            IMAGE,
            "--test-command",
            TEST_COMMAND,
            "--out",
            str(out),
            env={"OPENAI_API_KEY": LLM_KEY},
        )
    assert result.returncode == 0, result.stderr
    outcome = json.loads((out / "outcome.json").read_text())
    assert outcome["status"] == "fixed"
    assert outcome["root_cause"] == "off-by-one in the divisor"
    assert outcome["tests_before"]["passed"] is False
    assert "AssertionError: 3.0 != 2" in outcome["tests_before"]["output"]
    assert outcome["tests_after"]["passed"] is True
    assert outcome["files"] == [
        {"path": "stats.py", "change": "modified", "added_lines": 1, "deleted_lines": 1}
    ]
    patch = (out / "diff.patch").read_text()
    lines = [line for line in patch.splitlines() if not line.startswith("index ")]
    assert lines == [
        "diff --git a/stats.py b/stats.py",
        "--- a/stats.py",
        "+++ b/stats.py",
        "@@ -1,2 +1,2 @@",
        " def mean(values):",
        "-    return sum(values) / (len(values) - 1)",
        "+    return sum(values) / len(values)",
    ]
    assert (buggy / "stats.py").read_text() == BUGGY  # the checkout itself is untouched
    tools = events(out, "tool")
    assert [t["name"] for t in tools] == ["read_file", "edit_file", "shell", "finish"]
    assert "     2\t    return sum(values) / (len(values) - 1)" in tools[0]["result"]
    assert tools[2]["exit_code"] == 0
    assert outcome["usage"]["turns"] == 4
    assert llm.calls == 4

    replayed = cli("replay", str(out / "trajectory.jsonl"), "--repo", str(buggy))
    assert replayed.returncode == 0, replayed.stderr
    assert outcome["diff_sha256"] in replayed.stdout


def test_replay_model_reproduces_the_run_without_network(buggy: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    with scripted(FIX_SCRIPT) as llm:
        assert agent(buggy, first, config(llm)).outcome.status == "fixed"
    second = tmp_path / "second"
    cfg = Config.model_validate(
        {"model": {"name": f"replay:{first / 'trajectory.jsonl'}"}, "sandbox": {"backend": "bwrap"}}
    )
    run = run_agent(manual.parse({"request": "fix"}), cfg, buggy, second, env={})
    assert run.error is None
    assert run.outcome.status == "fixed"
    assert (second / "diff.patch").read_text() == (first / "diff.patch").read_text()


def test_replay_detects_a_different_result(buggy: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with scripted(FIX_SCRIPT) as llm:
        agent(buggy, out, config(llm))
    trajectory = out / "trajectory.jsonl"
    lines = trajectory.read_text().splitlines()
    tampered = [
        line.replace('/ len(values)\\"', '/ max(len(values), 1)\\"')
        if '"type": "tool"' in line
        else line
        for line in lines
    ]
    assert tampered != lines
    trajectory.write_text("\n".join(tampered) + "\n")
    result = cli("replay", str(trajectory), "--repo", str(buggy), "--backend", "bwrap")
    assert result.returncode == 1
    assert "different" in result.stderr


def test_replay_starts_from_the_recorded_commit(buggy: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with scripted(FIX_SCRIPT) as llm:
        agent(buggy, out, config(llm))
    (buggy / "stats.py").write_text("def mean(values):\n    return 0\n")
    subprocess.run(
        [
            "git",
            "-C",
            str(buggy),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-qam",
            "later",
        ],
        check=True,
    )
    result = cli("replay", str(out / "trajectory.jsonl"), "--repo", str(buggy))
    assert result.returncode == 0, result.stderr


# -- budgets ------------------------------------------------------------------------------


def never_finishes() -> Step:
    return reply(call("shell", command="true"))


def assert_each_call_fit(llm: ScriptedLLM, limit: int) -> None:
    """Before every call: tokens used so far + its prompt + the reply cap it sent <= limit,
    so even a reply using all of its cap could not pass the budget."""
    used = 0
    for request in llm.requests:
        assert request.usage is not None
        prompt, completion = request.usage
        assert used + prompt + request.body["max_completion_tokens"] <= limit
        used += prompt + completion


@pytest.mark.parametrize(
    ("budgets", "kind"),
    [
        ({"max_turns": 2}, "turns"),
        ({"max_tokens": 4000}, "tokens"),
        ({"max_cost_usd": 0.003}, "cost"),
    ],
)
def test_budget_stops_the_run_before_it_is_exceeded(
    buggy: Path, tmp_path: Path, budgets: dict[str, Any], kind: str
) -> None:
    with scripted([], then=never_finishes()) as llm:
        cfg = config(
            llm,
            budgets=budgets,
            model={"prices": {"test-model": {"input": 1.0, "output": 1.0}}},
        )
        run = agent(buggy, tmp_path / "out", cfg)
    outcome = run.outcome
    assert outcome.status == "budget_exhausted"
    assert outcome.budget == kind
    assert llm.calls >= 1
    usage = outcome.usage
    assert usage["turns"] == llm.calls <= cfg.budgets.max_turns
    assert usage["total_tokens"] <= cfg.budgets.max_tokens
    assert usage["cost_usd"] <= cfg.budgets.max_cost_usd
    assert_each_call_fit(llm, cfg.budgets.max_tokens)
    assert llm.calls == 2 if kind == "turns" else llm.calls >= 2
    budget_events = events(tmp_path / "out", "budget")
    assert [e["budget"] for e in budget_events] == [kind]


def test_wall_time_budget_cuts_a_slow_reply(buggy: Path, tmp_path: Path) -> None:
    slow = reply(call("shell", command="true"), delay=1.0)
    with scripted([], then=slow) as llm:
        cfg = config(llm, budgets={"timeout_minutes": 2.5 / 60})
        run = agent(buggy, tmp_path / "out", cfg)
    assert run.outcome.status == "budget_exhausted"
    assert run.outcome.budget == "time"
    assert 1 <= llm.calls <= 3
    assert run.outcome.usage["seconds"] < 2.5 + 1.0  # the deadline, plus the tests and diff


# -- faults -------------------------------------------------------------------------------


def test_429_with_retry_after_then_success(buggy: Path, tmp_path: Path) -> None:
    script = [error(429, retry_after="1"), reply(call("finish", summary="nothing to do"))]
    with scripted(script) as llm:
        run = agent(buggy, tmp_path / "out", config(llm))
    assert run.error is None
    assert run.outcome.status == "no_change"
    assert llm.calls == 2
    retries = events(tmp_path / "out", "retry")
    assert [(r["attempt"], r["failure"], r["wait"]) for r in retries] == [(1, "HTTP 429", 1.0)]


def test_500_every_time_ends_with_a_clear_error_and_keeps_the_trajectory(
    buggy: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    script = [reply(call("write_file", path="notes.txt", content="partial work\n"))]
    with scripted(script, then=error(500, retry_after="0")) as llm:
        result = cli(
            "agent",
            "--repo",
            str(buggy),
            "--task",
            "fix",
            "--base-url",
            llm.url,
            "--model",
            "test-model",
            "--backend",
            "bwrap",
            "--out",
            str(out),
            env={"OPENAI_API_KEY": LLM_KEY, "ASTRAFORGE_CONFIG_FILE": ""},
        )
    assert result.returncode == 7
    assert result.stderr.strip().splitlines()[-1] == (
        "error: the model API kept failing (HTTP 500) after 5 attempts (fix: try again later, "
        "or raise model.max_retries; the partial run is kept)"
    )
    assert llm.calls == 1 + 5  # the first reply, then 1 + 4 default retries
    outcome = json.loads((out / "outcome.json").read_text())
    assert outcome["status"] == "error"
    assert "kept failing" in outcome["error"]
    assert "+partial work" in (out / "diff.patch").read_text()  # nothing lost
    types = [e["type"] for e in read_events(out / "trajectory.jsonl")]
    assert types.count("retry") == 4
    assert types[-1] == "end"
    assert "tool" in types


@pytest.mark.parametrize(
    ("bad_call", "message"),
    [
        (("edit_file", '{"path": "stats.py", "old": '), "are not valid JSON"),
        (("rm_everything", "{}"), "unknown tool 'rm_everything'"),
        (("read_file", "{}"), "bad arguments for read_file: path: Field required"),
        (("read_file", '{"path": 7}'), "path: Input should be a valid string"),
    ],
)
def test_malformed_tool_calls_go_back_to_the_model(
    buggy: Path, tmp_path: Path, bad_call: tuple[str, str], message: str
) -> None:
    script = [reply(bad_call), reply(call("finish", summary="gave up"))]
    with scripted(script) as llm:
        run = agent(buggy, tmp_path / "out", config(llm))
    assert run.error is None
    assert run.outcome.status == "no_change"
    tool_message = llm.requests[1].body["messages"][-1]
    assert tool_message["role"] == "tool"
    assert message in tool_message["content"]
    assert (
        tool_message["tool_call_id"] == llm.requests[1].body["messages"][-2]["tool_calls"][0]["id"]
    )


def test_text_only_replies_get_one_reminder_then_no_change(buggy: Path, tmp_path: Path) -> None:
    script = [reply(content="I think it is fine."), reply(content="Really, it is fine.")]
    with scripted(script) as llm:
        run = agent(buggy, tmp_path / "out", config(llm))
    assert run.outcome.status == "no_change"
    assert "stopped calling tools" in run.outcome.reason
    assert llm.calls == 2
    assert llm.requests[1].body["messages"][-1] == {"role": "user", "content": REMINDER}


def test_several_tool_calls_in_one_reply_run_in_order(buggy: Path, tmp_path: Path) -> None:
    script = [
        reply(
            call("write_file", path="a.txt", content="one\n"),
            call("shell", command="cat a.txt >> b.txt"),
            call("edit_file", path="a.txt", old="one", new="two"),
        ),
        reply(call("finish", summary="done")),
    ]
    with scripted(script) as llm:
        run = agent(buggy, tmp_path / "out", config(llm))
    assert run.outcome.status == "fixed"
    patch = (tmp_path / "out" / "diff.patch").read_text()
    assert "+two" in patch
    assert "+one" in patch


# -- secrets ------------------------------------------------------------------------------


def test_secrets_stay_out_of_the_sandbox_and_the_model(buggy: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    dump = (
        "env > env.txt; cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' >> env.txt; "
        "cat env.txt"
    )
    script = [reply(call("shell", command=dump)), reply(call("finish", summary="dumped"))]
    with scripted(script) as llm:
        result = cli(
            "agent",
            "--repo",
            str(buggy),
            "--task",
            "look around",
            "--base-url",
            llm.url,
            "--model",
            "test-model",
            "--backend",
            "bwrap",
            "--out",
            str(out),
            env={
                "OPENAI_API_KEY": LLM_KEY,
                "GITHUB_TOKEN": FORGE_TOKEN,
                "CI_JOB_TOKEN": CI_SECRET,
                "MY_CI_VARIABLE": CI_SECRET,
            },
        )
    assert result.returncode == 0, result.stderr
    patch = (out / "diff.patch").read_text()
    assert "+PATH=" in patch  # the dump worked
    for secret in (LLM_KEY, FORGE_TOKEN, CI_SECRET):
        assert secret not in patch  # never entered the sandbox
        for request in llm.requests:
            assert secret not in request.raw  # never reached the model
        assert secret not in (out / "trajectory.jsonl").read_text()
    assert "[REDACTED]" not in llm.requests[1].raw  # nothing needed masking: it was absent
    assert llm.requests[0].headers["authorization"] == f"Bearer {LLM_KEY}"


def test_trajectory_redacts_secrets_the_sandbox_prints(buggy: Path, tmp_path: Path) -> None:
    (buggy / "config.txt").write_text(f"token={FORGE_TOKEN}\n")
    commit(buggy)
    script = [reply(call("read_file", path="config.txt")), reply(call("finish", summary="ok"))]
    with scripted(script) as llm:
        agent(buggy, tmp_path / "out", config(llm))
    trajectory = (tmp_path / "out" / "trajectory.jsonl").read_text()
    assert FORGE_TOKEN not in trajectory
    assert "[REDACTED]" in trajectory
    assert FORGE_TOKEN not in llm.requests[1].raw
