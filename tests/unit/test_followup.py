"""The pieces of a follow-up that need no server: events about PRs and CI read into Tasks,
the PR's hidden state, and the failing part of a CI log."""

from __future__ import annotations

import base64
import copy
import zlib
from typing import Any

from tests.conftest import load_fixture

from astraforge import events, tokens
from astraforge.config import CIFixConfig, TriggerConfig
from astraforge.context.ci_log import excerpt, plain
from astraforge.followup.state import ThreadState, decode, encode, replace, replace_section
from astraforge.task import Kind, Round
from astraforge.trigger import decide

CFG = TriggerConfig()


def test_a_review_comment_carries_its_file_line_hunk_and_pull_request() -> None:
    payload = load_fixture("github/pull_request_review_comment.created.json")
    task = events.parse(payload)
    assert task.kind is Kind.FOLLOW_UP
    assert task.pull is not None
    assert (task.pull.number, task.pull.head, task.pull.base) == (2, "changes", "master")
    assert task.pull.head_repo == "Codertocat/Hello-World"
    [note] = task.review
    assert (note.path, note.line, note.id) == ("README.md", 265, 284312630)
    assert note.diff_hunk == "@@ -1 +1 @@\n-# Hello-World"
    assert not decide(task, CFG).run  # no command in it
    payload["comment"]["body"] = "@astraforge use fewer emoji here"
    assert decide(events.parse(payload), CFG).run


def _review(body: str, action: str = "submitted") -> dict[str, Any]:
    comment = load_fixture("github/pull_request_review_comment.created.json")
    return {
        "action": action,
        "review": {"id": 9, "body": body, "state": "commented", "user": comment["sender"]},
        "pull_request": comment["pull_request"],
        "repository": comment["repository"],
        "sender": comment["sender"],
    }


def test_a_submitted_review_asks_for_its_comments() -> None:
    task = events.parse(_review("/astraforge address these"))
    assert task.kind is Kind.FOLLOW_UP
    assert (task.review_id, task.review) == (9, [])
    decision = decide(task, CFG)
    assert decision.run
    assert "review on pull request #2" in decision.reason
    edited = decide(events.parse(_review("/astraforge address these", "edited")), CFG)
    assert not edited.run
    assert "only a submitted review" in edited.reason


def _workflow_run(**changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(load_fixture("github/workflow_run.completed.with-pull-requests.json"))
    payload["workflow_run"].update(changes)
    return payload


def test_a_failed_workflow_run_becomes_a_ci_task_the_filters_decide() -> None:
    task = events.parse(_workflow_run(conclusion="failure", name="tests"))
    assert task.kind is Kind.CI_FAILURE
    assert task.ci is not None
    assert (task.ci.id, task.ci.workflow, task.ci.head_branch) == (289782451, "tests", "master")
    assert task.ci.head_repo == "octo-org/octo-repo"
    assert task.pull is not None
    assert task.pull.number == 2
    assert decide(task, CFG).run
    only_build = CIFixConfig(workflows=["build"])
    assert "not in ci_fix.workflows" in decide(task, CFG, ci_fix=only_build).reason
    assert not decide(task, CFG, ci_fix=CIFixConfig(max_rounds=0)).run
    passed = decide(events.parse(_workflow_run(conclusion="success")), CFG)
    assert not passed.run
    assert "not failed" in passed.reason
    requested = _workflow_run(conclusion=None, status="queued")
    requested["action"] = "requested"
    assert "only a completed run" in decide(events.parse(requested), CFG).reason


def test_a_check_run_of_another_ci_app_is_a_ci_task() -> None:
    payload = copy.deepcopy(load_fixture("github/check_run.completed.json"))
    payload["check_run"]["conclusion"] = "failure"
    payload["check_run"]["output"].update({"title": "2 lint errors", "summary": "E501 in app.py"})
    task = events.parse(payload)
    assert task.ci is not None
    assert task.ci.provider == "github_checks"
    assert task.ci.head_repo == "Codertocat/Hello-World"  # the PR's head repo id matches
    assert task.ci.jobs[0].excerpt == "2 lint errors\n\nE501 in app.py"
    assert decide(task, CFG).run
    payload["check_run"]["app"]["name"] = "GitHub Actions"
    actions = decide(events.parse(payload), CFG)
    assert not actions.run
    assert "workflow_run" in actions.reason
    payload["check_run"]["pull_requests"][0]["head"]["repo"]["id"] = 1
    forked = events.parse(payload)
    assert forked.pull is not None
    assert forked.pull.head_repo is None  # a fork: the runner refuses it


def test_gitlab_diff_notes_and_failed_pipelines() -> None:
    note = load_fixture("gitlab/note_hook.comment-on-merge-request.json")
    note["object_attributes"].update(
        {
            "note": "/astraforge rename this",
            "type": "DiffNote",
            "discussion_id": "abc123",
            "position": {"new_path": "app.py", "new_line": 12, "old_path": "app.py"},
        }
    )
    task = events.parse(note)
    assert task.kind is Kind.FOLLOW_UP
    assert task.fingerprint == "gitlab:gitlab-org/gitlab-test!1"  # MRs apart from issues
    assert task.pull is not None
    assert (task.pull.head, task.pull.head_repo) == ("master", "gitlab-org/gitlab-test")
    [review] = task.review
    assert (review.path, review.line, review.thread) == ("app.py", 12, "abc123")
    hook = load_fixture("gitlab/pipeline_hook.json")
    hook["object_attributes"]["status"] = "failed"
    failed = events.parse(hook)
    assert failed.kind is Kind.CI_FAILURE
    assert failed.ci is not None
    assert [job.name for job in failed.ci.jobs] == ["test-build"]
    assert decide(failed, CFG).run
    hook["object_attributes"]["source"] = "trigger"
    own = decide(events.parse(hook), CFG)
    assert not own.run
    assert "trigger" in own.reason


def test_the_state_round_trips_and_a_tampered_one_is_ignored() -> None:
    state = ThreadState(
        fingerprint="github:o/r#1",
        title="Crash",
        body="text",
        rounds=[Round(number=1, kind="first", request="Crash", result="pushed")],
    )
    body = "## Summary\n\nx\n\n" + encode(state) + "\n"
    assert decode(body) == state
    later = state.model_copy(update={"rounds": [*state.rounds, Round(number=2, kind="ci")]})
    replaced = replace(body, later)
    assert replaced.count("astraforge:thread") == 1
    assert decode(replaced) == later
    assert decode("<!-- astraforge:thread bm90IHpsaWI= -->") is None  # not zlib
    bomb = base64.urlsafe_b64encode(zlib.compress(b"[" * 10_000_000)).decode()
    assert decode(f"<!-- astraforge:thread {bomb} -->") is None  # capped, then invalid
    assert decode("no state here") is None


def test_the_rounds_section_is_replaced_in_place() -> None:
    body = "## Summary\n\n<!-- astraforge:rounds -->\nold\n<!-- /astraforge:rounds -->\nrest\n"
    assert replace_section(
        body, "<!-- astraforge:rounds -->\nnew\n<!-- /astraforge:rounds -->\n"
    ) == ("## Summary\n\n<!-- astraforge:rounds -->\nnew\n<!-- /astraforge:rounds -->\nrest\n")
    fresh = replace_section("text\n\n<!-- astraforge:thread x -->\n", "SECTION\n")
    assert fresh.index("SECTION") < fresh.index("astraforge:thread")


GITHUB_LOG = (
    "\ufeff2026-12-01T10:00:00.0000000Z ##[group]Run pip install -e .\n"
    + "".join(f"2026-12-01T10:00:01.0000000Z Collecting package-{i}\n" for i in range(3000))
    + "2026-12-01T10:00:02.0000000Z ##[endgroup]\n"
    "2026-12-01T10:00:03.0000000Z \x1b[1m_____ test_total _____\x1b[0m\n"
    "2026-12-01T10:00:03.0000000Z     def test_total():\n"
    "2026-12-01T10:00:03.0000000Z >       assert total([-1, 3]) == 3\n"
    "2026-12-01T10:00:03.0000000Z E       AssertionError: assert 2 == 3\n"
    + "".join(f"2026-12-01T10:00:04.0000000Z teardown {i}\n" for i in range(100))
    + "2026-12-01T10:00:05.0000000Z FAILED tests/test_cart.py::test_total - AssertionError\n"
    "2026-12-01T10:00:05.0000000Z ##[error]Process completed with exit code 1.\n"
)


def test_the_failing_part_of_a_log_is_kept_within_the_budget() -> None:
    text = excerpt(GITHUB_LOG, 600)
    assert tokens.count(text) <= 700
    assert "E       AssertionError: assert 2 == 3" in text
    assert "FAILED tests/test_cart.py::test_total" in text
    assert "Process completed with exit code 1." in text
    assert "Collecting package-10\n" not in text
    assert "2026-12-01T" not in text
    assert "\x1b[" not in text
    assert text.startswith("[... ")  # the cut is marked
    tiny = excerpt(GITHUB_LOG, 200)
    assert "FAILED tests/test_cart.py::test_total" in tiny  # the end of the log stays


def test_gitlab_traces_lose_their_section_markers() -> None:
    trace = (
        "\x1b[0Ksection_start:1700000000:step_script\r\x1b[0K\x1b[32;1mRunning\x1b[0;m\n"
        "progress 10%\rprogress 100%\n"
        "\x1b[0Ksection_end:1700000001:step_script\r\x1b[0K\n"
    )
    assert plain(trace) == ["Running", "progress 100%"]
