"""One test per trigger rule, each on a real fixture changed only where the rule looks."""

from __future__ import annotations

from typing import Any

import pytest
from tests.conftest import load_fixture

from astraforge import events
from astraforge.config import TriggerConfig
from astraforge.policy.model import TriggerPolicy
from astraforge.task import Kind
from astraforge.trigger import COMMENT_MARKER, decide

CFG = TriggerConfig()


def _labeled(label: str, login: str = "Codertocat", user_type: str = "User") -> dict[str, Any]:
    payload = load_fixture("github/issues.labeled.json")
    payload["label"]["name"] = label
    payload["sender"].update(login=login, type=user_type)
    return payload


def _comment(body: str, login: str = "Codertocat") -> dict[str, Any]:
    payload = load_fixture("github/issue_comment.created.on-issue.json")
    payload["comment"]["body"] = body
    payload["comment"]["user"]["login"] = login
    return payload


def test_trigger_label_added_runs() -> None:
    decision = decide(events.parse(_labeled("astraforge")), CFG)
    assert decision.run
    assert "astraforge" in decision.reason


def test_other_label_added_does_not_run() -> None:
    decision = decide(events.parse(_labeled("bug")), CFG)
    assert not decision.run
    assert "'bug'" in decision.reason


def test_configured_label() -> None:
    cfg = TriggerConfig(label="autofix")
    assert decide(events.parse(_labeled("autofix")), cfg).run
    assert not decide(events.parse(_labeled("astraforge")), cfg).run


def test_issue_opened_with_label_runs_and_without_does_not() -> None:
    payload = load_fixture("github/issues.opened.json")
    assert not decide(events.parse(payload), CFG).run
    payload["issue"]["labels"].append({"name": "astraforge"})
    assert decide(events.parse(payload), CFG).run


def test_issue_edit_never_runs() -> None:
    payload = load_fixture("github/issues.edited.json")
    payload["issue"]["labels"].append({"name": "astraforge"})
    decision = decide(events.parse(payload), CFG)
    assert not decision.run
    assert "edited" in decision.reason


def test_command_comment_runs_with_instruction() -> None:
    task = events.parse(_comment("/astraforge fix the typo in README"))
    assert task.instruction == "the typo in README"
    decision = decide(task, CFG)
    assert decision.run
    assert "command" in decision.reason


def test_mention_comment_runs() -> None:
    task = events.parse(_comment("Hey @astraforge please look at the crash"))
    assert task.invocation == "mention"
    assert task.instruction == "Hey please look at the crash"
    assert decide(task, CFG).run


def test_quoted_mention_and_lookalike_handle_do_not_run() -> None:
    assert not decide(events.parse(_comment("> @astraforge do it\nno thanks")), CFG).run
    assert not decide(events.parse(_comment("ping @astraforge-team")), CFG).run
    assert not decide(events.parse(_comment("see /astraforgery")), CFG).run


def test_plain_comment_does_not_run() -> None:
    decision = decide(events.parse(_comment("Looks good")), CFG)
    assert not decision.run
    assert "/astraforge" in decision.reason


def test_configured_command_and_disabled_mention() -> None:
    cfg = TriggerConfig(command="/fixit", mention="")
    syntax = cfg.syntax()
    assert decide(events.parse(_comment("/fixit now"), syntax=syntax), cfg).run
    assert not decide(events.parse(_comment("@astraforge now"), syntax=syntax), cfg).run


def test_a_command_on_a_pull_request_is_a_follow_up() -> None:
    payload = _comment("/astraforge also handle negative prices")
    payload["issue"]["pull_request"] = {"url": "https://api.github.com/x/pulls/1"}
    task = events.parse(payload)
    assert task.kind is Kind.FOLLOW_UP
    decision = decide(task, CFG)
    assert decision.run
    assert "pull request #1" in decision.reason
    payload["comment"]["body"] = "looks good to me"
    assert not decide(events.parse(payload), CFG).run
    marked = _comment("<!-- astraforge:reply -->\n**AstraForge** /astraforge pushed abc")
    marked["issue"]["pull_request"] = {"url": "https://api.github.com/x/pulls/1"}
    own = decide(events.parse(marked), CFG)
    assert not own.run
    assert "written by AstraForge itself" in own.reason


def test_edited_comment_that_already_asked_does_not_run_again() -> None:
    payload = load_fixture("github/issue_comment.edited.json")
    payload["comment"]["body"] = "/astraforge fix it better"
    payload["changes"]["body"]["from"] = "/astraforge fix it"
    assert not decide(events.parse(payload), CFG).run
    payload["changes"]["body"]["from"] = "what do we do?"
    assert decide(events.parse(payload), CFG).run


def test_self_trigger_guard_own_account() -> None:
    decision = decide(events.parse(_labeled("astraforge", "astraforge[bot]", "Bot")), CFG)
    assert not decision.run
    assert "own account" in decision.reason


def test_self_trigger_guard_own_comment() -> None:
    body = f"/astraforge fix\n{COMMENT_MARKER}:status -->"
    decision = decide(events.parse(_comment(body, "someone")), CFG)
    assert not decision.run
    assert "AstraForge itself" in decision.reason


def test_unlisted_bot_is_not_trusted_and_listed_bot_is() -> None:
    payload = _labeled("astraforge", "renovate[bot]", "Bot")
    decision = decide(events.parse(payload), CFG)
    assert not decision.run
    assert "allowed_bots" in decision.reason
    assert decide(events.parse(payload), CFG, TriggerPolicy(allowed_bots=["renovate[bot]"])).run
    # the allow list is exact: a look-alike name does not pass
    lookalike = TriggerPolicy(allowed_bots=["Renovate[bot]"])
    assert not decide(events.parse(payload), CFG, lookalike).run


def test_bot_type_without_suffix_is_still_a_bot() -> None:
    decision = decide(events.parse(_labeled("astraforge", "deploybot", "Bot")), CFG)
    assert not decision.run


def test_denied_and_allowed_users() -> None:
    task = events.parse(_labeled("astraforge", "mallory"))
    assert not decide(task, CFG, TriggerPolicy(denied_users=["Mallory"])).run
    assert not decide(task, CFG, TriggerPolicy(allowed_users=["alice"])).run
    assert decide(task, CFG, TriggerPolicy(allowed_users=["alice", "mallory"])).run


def test_sentry_alert_runs_and_level_filter_applies() -> None:
    payload = load_fixture("sentry/error.created.json")
    assert decide(events.parse(payload), CFG).run
    payload["data"]["error"]["level"] = "warning"
    decision = decide(events.parse(payload), CFG)
    assert not decision.run
    assert "warning" in decision.reason
    assert decide(events.parse(payload), TriggerConfig(alert_levels=["warning", "error"])).run


def test_environment_filter() -> None:
    payload = load_fixture("sentry/error.created.json")
    payload["data"]["error"]["environment"] = "staging"
    cfg = TriggerConfig(environments=["production"])
    decision = decide(events.parse(payload), cfg)
    assert not decision.run
    assert "staging" in decision.reason
    payload["data"]["error"]["environment"] = "production"
    assert decide(events.parse(payload), cfg).run


@pytest.mark.parametrize("status", ["resolved", "ignored"])
def test_resolved_or_ignored_issue_does_not_run(status: str) -> None:
    payload = load_fixture("sentry/issue.created.json")
    payload["data"]["issue"]["status"] = status
    decision = decide(events.parse(payload), CFG)
    assert not decision.run
    assert status in decision.reason


def test_resolved_metric_alert_does_not_run() -> None:
    assert not decide(events.parse(load_fixture("sentry/metric_alert.resolved.json")), CFG).run


def test_sentry_comment_with_command_runs() -> None:
    payload = load_fixture("sentry/comment.created.json")
    assert not decide(events.parse(payload), CFG).run
    payload["data"]["comment"] = "/astraforge fix this please"
    assert decide(events.parse(payload), CFG).run


def test_dispatch_type_must_match() -> None:
    payload = load_fixture("github/repository_dispatch.json")
    payload["client_payload"] = {"request": "Fix the login page"}
    decision = decide(events.parse(payload), CFG)
    assert not decision.run
    assert "on-demand-test" in decision.reason
    payload["action"] = "astraforge"
    assert decide(events.parse(payload), CFG).run


def test_workflow_dispatch_request_runs_only_with_text() -> None:
    payload = load_fixture("github/workflow_dispatch.json")
    assert not decide(events.parse(payload), CFG).run
    payload["inputs"] = {"request": "Make the date parser accept ISO weeks"}
    task = events.parse(payload)
    assert task.title == "Make the date parser accept ISO weeks"
    assert decide(task, CFG).run


def test_gitlab_label_added_runs() -> None:
    payload = load_fixture("gitlab/issue_hook.issue.open.json")
    payload["changes"]["labels"]["current"].append({"title": "astraforge"})
    task = events.parse(payload)
    assert task.added_label == "Platform"  # the first label the change added
    payload["changes"]["labels"]["current"] = [{"title": "astraforge"}]
    task = events.parse(payload)
    assert task.added_label == "astraforge"
    assert decide(task, CFG).run
