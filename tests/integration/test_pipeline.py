"""`astraforge run` end to end: every exit path leaves a status, outputs and artifacts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests import samples
from tests.conftest import load_fixture
from tests.servers.github import FakeGitHub
from tests.servers.llm import ScriptedLLM, Step, call, error, reply, scripted

from astraforge.forges.local import LocalForge

TOKEN = "ghp_" + "PipelineTok" * 4
# The runner's own test: red before the fix, green after it.
TEST = "python3 -c 'from shop.cart import average_price; assert average_price([]) == 0'"
LLM_KEY = "sk-test-" + "PipeLlmKey" * 3
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
    reply(call("finish", summary="Guard the empty cart.", root_cause="division by zero")),
]


def make_checkout(tmp_path: Path) -> Path:
    files = {
        **samples.PY_FILES,
        ".astraforge.yml": "sandbox:\n  backend: bwrap\n"
        "model:\n  max_retries: 0\n"
        f"test_command: {TEST!r}\n",
        ".github/workflows/ci.yml": "on: push\n",
    }
    return samples.make_repo(tmp_path / "checkout", files)


def issue_event(
    tmp_path: Path, label: str = "astraforge", login: str = "Codertocat", user_type: str = "User"
) -> Path:
    payload = load_fixture("github/issues.labeled.json")
    payload["label"]["name"] = label
    payload["issue"]["title"] = "Average of an empty cart crashes"
    payload["sender"]["login"], payload["sender"]["type"] = login, user_type
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload))
    return path


def run(
    tmp_path: Path, llm: ScriptedLLM, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = tmp_path / "out"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI"))}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "astraforge",
            "run",
            "--out",
            str(out),
            "--base-url",
            llm.url,
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**base, "OPENAI_API_KEY": LLM_KEY, **(env or {})},
    )
    report = json.loads((out / "report.json").read_text())
    return result, report


def run_local(
    tmp_path: Path,
    llm: ScriptedLLM,
    checkout: Path,
    forge: LocalForge,
    *args: str,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`astraforge run` on the labeled-issue event, publishing to the local forge."""
    return run(
        tmp_path,
        llm,
        "--repo",
        str(checkout),
        "--forge",
        "local",
        "--forge-dir",
        str(forge.root),
        "--event",
        str(issue_event(tmp_path)),
        *args,
        env=env,
    )


def local(tmp_path: Path, checkout: Path) -> LocalForge:
    forge = LocalForge.init(tmp_path / "forge", checkout, "Codertocat/Hello-World")
    (forge.root / "permissions.json").write_text('{"Codertocat": "write"}')
    return forge


def test_fixed_on_the_local_forge(tmp_path: Path) -> None:
    checkout = make_checkout(tmp_path)
    forge = local(tmp_path, checkout)
    with scripted(list(FIX)) as llm:
        result, report = run_local(
            tmp_path,
            llm,
            checkout,
            forge,
        )
    assert result.returncode == 0, result.stderr
    assert report["conclusion"] == "fixed"
    assert report["pr_number"] == 1
    assert report["branch"].startswith("astraforge/github-1-")
    assert [c["passed"] for c in report["checks"]] == [True] * 6
    pull = json.loads((forge.root / "pulls" / "1.json").read_text())
    assert "Guard the empty cart." in pull["body"]
    assert "Fixes #1" in pull["body"]
    comments = forge.comments(1)
    assert len(comments) == 1
    assert "proposes a fix" in comments[0].body
    out = tmp_path / "out"
    for name in ("diff.patch", "trajectory.jsonl", "outcome.json", "summary.md"):
        assert (out / name).exists(), name
    assert "conclusion: fixed" in result.stdout
    assert (out / "summary.md").read_text().startswith("## AstraForge: fixed")


def test_not_a_trigger_is_skipped_without_a_model_call(tmp_path: Path) -> None:
    checkout = make_checkout(tmp_path)
    forge = local(tmp_path, checkout)
    with scripted([]) as llm:
        result, report = run(
            tmp_path,
            llm,
            "--repo",
            str(checkout),
            "--forge",
            "local",
            "--forge-dir",
            str(forge.root),
            "--event",
            str(issue_event(tmp_path, label="bug")),
        )
    assert result.returncode == 0
    assert report["conclusion"] == "skipped"
    assert "not the trigger label" in report["reason"]
    assert llm.calls == 0
    assert forge.comments(1) == []


@pytest.mark.parametrize(
    ("login", "user_type", "why"),
    [
        ("renovate[bot]", "Bot", "not on the exact list triggers.allowed_bots"),
        ("reader", "User", "'reader' has 'read' permission"),
        ("stranger", "User", "'stranger' has 'none' permission"),
    ],
)
def test_refused_before_any_model_call(
    tmp_path: Path, login: str, user_type: str, why: str
) -> None:
    checkout = make_checkout(tmp_path)
    server = FakeGitHub(tmp_path / "gh", TOKEN, "Codertocat/Hello-World")
    server.roles["reader"] = "read"
    server.seed(checkout)
    with server, scripted([]) as llm:
        result, report = run(
            tmp_path,
            llm,
            "--repo",
            str(checkout),
            "--forge",
            "github",
            "--event",
            str(issue_event(tmp_path, login=login, user_type=user_type)),
            env={"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": server.url},
        )
    assert llm.calls == 0
    assert result.returncode == 0
    if user_type == "Bot":
        assert report["conclusion"] == "skipped"  # the trigger decision already refuses bots
    else:
        assert report["conclusion"] == "refused"
        assert why in report["reason"]
        assert "did not run" in server.comments[1][0]["body"]
    assert server.pulls == {}


def test_blocked_by_the_policy_keeps_the_patch(tmp_path: Path) -> None:
    checkout = make_checkout(tmp_path)
    forge = local(tmp_path, checkout)
    script = [
        reply(call("write_file", path=".github/workflows/ci.yml", content="on: [push]\n")),
        reply(call("finish", summary="edited CI")),
    ]
    with scripted(script) as llm:
        result, report = run_local(
            tmp_path,
            llm,
            checkout,
            forge,
        )
    assert result.returncode == 8
    assert report["conclusion"] == "blocked"
    assert "paths.protected: .github/workflows/**" in report["reason"]
    assert "+on: [push]" in (tmp_path / "out" / "diff.patch").read_text()
    assert not (forge.root / "pulls").exists() or not list((forge.root / "pulls").iterdir())
    assert samples.git(forge.remote, "branch", "--list", "astraforge/*").strip() == ""
    assert "did not publish" in forge.comments(1)[0].body


@pytest.mark.parametrize(
    ("script", "conclusion", "code", "status"),
    [
        (
            [reply(call("finish", summary="The code is right; the report is wrong"))],
            "no_change",
            0,
            "made no change",
        ),
        ([error(500, retry_after="0")], "error", 7, "failed"),
    ],
)
def test_other_exit_paths_leave_a_status(
    tmp_path: Path, script: list[Step], conclusion: str, code: int, status: str
) -> None:
    checkout = make_checkout(tmp_path)
    forge = local(tmp_path, checkout)
    with scripted(script) as llm:
        result, report = run_local(
            tmp_path,
            llm,
            checkout,
            forge,
        )
    assert result.returncode == code, result.stderr
    assert report["conclusion"] == conclusion
    assert status in forge.comments(1)[0].body
    assert (tmp_path / "out" / "trajectory.jsonl").exists()
    if code:
        assert result.stderr.strip().splitlines()[-1].startswith("error: the model API")


def test_budget_exhausted(tmp_path: Path) -> None:
    checkout = make_checkout(tmp_path)
    forge = local(tmp_path, checkout)
    with scripted([], then=reply(call("shell", command="true"))) as llm:
        result, report = run_local(
            tmp_path,
            llm,
            checkout,
            forge,
            env={"ASTRAFORGE_MAX_TURNS": "2"},
        )
    assert result.returncode == 0
    assert report["conclusion"] == "budget_exhausted"
    assert llm.calls == 2
    assert "stopped" in forge.comments(1)[0].body


def test_dry_run_writes_nothing_then_the_hardened_publish_does(tmp_path: Path) -> None:
    checkout = make_checkout(tmp_path)
    server = FakeGitHub(tmp_path / "gh", TOKEN, "Codertocat/Hello-World")
    server.roles["Codertocat"] = "write"
    server.seed(checkout)
    env = {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": server.url}
    with server, scripted(list(FIX)) as llm:
        result, report = run(
            tmp_path,
            llm,
            "--repo",
            str(checkout),
            "--forge",
            "github",
            "--event",
            str(issue_event(tmp_path)),
            "--dry-run",
            env=env,
        )
        assert result.returncode == 0, result.stderr
        assert report["conclusion"] == "fixed"
        assert report["dry_run"] is True
        assert server.writes() == []
        published = subprocess.run(
            [
                sys.executable,
                "-m",
                "astraforge",
                "run",
                "--repo",
                str(checkout),
                "--forge",
                "github",
                "--publish-from",
                str(tmp_path / "out"),
                "--event",
                str(issue_event(tmp_path)),
                "--out",
                str(tmp_path / "pub"),
            ],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **env},
        )
    assert published.returncode == 0, published.stderr
    final = json.loads((tmp_path / "pub" / "report.json").read_text())
    assert final["conclusion"] == "fixed"
    assert final["pr_number"] == 100
    assert len(server.pulls) == 1
    assert "Guard the empty cart." in server.pulls[100]["body"]


def test_publish_from_refuses_a_tampered_patch(tmp_path: Path) -> None:
    checkout = make_checkout(tmp_path)
    forge = local(tmp_path, checkout)
    with scripted(list(FIX)) as llm:
        run_local(
            tmp_path,
            llm,
            checkout,
            forge,
            "--dry-run",
        )
    patch = tmp_path / "out" / "diff.patch"
    patch.write_text(patch.read_text().replace("if items else 0", "if items else 1"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "astraforge",
            "run",
            "--repo",
            str(checkout),
            "--forge",
            "local",
            "--forge-dir",
            str(forge.root),
            "--publish-from",
            str(tmp_path / "out"),
            "--event",
            str(issue_event(tmp_path)),
            "--out",
            str(tmp_path / "pub"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "does not match the report's diff hash" in result.stderr
    assert not (forge.root / "pulls").exists()


def test_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    checkout = make_checkout(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with scripted([]) as llm:
        result, report = run(
            tmp_path,
            llm,
            "--repo",
            str(checkout),
            "--forge",
            "local",
            "--forge-dir",
            str(tmp_path / "nowhere"),
            "--event",
            str(bad),
        )
    assert result.returncode == 4
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert report["conclusion"] == "error"


def test_hardened_publish_takes_the_requester_from_its_own_event(tmp_path: Path) -> None:
    """The publish job asks the forge about the sender of the event it was triggered by,
    never about the requester the agent job's report.json names."""
    checkout = make_checkout(tmp_path)
    forge = local(tmp_path, checkout)
    (forge.root / "permissions.json").write_text('{"Codertocat": "write", "reader": "read"}')
    with scripted(list(FIX)) as llm:
        run_local(tmp_path, llm, checkout, forge, "--dry-run")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["conclusion"] == "fixed"
    assert report["task"]["requester"]["login"] == "Codertocat"
    reader_event = issue_event(tmp_path / "publish-job", login="reader")
    published = subprocess.run(
        [
            sys.executable,
            "-m",
            "astraforge",
            "run",
            "--repo",
            str(checkout),
            "--forge",
            "local",
            "--forge-dir",
            str(forge.root),
            "--publish-from",
            str(tmp_path / "out"),
            "--event",
            str(reader_event),
            "--out",
            str(tmp_path / "pub"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    final = json.loads((tmp_path / "pub" / "report.json").read_text())
    assert final["conclusion"] == "refused", published.stderr
    assert "'reader' has 'read' permission" in final["reason"]
    assert not (forge.root / "pulls").exists()


def test_a_run_leaves_the_checkout_untouched(tmp_path: Path) -> None:
    """Without --out the artifacts go to the user's cache, never into the checkout."""
    checkout = make_checkout(tmp_path)
    forge = local(tmp_path, checkout)
    cache = tmp_path / "cache"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI"))}
    with scripted(list(FIX)) as llm:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "astraforge",
                "run",
                "--repo",
                str(checkout),
                "--forge",
                "local",
                "--forge-dir",
                str(forge.root),
                "--event",
                str(issue_event(tmp_path)),
                "--base-url",
                llm.url,
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=checkout,
            env={**base, "OPENAI_API_KEY": LLM_KEY, "XDG_CACHE_HOME": str(cache)},
        )
    assert result.returncode == 0, result.stderr
    assert samples.git(checkout, "status", "--porcelain") == ""
    reports = list((cache / "astraforge" / "runs").glob("*/report.json"))
    assert len(reports) == 1
    assert json.loads(reports[0].read_text())["conclusion"] == "fixed"
