"""The conversation on AstraForge's pull request, end to end on the local GitHub API server
with real git and the scripted model: a comment, review comments and a failed workflow run
each continue the same branch and the same PR; who may not, cannot."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests import samples
from tests.conftest import load_fixture
from tests.integration.test_pipeline import FIX, LLM_KEY, issue_event, make_checkout, run
from tests.servers.github import FakeGitHub
from tests.servers.llm import ScriptedLLM, Step, call, reply, scripted

TOKEN = "ghp_" + "ConvoToken" * 4
REPO = "Codertocat/Hello-World"
PR = 100  # the fake numbers pull requests from 100
NEGATIVE = [
    reply(
        call(
            "edit_file",
            path="shop/cart.py",
            old='    total = sum(item["price"] for item in items)',
            new='    items = [i for i in items if i["price"] >= 0]\n'
            '    total = sum(item["price"] for item in items)',
        )
    ),
    reply(call("finish", summary="Skip negative prices.", root_cause="no guard")),
]
NOTHING = [reply(call("finish", summary="The failure is a flaky network test.", root_cause="-"))]


class Site:
    """A checkout, the fake GitHub serving its remote, and a way to run AstraForge there."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.checkout = make_checkout(tmp_path)
        self.gh = FakeGitHub(tmp_path / "gh", TOKEN, REPO)
        self.gh.roles.update({"Codertocat": "write", "reader": "read"})
        self.gh.seed(self.checkout)
        self.runs = 0

    def env(self) -> dict[str, str]:
        return {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": self.gh.url}

    def run(
        self,
        event: dict[str, Any],
        script: list[Step],
        *args: str,
        env: dict[str, str] | None = None,
    ) -> tuple[dict[str, Any], ScriptedLLM, str]:
        """`astraforge run` on ``event``; (report, the model server, stderr)."""
        self.runs += 1
        folder = self.tmp / f"run{self.runs}"
        folder.mkdir()
        path = folder / "event.json"
        path.write_text(json.dumps(event))
        with scripted(list(script)) as llm:
            result, report = run(
                folder,
                llm,
                "--repo",
                str(self.checkout),
                "--forge",
                "github",
                "--event",
                str(path),
                *args,
                env={**self.env(), **(env or {})},
            )
        assert result.returncode in (0, 8), result.stderr
        return report, llm, result.stderr

    def first_run(self) -> str:
        """The issue's first run: PR #100 on AstraForge's branch; the branch name."""
        event = json.loads(issue_event(self.tmp / "issue").read_text())
        report, _, _ = self.run(event, FIX)
        assert report["conclusion"] == "fixed", report["reason"]
        assert report["pr_number"] == PR
        return str(report["branch"])

    def log(self, branch: str) -> list[dict[str, str]]:
        """The branch's commits on the remote, newest first: sha, parent, author, message."""
        out = subprocess.run(
            ["git", "-C", str(self.gh.bare), "log", "--format=%H %P%x00%ae%x00%B%x1e", branch],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        commits = []
        for record in out.split("\x1e"):
            if record.strip():
                shas, email, message = record.strip("\n").split("\x00", 2)
                sha, *parents = shas.split()
                commits.append(
                    {
                        "sha": sha,
                        "parent": parents[0] if parents else "",
                        "email": email,
                        "message": message,
                    }
                )
        return commits

    def show(self, branch: str, path: str) -> str:
        return subprocess.run(
            ["git", "-C", str(self.gh.bare), "show", f"{branch}:{path}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout


def pr_comment(body: str, login: str = "Codertocat", number: int = PR) -> dict[str, Any]:
    payload = load_fixture("github/issue_comment.created.on-pull-request.written-from-schema.json")
    payload["issue"]["number"] = number
    payload["issue"]["title"] = "Fix: Average of an empty cart crashes"
    payload["comment"]["body"] = body
    payload["comment"]["user"]["login"] = login
    payload["sender"]["login"] = login
    return payload


def prompt_of(llm: ScriptedLLM) -> str:
    """The user message of the run's first model request."""
    messages = llm.requests[0].body["messages"]
    return "\n".join(m["content"] for m in messages if m["role"] == "user")


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


def test_a_comment_adds_a_commit_to_the_same_pr_and_a_new_model_resumes(site: Site) -> None:
    with site.gh:
        branch = site.first_run()
        first = site.log(branch)[0]
        report, llm, _ = site.run(
            pr_comment("/astraforge also handle negative prices"),
            NEGATIVE,
            "--model",
            "another-model",
        )
        assert report["conclusion"] == "fixed", report["reason"]
        assert report["pr_number"] == PR
        assert len(site.gh.pulls) == 1  # the same PR, no second one
        second = site.log(branch)[0]
        assert second["parent"] == first["sha"]
        assert "AstraForge round 2: also handle negative prices" in second["message"]
        assert f"AstraForge-Fingerprint: github:{REPO}#1" in second["message"]
        assert 'if i["price"] >= 0' in site.show(branch, "shop/cart.py")
        # A different model resumed: it saw the first round, the branch's diff, the request.
        assert llm.requests[0].body["model"] == "another-model"
        prompt = prompt_of(llm)
        assert "Guard the empty cart." in prompt
        assert "+    return total / len(items) if items else 0" in prompt
        assert "also handle negative prices" in prompt
        body = site.gh.pulls[PR]["body"]
        assert "## Rounds" in body
        assert "| 2 | also handle negative prices | `Codertocat` | pushed |" in body
        assert "Guard the empty cart." in body  # the original summary stays on top
        assert "<!-- astraforge:thread " in body
        status = [c["body"] for c in site.gh.comments[PR]]
        assert len(status) == 1
        assert f"pushed `{second['sha'][:12]}` to this pull request (round 2)" in status[0]


def test_who_may_not_continue_a_pr_cannot(site: Site) -> None:
    with site.gh:
        branch = site.first_run()
        tip = site.log(branch)[0]["sha"]
        # A reader's command is refused before any model call.
        report, llm, _ = site.run(pr_comment("/astraforge delete the tests", login="reader"), [])
        assert report["conclusion"] == "refused"
        assert "'reader' has 'read' permission" in report["reason"]
        assert llm.calls == 0
        assert "did not run" in site.gh.comments[PR][-1]["body"]
        # AstraForge's own reply never triggers a run.
        own = "<!-- astraforge:reply -->\n**AstraForge** pushed `abc`: /astraforge again"
        report, llm, _ = site.run(pr_comment(own), [])
        assert report["conclusion"] == "skipped"
        assert llm.calls == 0
        # A PR whose head lives in a fork is refused, whoever asks.
        site.gh.pulls[PR]["head_repo"] = "mallory/Hello-World"
        report, llm, _ = site.run(pr_comment("/astraforge run my code"), [])
        assert report["conclusion"] == "refused"
        assert "comes from mallory/Hello-World" in report["reason"]
        assert llm.calls == 0
        # A same-repository PR AstraForge did not open is refused without the setting.
        site.gh.pulls[PR]["head_repo"] = REPO
        site.gh.pulls[PR]["head"] = "feature/other"
        subprocess.run(
            ["git", "-C", str(site.gh.bare), "branch", "feature/other", branch], check=True
        )
        report, llm, _ = site.run(pr_comment("/astraforge fix"), [])
        assert report["conclusion"] == "refused"
        assert "is not AstraForge's" in report["reason"]
        assert llm.calls == 0
        assert site.log(branch)[0]["sha"] == tip  # nothing was pushed


def test_a_human_commit_in_between_is_kept_and_built_on(site: Site, tmp_path: Path) -> None:
    with site.gh:
        branch = site.first_run()
        clone = tmp_path / "human"
        samples.git(tmp_path, "clone", "-q", "-b", branch, str(site.gh.bare), str(clone))
        (clone / "NOTES.md").write_text("A human was here.\n")
        samples.git(clone, "add", "NOTES.md")
        samples.git(clone, "commit", "-qm", "Add notes")
        samples.git(clone, "push", "-q", "origin", branch)
        human = site.log(branch)[0]
        assert human["email"] == "ada@example.com"
        # An unknown author's commit stops the follow-up ...
        report, llm, _ = site.run(pr_comment("/astraforge also handle negative prices"), [])
        assert report["conclusion"] == "refused"
        assert "neither AstraForge's nor by a known account" in report["reason"]
        assert llm.calls == 0
        # ... one by a collaborator with write permission does not.
        site.gh.logins["ada@example.com"] = "Codertocat"
        report, _, _ = site.run(pr_comment("/astraforge also handle negative prices"), NEGATIVE)
        assert report["conclusion"] == "fixed", report["reason"]
        top = site.log(branch)[0]
        assert top["parent"] == human["sha"]
        assert site.show(branch, "NOTES.md") == "A human was here.\n"


def review_event(review_id: int) -> dict[str, Any]:
    comment = load_fixture("github/pull_request_review_comment.created.json")
    pull = comment["pull_request"]
    pull["number"] = PR
    review = {
        "id": review_id,
        "body": "/astraforge please address these",
        "state": "commented",
        "user": comment["comment"]["user"],
        "author_association": "OWNER",
        "html_url": f"https://github.com/{REPO}/pull/{PR}#pullrequestreview-{review_id}",
    }
    return {
        "action": "submitted",
        "review": review,
        "pull_request": pull,
        "repository": comment["repository"],
        "sender": comment["sender"],
    }


def test_review_comments_are_in_the_prompt_and_answered_in_their_threads(site: Site) -> None:
    hunk = "@@ -4,3 +4,3 @@ def average_price(items):\n-    return total / len(items)\n"
    with site.gh:
        site.first_run()
        site.gh.reviews[77] = [
            {
                "id": 501,
                "review_id": 77,
                "body": "Name the zero: EMPTY_AVERAGE = 0",
                "path": "shop/cart.py",
                "line": 6,
                "diff_hunk": hunk,
            },
            {
                "id": 502,
                "review_id": 77,
                "body": "Say what an empty cart returns in the docstring",
                "path": "shop/cart.py",
                "line": 1,
                "diff_hunk": '@@ -1 +1 @@\n-"""Shopping',
            },
        ]
        script = [
            reply(
                call(
                    "edit_file",
                    path="shop/cart.py",
                    old='"""Shopping cart arithmetic."""',
                    new='"""Shopping cart arithmetic. An empty cart averages 0."""',
                )
            ),
            reply(call("finish", summary="Documented the empty cart.", root_cause="review")),
        ]
        report, llm, _ = site.run(review_event(77), script)
        assert report["conclusion"] == "fixed", report["reason"]
        prompt = prompt_of(llm)
        assert "### Review comment on shop/cart.py, line 6" in prompt
        assert "Name the zero: EMPTY_AVERAGE = 0" in prompt
        assert "-    return total / len(items)" in prompt  # the hunk
        assert "### Review comment on shop/cart.py, line 1" in prompt
        answered = sorted(r["in_reply_to_id"] for r in site.gh.replies)
        assert answered == [501, 502]
        assert all(r["body"].startswith("<!-- astraforge:reply -->") for r in site.gh.replies)
        assert "2 review comment(s)" in site.gh.pulls[PR]["body"]


def workflow_failure(branch: str, run_id: int) -> dict[str, Any]:
    payload = copy.deepcopy(load_fixture("github/workflow_run.completed.with-pull-requests.json"))
    run = payload["workflow_run"]
    run.update(
        {
            "id": run_id,
            "name": "tests",
            "conclusion": "failure",
            "head_branch": branch,
            "event": "pull_request",
        }
    )
    run["head_repository"]["full_name"] = REPO
    run["pull_requests"][0].update({"number": PR})
    run["pull_requests"][0]["head"]["ref"] = branch
    payload["repository"]["full_name"] = REPO
    return payload


LOG = (
    "2026-12-01T10:00:00.0000000Z ##[group]Run actions/checkout@v4\n"
    + "".join(f"2026-12-01T10:00:01.0000000Z setup line {i}\n" for i in range(400))
    + "2026-12-01T10:00:02.0000000Z ##[endgroup]\n"
    "2026-12-01T10:00:03.0000000Z \x1b[31mFAILED\x1b[0m tests/test_cart.py::test_negative_prices"
    " - AssertionError: assert -1.0 == 2\n"
    "2026-12-01T10:00:03.1000000Z ##[error]Process completed with exit code 1.\n"
)


def test_a_failed_workflow_run_is_fixed_then_stops_after_max_rounds(site: Site) -> None:
    with site.gh:
        branch = site.first_run()
        site.gh.runs[555] = {
            "name": "tests",
            "head_branch": branch,
            "jobs": [
                {"id": 9001, "name": "pytest", "conclusion": "failure", "log": LOG},
                {"id": 9002, "name": "lint", "conclusion": "success", "log": "ok\n"},
            ],
        }
        report, llm, _ = site.run(workflow_failure(branch, 555), NEGATIVE)
        assert report["conclusion"] == "fixed", report["reason"]
        prompt = prompt_of(llm)
        assert "### Failed job: pytest" in prompt
        assert "FAILED tests/test_cart.py::test_negative_prices" in prompt
        assert "\x1b[" not in prompt
        assert "2026-12-01T10:00:03" not in prompt
        assert "setup line 10\n" not in prompt  # the noise before the failure is cut
        assert "### Failed job: lint" not in prompt
        blob = [r for r in site.gh.requests if r.path.startswith("/_blobs/")]
        assert blob
        assert all("authorization" not in r.headers for r in blob)
        # A second CI round that finds nothing to change still counts, and says why ...
        tip = site.log(branch)[0]["sha"]
        report, llm, _ = site.run(workflow_failure(branch, 555), NOTHING)
        assert report["conclusion"] == "no_change"
        assert site.log(branch)[0]["sha"] == tip  # no empty commit
        status = site.gh.comments[PR][-1]["body"]
        assert "made no change: The failure is a flaky network test." in status
        assert "| ci |" not in site.gh.pulls[PR]["body"]  # rounds list requests, not kinds
        assert site.gh.pulls[PR]["body"].count("CI: tests failed (pytest)") == 2
        # ... and the third is refused without a model call, saying so on the PR.
        report, llm, _ = site.run(workflow_failure(branch, 555), [])
        assert report["conclusion"] == "refused"
        assert "2 automatic CI fix attempt(s)" in report["reason"]
        assert llm.calls == 0
        assert "ci_fix.max_rounds: 2" in site.gh.comments[PR][-1]["body"]
        # A comment can still ask for more.
        report, llm, _ = site.run(pr_comment("/astraforge try once more"), NOTHING)
        assert report["conclusion"] == "no_change"
        assert llm.calls == 1


def test_a_failed_check_run_of_another_ci_is_fixed_from_its_annotations(site: Site) -> None:
    with site.gh:
        branch = site.first_run()
        event = copy.deepcopy(load_fixture("github/check_run.completed.json"))
        check = event["check_run"]
        check.update({"id": 4242, "name": "lint", "conclusion": "failure"})
        check["check_suite"]["head_branch"] = branch
        check["pull_requests"][0]["number"] = PR
        check["pull_requests"][0]["head"]["ref"] = branch
        event["repository"]["full_name"] = REPO
        site.gh.checks[4242] = {
            "name": "lint",
            "output": {"title": "1 error", "summary": "ruff found 1 error", "text": None},
            "annotations": [
                {
                    "path": "shop/cart.py",
                    "start_line": 5,
                    "end_line": 5,
                    "annotation_level": "failure",
                    "title": "E731",
                    "message": "negative prices are not ignored",
                }
            ],
        }
        report, llm, _ = site.run(event, NEGATIVE)
        assert report["conclusion"] == "fixed", report["reason"]
        prompt = prompt_of(llm)
        assert "### Failed job: lint" in prompt
        assert "failure: shop/cart.py:5: E731 negative prices are not ignored" in prompt
        assert len(site.log(branch)) == 3  # the initial commit, the fix, this round


def test_a_successful_run_or_another_workflow_is_skipped(site: Site) -> None:
    with site.gh:
        branch = site.first_run()
        event = workflow_failure(branch, 556)
        event["workflow_run"]["conclusion"] = "success"
        report, llm, _ = site.run(event, [])
        assert report["conclusion"] == "skipped"
        assert "not failed" in report["reason"]
        report, llm, _ = site.run(
            workflow_failure(branch, 556), [], env={"ASTRAFORGE_CI_FIX_WORKFLOWS": "build,lint"}
        )
        assert report["conclusion"] == "skipped"
        assert "not in ci_fix.workflows" in report["reason"]
        assert llm.calls == 0


def test_llm_key_never_reaches_the_forge(site: Site) -> None:
    with site.gh:
        site.first_run()
        site.run(pr_comment("/astraforge also handle negative prices"), NEGATIVE)
    for request in site.gh.requests:
        assert LLM_KEY not in json.dumps(request.headers)
        assert LLM_KEY.encode() not in request.body


GITLAB_TOKEN = "glpat-" + "ConvoLabTok" * 2
TRACE = (
    "\x1b[0Ksection_start:1733000000:prepare_script\r\x1b[0KPreparing\n"
    + "".join(f"installing package {i}\n" for i in range(300))
    + "\x1b[0Ksection_end:1733000001:prepare_script\r\x1b[0K\n"
    "\x1b[31;1mFAILED tests/test_cart.py::test_negative_prices - AssertionError\x1b[0m\n"
    "ERROR: Job failed: exit code 1\n"
)


def test_gitlab_pipeline_failure_and_a_diff_note_continue_the_merge_request(
    tmp_path: Path,
) -> None:
    from tests.servers.gitlab import FakeGitLab

    checkout = make_checkout(tmp_path)
    gl = FakeGitLab(tmp_path / "gl", GITLAB_TOKEN, "gitlabhq/gitlab-test")
    gl.add_member("root", 40)
    gl.seed(checkout)
    env = {"GITLAB_TOKEN": GITLAB_TOKEN, "CI_SERVER_URL": gl.url}
    site = Site.__new__(Site)
    site.tmp, site.checkout, site.runs = tmp_path, checkout, 0

    def run_gitlab(event: dict[str, Any], script: list[Step]) -> tuple[dict[str, Any], ScriptedLLM]:
        site.runs += 1
        folder = tmp_path / f"lab{site.runs}"
        folder.mkdir()
        (folder / "event.json").write_text(json.dumps(event))
        with scripted(list(script)) as llm:
            result, report = run(
                folder,
                llm,
                "--repo",
                str(checkout),
                "--forge",
                "gitlab",
                "--event",
                str(folder / "event.json"),
                env=env,
            )
        assert result.returncode == 0, result.stderr
        return report, llm

    def log(branch: str) -> list[str]:
        out = subprocess.run(
            ["git", "-C", str(gl.bare), "log", "--format=%H %P", branch],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return out.splitlines()

    with gl:
        issue = load_fixture("gitlab/issue_hook.issue.open.json")
        issue["changes"]["labels"]["current"] = [{"title": "astraforge"}]
        issue["labels"] = [{"title": "astraforge"}]
        issue["object_attributes"]["title"] = "Average of an empty cart crashes"
        report, _ = run_gitlab(issue, FIX)
        assert report["conclusion"] == "fixed", report["reason"]
        branch, iid = report["branch"], report["pr_number"]
        first = log(branch)[0].split()[0]

        pipeline = load_fixture("gitlab/pipeline_hook.json")
        pipeline["project"]["path_with_namespace"] = "gitlabhq/gitlab-test"
        pipeline["object_attributes"].update({"id": 31, "status": "failed", "ref": branch})
        pipeline["merge_request"].update(
            {"iid": iid, "source_branch": branch, "source_project_id": 42, "target_project_id": 42}
        )
        gl.pipelines[31] = [
            {"id": 378, "name": "test-build", "status": "failed", "trace": TRACE},
            {"id": 377, "name": "test-image", "status": "success", "trace": "ok\n"},
        ]
        report, llm = run_gitlab(pipeline, NEGATIVE)
        assert report["conclusion"] == "fixed", report["reason"]
        assert report["pr_number"] == iid
        assert len(gl.mrs) == 1
        head, parent = log(branch)[0].split()
        assert parent == first
        prompt = prompt_of(llm)
        assert "### Failed job: test-build" in prompt
        assert "FAILED tests/test_cart.py::test_negative_prices" in prompt
        assert "section_start" not in prompt
        assert "installing package 10\n" not in prompt
        assert gl.push_options()[-1] == ["ci.skip"]
        assert "CI: Pipeline for branch: master failed (test-build)" in gl.mrs[iid]["description"]
        mr_status = [n["body"] for n in gl.mr_notes[iid]]
        assert len(mr_status) == 1
        assert f"pushed `{head[:12]}`" in mr_status[0]

        note = load_fixture("gitlab/note_hook.comment-on-merge-request.json")
        note["project"]["path_with_namespace"] = "gitlabhq/gitlab-test"
        note["merge_request"].update(
            {"iid": iid, "source_branch": branch, "source_project_id": 42, "target_project_id": 42}
        )
        note["object_attributes"].update(
            {
                "note": "/astraforge name the zero",
                "type": "DiffNote",
                "discussion_id": "6a9c1750b37d513a43987b574953fceb50b03ce7",
                "position": {"new_path": "shop/cart.py", "new_line": 6, "old_path": "shop/cart.py"},
            }
        )
        script = [
            reply(call("edit_file", path="shop/cart.py", old="else 0", new="else EMPTY")),
            reply(
                call(
                    "edit_file",
                    path="shop/cart.py",
                    old='"""Shopping cart arithmetic."""',
                    new='"""Shopping cart arithmetic."""\n\nEMPTY = 0',
                )
            ),
            reply(call("finish", summary="Named the zero.", root_cause="review")),
        ]
        report, llm = run_gitlab(note, script)
        assert report["conclusion"] == "fixed", report["reason"]
        prompt = prompt_of(llm)
        assert "### Review comment on shop/cart.py, line 6" in prompt
        assert "+    return total / len(items) if items else 0" in prompt  # the computed hunk
        assert [r["discussion"] for r in gl.discussion_replies] == [
            "6a9c1750b37d513a43987b574953fceb50b03ce7"
        ]
        assert gl.discussion_replies[0]["body"].startswith("<!-- astraforge:reply -->")
