"""Review-ready output: a red run is never "fixed", progress shows as it happens, the status
comment is a live checklist that converges to one comment, and the outputs users ask for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from tests import samples
from tests.integration.test_pipeline import (
    FIX,
    LLM_KEY,
    TEST,
    TOKEN,
    issue_event,
    local,
    make_checkout,
    run_local,
)
from tests.servers.github import FakeGitHub
from tests.servers.llm import Step, call, reply, scripted

from astraforge.status import LiveStatus

WRONG_FIX = [
    reply(
        call(
            "edit_file",
            path="shop/cart.py",
            old="    return total / len(items)",
            new="    return total / len(items) if items else 1",
        )
    ),
    reply(call("finish", summary="Guard the empty cart.", tests="all tests pass")),
]


def test_a_red_run_is_a_draft_with_a_warning_never_fixed(tmp_path: Path) -> None:
    checkout = make_checkout(tmp_path)
    forge = local(tmp_path, checkout)
    # The agent claims the tests pass; the runner's own run says otherwise, every round.
    script = [
        *WRONG_FIX,
        reply(call("finish", summary="Still done.")),
        reply(call("finish", summary="Really done.")),
    ]
    summary = tmp_path / "summary.md"
    with scripted(script) as llm:
        result, report = run_local(
            tmp_path,
            llm,
            checkout,
            forge,
            env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)},
        )
    assert result.returncode == 0, result.stderr
    assert report["conclusion"] == "unverified"
    assert "not verified" in report["reason"]
    fed_back = [r for r in llm.requests if "The runner ran the tests after your change" in r.raw]
    assert len(fed_back) == 2  # the failure went back to the agent, twice
    pull = json.loads((forge.root / "pulls" / "1.json").read_text())
    assert pull["draft"] is True
    assert pull["body"].startswith("> [!WARNING]")
    assert "failed with exit code 1 after the change" in pull["body"]
    assert "all tests pass" not in pull["body"]  # the agent's claim is not evidence
    assert "opened a draft" in forge.comments(1)[0].body
    assert "::warning::not verified:" in result.stdout


def test_a_red_first_try_that_the_agent_then_fixes_is_verified(tmp_path: Path) -> None:
    checkout = make_checkout(tmp_path)
    forge = local(tmp_path, checkout)
    script = [
        *WRONG_FIX,
        reply(
            call(
                "edit_file",
                path="shop/cart.py",
                old="if items else 1",
                new="if items else 0",
            )
        ),
        reply(call("finish", summary="Return 0 for an empty cart.")),
    ]
    with scripted(script) as llm:
        result, report = run_local(tmp_path, llm, checkout, forge)
    assert report["conclusion"] == "fixed", result.stdout
    assert report["outcome"]["tests_after"]["passed"] is True
    pull = json.loads((forge.root / "pulls" / "1.json").read_text())
    assert pull["draft"] is False
    assert "[!WARNING]" not in pull["body"]


def test_unverified_can_be_blocked_by_a_trusted_setting(tmp_path: Path) -> None:
    checkout = make_checkout(tmp_path)
    forge = local(tmp_path, checkout)
    script = [*WRONG_FIX, reply(call("finish", summary="x")), reply(call("finish", summary="y"))]
    with scripted(script) as llm:
        result, report = run_local(
            tmp_path, llm, checkout, forge, env={"ASTRAFORGE_ON_UNVERIFIED": "block"}
        )
    assert result.returncode == 8
    assert report["conclusion"] == "blocked"
    assert "on_unverified: block" in report["reason"]
    assert not (forge.root / "pulls").exists() or not list((forge.root / "pulls").iterdir())


def test_no_test_command_is_said_in_every_place(tmp_path: Path) -> None:
    files = {**samples.PY_FILES, ".astraforge.yml": "sandbox:\n  backend: bwrap\n"}
    files.pop("pyproject.toml")  # nothing to detect a test command from
    files.pop("tests/test_cart.py")
    checkout = samples.make_repo(tmp_path / "checkout", files)
    forge = local(tmp_path, checkout)
    with scripted(list(FIX)) as llm:
        result, report = run_local(tmp_path, llm, checkout, forge)
    assert report["conclusion"] == "unverified"
    assert "not verified: no test command" in report["reason"]
    body = json.loads((forge.root / "pulls" / "1.json").read_text())["body"]
    assert "not verified: no test command" in body
    assert "not verified: no test command" in forge.comments(1)[0].body
    assert "warning: not verified: no test command" in result.stderr


def test_progress_lines_and_outputs(tmp_path: Path) -> None:
    checkout = make_checkout(tmp_path)
    forge = local(tmp_path, checkout)
    outputs = tmp_path / "outputs"
    with scripted(list(FIX)) as llm:
        result, report = run_local(
            tmp_path,
            llm,
            checkout,
            forge,
            env={"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(outputs)},
        )
    assert report["conclusion"] == "fixed"
    log = result.stdout
    assert "model call 1:" in log
    assert "read_file shop/cart.py -> ok" in log
    assert "edit_file shop/cart.py -> ok" in log
    assert "verified: `" in log
    text = outputs.read_text()
    for key in ("cost_usd", "input_tokens", "output_tokens", "turns", "duration_seconds"):
        assert f"{key}<<" in text
    assert "report_file<<" in text
    report_file = text.split("report_file<<")[1].splitlines()[1]
    assert Path(report_file).name == "report.html"
    assert Path(report_file).exists()


def test_retries_are_said_as_they_happen(tmp_path: Path) -> None:
    config = f"sandbox:\n  backend: bwrap\nmodel:\n  max_retries: 2\ntest_command: {TEST!r}\n"
    checkout = samples.make_repo(
        tmp_path / "checkout", {**samples.PY_FILES, ".astraforge.yml": config}
    )
    forge = local(tmp_path, checkout)
    throttled = Step(status=429, headers={"Retry-After": "0"}, raw_body='{"error": {}}')
    with scripted([throttled, *FIX]) as llm:
        result, report = run_local(tmp_path, llm, checkout, forge)
    assert report["conclusion"] == "fixed"
    assert "model call failed (HTTP 429); retry 1 in 0.0s" in result.stdout


def test_live_status_posts_phase_changes_and_rate_limits_the_rest() -> None:
    posts: list[str] = []
    now = [0.0]
    live = LiveStatus(posts.append, "**AstraForge** is working on this.", clock=lambda: now[0])
    live.phase("context")
    live.phase("agent")
    for second in range(1, 60):
        now[0] = float(second)
        live.update("agent", f"{second} turns")
    live.phase("tests_after", "`pytest`")
    assert len(posts) == 3 + 5  # three phases, and one update every 10 s
    assert "- [x] Context gathered" in posts[-1]
    assert "- [x] Agent working: 59 turns" in posts[-1]
    assert "- [ ] Tests after the change ⏳: `pytest`" in posts[-1]


def test_two_concurrent_runs_leave_one_status_comment(tmp_path: Path) -> None:
    checkout = make_checkout(tmp_path)
    server = FakeGitHub(tmp_path / "gh", TOKEN, "Codertocat/Hello-World")
    server.roles["Codertocat"] = "write"
    server.seed(checkout)

    def per_conversation(body: dict[str, Any]) -> Step:
        done = sum(1 for m in body["messages"] if m["role"] == "tool")
        return FIX[min(done, len(FIX) - 1)]

    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI"))}
    results: list[subprocess.CompletedProcess[str]] = []
    with server, scripted([], then=per_conversation) as llm:
        event = issue_event(tmp_path)

        def one(name: str) -> None:
            results.append(
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "astraforge",
                        "run",
                        "--repo",
                        str(checkout),
                        "--forge",
                        "github",
                        "--event",
                        str(event),
                        "--out",
                        str(tmp_path / name),
                        "--base-url",
                        llm.url,
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                    env={
                        **base,
                        "OPENAI_API_KEY": LLM_KEY,
                        "GITHUB_TOKEN": TOKEN,
                        "GITHUB_API_URL": server.url,
                    },
                )
            )

        threads = [threading.Thread(target=one, args=(f"out{i}",)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert all(r.returncode == 0 for r in results), [r.stderr[-500:] for r in results]
    marked = [c for c in server.comments.get(1, []) if "astraforge:status" in c["body"]]
    assert len(marked) == 1
    assert len(server.pulls) == 1
    assert TEST  # the runner's own test decided both runs
