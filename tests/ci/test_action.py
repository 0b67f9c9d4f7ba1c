"""The GitHub Action, run for real by `act` in host mode on fixture events."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.ci.conftest import FLOOR, act, project_copy
from tests.conftest import load_fixture
from tests.servers.github import FakeGitHub
from tests.servers.llm import ScriptedLLM, call, reply, scripted

from astraforge.events import forwarded
from astraforge.events import sentry as sentry_events

TOKEN = "ghs_" + "ActRunToken" * 4
LLM_KEY = "sk-test-" + "ActLlmKey0" * 3
FIX = [
    reply(call("read_file", path="shop/cart.py")),
    reply(
        call(
            "edit_file",
            path="shop/cart.py",
            old="    return total / len(items)",
            new="    return total / len(items) if items else 0",
        )
    ),
    reply(call("shell", command="python3 -m unittest -q")),
    reply(
        call(
            "finish",
            summary="An empty cart divided by zero; it now averages to 0.",
            root_cause="len(items) is 0 for an empty cart",
            tests="unittest passes",
        )
    ),
]


def workflow(name: str) -> str:
    """An example workflow as act runs it here: the action from this checkout, and a
    checkout without `ref:` (act copies the local workspace only for such a checkout; the
    workspace holds the default branch, which is what `ref:` names)."""
    text = (Path(__file__).parents[2] / "action" / "workflows" / name).read_text()
    assert "uses: astraforge/astraforge@v1" in text
    text = text.replace("          ref: ${{ github.event.repository.default_branch }}\n", "")
    return text.replace("uses: astraforge/astraforge@v1", "uses: ./")


Run = tuple[subprocess.CompletedProcess[str], Path]


def run_act(
    tmp_path: Path,
    ws: Path,
    event: str,
    payload: dict[str, Any],
    workflow_file: str,
    server: FakeGitHub,
    llm: ScriptedLLM,
    act_cache: Path | None = None,
) -> Run:
    cache = act_cache or os.environ.get("ASTRAFORGE_ACT_CACHE") or tmp_path / "cache"
    result, artifacts = act(
        tmp_path,
        ws,
        event,
        payload,
        workflow_file,
        "--env",
        f"GITHUB_API_URL={server.url}",
        "--env",
        f"OPENAI_BASE_URL={llm.url}",
        "--env",
        f"ACT_CACHE={cache}",
        "-s",
        f"GITHUB_TOKEN={TOKEN}",
        "-s",
        f"OPENAI_API_KEY={LLM_KEY}",
    )
    return result, artifacts / "astraforge-run"


def outputs(log: str) -> dict[str, str]:
    return dict(re.findall(r"::set-output:: (\w+)=(.*)", log))


def setup(tmp_path: Path, payload: dict[str, Any], *workflow_files: str) -> tuple[Path, FakeGitHub]:
    full_name = payload["repository"]["full_name"]
    ws = project_copy(
        tmp_path / "ws",
        {f".github/workflows/{name}": workflow(name) for name in workflow_files},
        f"https://github.com/{full_name}.git",
    )
    server = FakeGitHub(tmp_path / "gh", TOKEN, full_name)
    server.seed(ws)
    server.roles["Codertocat"] = "write"
    return ws, server


def assert_fixed(
    result: subprocess.CompletedProcess[str], artifacts: Path, server: FakeGitHub, llm: ScriptedLLM
) -> dict[str, str]:
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert llm.calls == 4
    assert len(server.pulls) == 1
    pull = next(iter(server.pulls.values()))
    assert pull["title"].startswith(("Fix: ", "AstraForge: "))
    assert "| `shop/cart.py` | modified | +1 −1 |" in pull["body"]
    assert "| after the change | `python3 -m unittest -q` | passed |" in pull["body"]
    found = outputs(log)
    assert found["conclusion"] == "fixed"
    assert found["pr_number"] == str(next(iter(server.pulls)))
    assert found["branch"] == pull["head"]
    assert found["pr_url"].endswith(f"/pull/{found['pr_number']}")
    summary = (artifacts / "summary.md").read_text()
    assert summary.startswith("## AstraForge: fixed")
    assert (artifacts / "report.json").exists()
    assert (artifacts / "trajectory.jsonl").exists()
    assert TOKEN not in log
    assert LLM_KEY not in log
    assert "::group::AstraForge: agent in the sandbox" in log or "AstraForge: agent" in log
    return found


def test_issue_labeled(tmp_path: Path) -> None:
    payload = load_fixture("github/issues.labeled.json")
    payload["label"]["name"] = "astraforge"
    payload["issue"]["title"] = "Average of an empty cart crashes"
    payload["issue"]["body"] = "ZeroDivisionError when the cart is empty."
    ws, server = setup(tmp_path, payload, "astraforge-issues.yml")
    with server, scripted(list(FIX)) as llm:
        result, artifacts = run_act(
            tmp_path, ws, "issues", payload, "astraforge-issues.yml", server, llm
        )
    assert_fixed(result, artifacts, server, llm)
    status = server.comments[payload["issue"]["number"]]
    assert len(status) == 1
    assert "proposes a fix" in status[0]["body"]
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", outputs(result.stdout)["version"])  # from git
    # On the local GitHub the fix commit went through the Git Data API, signed.
    assert any(r.path == "/graphql" for r in server.requests)
    assert not any(r.path.endswith("git-receive-pack") for r in server.requests)


def test_the_second_run_installs_from_the_restored_cache(tmp_path: Path) -> None:
    """The action restores uv's cache saved by the run before, so the next install links
    from it instead of downloading (and never asks for a setup-python or cache step)."""
    payload = load_fixture("github/issues.labeled.json")
    payload["label"]["name"] = "astraforge"
    payload["issue"]["title"] = "Average of an empty cart crashes"
    cache = tmp_path / "install-cache"
    logs = []
    for name in ("first", "second"):
        ws, server = setup(tmp_path / name, payload, "astraforge-issues.yml")
        with server, scripted(list(FIX)) as llm:
            result, _ = run_act(
                tmp_path / name, ws, "issues", payload, "astraforge-issues.yml", server, llm, cache
            )
        assert result.returncode == 0, result.stdout[-3000:]
        logs.append(result.stdout)
    first, second = logs
    assert "no cache for astraforge-Linux-" in first
    assert "saved astraforge-Linux-" in first
    assert "restored astraforge-Linux-" in second
    assert "saved astraforge-" not in second  # a hit is not saved again
    assert len(list(cache.iterdir())) == 1


def test_issue_comment_command(tmp_path: Path) -> None:
    payload = load_fixture("github/issue_comment.created.on-issue.json")
    payload["comment"]["body"] = "/astraforge fix the empty cart crash"
    ws, server = setup(tmp_path, payload, "astraforge-comment.yml")
    with server, scripted(list(FIX)) as llm:
        result, artifacts = run_act(
            tmp_path, ws, "issue_comment", payload, "astraforge-comment.yml", server, llm
        )
    assert_fixed(result, artifacts, server, llm)
    request = json.loads(llm.requests[0].raw)["messages"][1]["content"]
    assert "Request: the empty cart crash" in request  # `fix` is the command verb


def test_repository_dispatch_from_the_relay(tmp_path: Path) -> None:
    alert = sentry_events.parse(
        load_fixture("sentry/event_alert.triggered.issue-alert.json"), "event_alert"
    )
    payload = load_fixture("github/repository_dispatch.json")
    payload["action"] = "astraforge-alert"
    payload["client_payload"] = forwarded.encode(alert)
    ws, server = setup(tmp_path, payload, "astraforge-alert.yml")
    with server, scripted(list(FIX)) as llm:
        result, artifacts = run_act(
            tmp_path, ws, "repository_dispatch", payload, "astraforge-alert.yml", server, llm
        )
    assert_fixed(result, artifacts, server, llm)


def test_workflow_dispatch_request(tmp_path: Path) -> None:
    payload = load_fixture("github/workflow_dispatch.json")
    payload["inputs"] = {"request": "Make average_price return 0 for an empty cart"}
    ws, server = setup(tmp_path, payload, "astraforge-request.yml")
    with server, scripted(list(FIX)) as llm:
        result, artifacts = run_act(
            tmp_path, ws, "workflow_dispatch", payload, "astraforge-request.yml", server, llm
        )
    assert_fixed(result, artifacts, server, llm)


@pytest.mark.parametrize("title", ['"; touch /tmp/pwned-title #', "$(touch /tmp/pwned-title)"])
def test_script_injection_in_titles_and_comments_creates_nothing(
    tmp_path: Path, title: str
) -> None:
    for marker in ("/tmp/pwned-title", "/tmp/pwned-comment"):
        Path(marker).unlink(missing_ok=True)
    payload = load_fixture("github/issue_comment.created.on-issue.json")
    payload["issue"]["title"] = title
    payload["comment"]["body"] = (
        "/astraforge fix $(touch /tmp/pwned-comment) `touch /tmp/pwned-comment`"
    )
    ws, server = setup(tmp_path, payload, "astraforge-comment.yml")
    with server, scripted([reply(call("finish", summary="nothing to do"))]) as llm:
        result, _ = run_act(
            tmp_path, ws, "issue_comment", payload, "astraforge-comment.yml", server, llm
        )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert not Path("/tmp/pwned-title").exists()
    assert not Path("/tmp/pwned-comment").exists()
    assert outputs(result.stdout + result.stderr)["conclusion"] == "no_change"


def test_a_pull_request_comment_continues_the_same_pull_request(tmp_path: Path) -> None:
    issue = load_fixture("github/issues.labeled.json")
    issue["label"]["name"] = "astraforge"
    issue["issue"]["title"] = "Average of an empty cart crashes"
    ws, server = setup(tmp_path, issue, "astraforge-issues.yml", "astraforge-pr.yml")
    comment = load_fixture("github/issue_comment.created.on-pull-request.written-from-schema.json")
    comment["comment"]["body"] = "/astraforge also make negative prices count as 0"
    with server:
        with scripted(list(FIX)) as llm:
            result, artifacts = run_act(
                tmp_path / "one", ws, "issues", issue, "astraforge-issues.yml", server, llm
            )
        assert_fixed(result, artifacts, server, llm)
        number = next(iter(server.pulls))
        comment["issue"]["number"] = number
        with scripted(list(FLOOR)) as llm:
            result, artifacts = run_act(
                tmp_path / "two", ws, "issue_comment", comment, "astraforge-pr.yml", server, llm
            )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert llm.calls == 2
    assert outputs(log)["conclusion"] == "fixed"
    assert list(server.pulls) == [number]
    pull = server.pulls[number]
    branch = subprocess.run(
        ["git", "-C", str(server.bare), "log", "--format=%s", pull["head"]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert branch[0] == "AstraForge round 2: also make negative prices count as 0"
    assert branch[1].startswith("Fix: Average of an empty cart crashes")
    assert "## Rounds" in pull["body"]
    assert TOKEN not in log
