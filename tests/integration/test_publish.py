"""Publishing on GitHub, GitLab (local servers implementing the REST endpoints, driven by the
real PyGithub and python-gitlab, git pushed over real smart HTTP) and the local forge."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests import samples
from tests.conftest import load_fixture
from tests.servers.github import FakeGitHub
from tests.servers.gitlab import FakeGitLab

from astraforge.agent.outcome import Outcome, Status, TestRun, file_changes, sha256
from astraforge.branches import PushRejected
from astraforge.ci.log import GitHubActions
from astraforge.config import PublishConfig
from astraforge.errors import ForgeError
from astraforge.events import github as github_events
from astraforge.forges.base import Forge
from astraforge.forges.github import GitHubForge
from astraforge.forges.gitlab import GitLabForge
from astraforge.forges.local import LocalForge
from astraforge.publish import (
    Links,
    Published,
    branch_name,
    post_status,
    publish,
    status_text,
    texts,
)
from astraforge.redact import Redactor
from astraforge.sandbox.base import Changes
from astraforge.task import Task

TOKEN = "ghp_" + "CanaryToken1" * 3
RUN = Links(run="https://ci.example.com/jobs/7", trajectory="https://ci.example.com/jobs/7/a")


@dataclass
class Site:
    kind: str
    forge: Forge
    writes: Callable[[], list[str]]
    pulls: Callable[[], list[dict[str, Any]]]
    comments: Callable[[int], list[str]]
    branches: Callable[[], list[str]]
    server: Any = None


def bare_branches(bare: Path) -> list[str]:
    out = samples.git(bare, "for-each-ref", "--format=%(refname:short)", "refs/heads")
    return sorted(out.split())


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return samples.make_repo(tmp_path / "shop", samples.PY_FILES)


@contextlib.contextmanager
def open_site(kind: str, tmp_path: Path, checkout: Path) -> Iterator[Site]:
    if kind == "github":
        gh = FakeGitHub(tmp_path / "gh", TOKEN)
        gh.seed(checkout)
        with gh:
            forge = GitHubForge("octo/shop", TOKEN, gh.url, throttle=False, rate_limit_wait=5)
            yield Site(
                kind,
                forge,
                gh.writes,
                lambda: list(gh.pulls.values()),
                lambda n: [c["body"] for c in gh.comments.get(n, [])],
                lambda: bare_branches(gh.bare),
                gh,
            )
    elif kind == "gitlab":
        gl = FakeGitLab(tmp_path / "gl", TOKEN)
        gl.seed(checkout)
        with gl:
            forge = GitLabForge("acme/shop", TOKEN, gl.url)
            yield Site(
                kind,
                forge,
                gl.writes,
                lambda: list(gl.mrs.values()),
                lambda n: [c["body"] for c in gl.notes.get(n, [])],
                lambda: bare_branches(gl.bare),
                gl,
            )
    else:
        local = LocalForge.init(tmp_path / "forge", checkout, "local/shop")
        writes_seen: list[str] = []

        def writes() -> list[str]:
            state = sorted(p.name + p.read_text() for p in (tmp_path / "forge").rglob("*.json"))
            refs = samples.git(local.remote, "for-each-ref")
            writes_seen.append(repr((state, refs)))
            return [str(i) for i in range(len(set(writes_seen)) - 1)]

        yield Site(
            kind,
            local,
            writes,
            lambda: [
                json.loads(p.read_text())
                for p in sorted((tmp_path / "forge" / "pulls").glob("*.json"))
            ],
            lambda n: [c.body for c in local.comments(n)],
            lambda: bare_branches(local.remote),
        )


@pytest.fixture(params=["github", "gitlab", "local"])
def site(request: pytest.FixtureRequest, tmp_path: Path, checkout: Path) -> Iterator[Site]:
    with open_site(str(request.param), tmp_path, checkout) as opened:
        yield opened


@pytest.fixture(params=["github", "gitlab"])
def remote_site(request: pytest.FixtureRequest, tmp_path: Path, checkout: Path) -> Iterator[Site]:
    """The forges reached over HTTP with a token."""
    with open_site(str(request.param), tmp_path, checkout) as opened:
        yield opened


def make_change(checkout: Path, new_line: str) -> tuple[str, str]:
    """(base commit, patch) for replacing the cart's division."""
    base = samples.git(checkout, "rev-parse", "HEAD").strip()
    cart = checkout / "shop" / "cart.py"
    original = cart.read_text()
    cart.write_text(original.replace("    return total / len(items)", new_line))
    patch = samples.git(checkout, "diff", "--binary")
    cart.write_text(original)
    return base, patch


def outcome_for(patch: str, summary: str) -> Outcome:
    after = TestRun(
        phase="after", command="pytest -q", exit_code=0, passed=True, seconds=0.4, output="1 passed"
    )
    before = after.model_copy(update={"phase": "before", "exit_code": 1, "passed": False})
    return Outcome(
        status=Status.FIXED,
        reason="the agent finished with a change",
        summary=summary,
        root_cause="an empty cart divides by zero",
        tests_before=before,
        tests_after=after,
        diff_sha256=sha256(patch),
        files=file_changes(Changes(modified=["shop/cart.py"], patch=patch)),
        usage={"turns": 4, "total_tokens": 2310, "cost_usd": 0.0123},
        model={"name": "gpt-4.1", "api": "openai"},
        run_id="r1",
    )


def issue_task() -> Task:
    return github_events.parse(load_fixture("github/issues.labeled.json"), "issues")


def run_once(site: Site, checkout: Path, task: Task, line: str, summary: str) -> Published:
    base, patch = make_change(checkout, line)
    outcome = outcome_for(patch, summary)
    result = publish(
        site.forge,
        checkout,
        task,
        texts(task, outcome, RUN),
        patch,
        base_commit=base,
        config=PublishConfig(),
    )
    post_status(
        site.forge,
        task,
        status_text("fixed", task=task, links=RUN, outcome=outcome, published=result),
    )
    return result


def test_three_publishes_give_one_branch_one_pr_one_comment_and_no_writes_at_the_end(
    site: Site, checkout: Path
) -> None:
    task = issue_task()
    assert task.number is not None
    first = run_once(site, checkout, task, "    return total / max(len(items), 1)", "Guard.")
    assert first.created
    assert first.pushed
    second = run_once(
        site,
        checkout,
        task,
        "    return total / len(items) if items else 0",
        "Return 0 for an empty cart.",
    )
    assert second.updated
    assert second.pushed
    assert not second.created
    before = list(site.writes())
    third = run_once(
        site,
        checkout,
        task,
        "    return total / len(items) if items else 0",
        "Return 0 for an empty cart.",
    )
    assert (third.pushed, third.created, third.updated, third.writes) == (False, False, False, [])
    assert site.writes() == before  # zero writes, as the servers saw it
    assert first.branch == second.branch == third.branch == branch_name(task, "astraforge")
    assert [b for b in site.branches() if b.startswith("astraforge/")] == [first.branch]
    pulls = site.pulls()
    assert len(pulls) == 1
    body = pulls[0].get("body", pulls[0].get("description"))
    assert "Return 0 for an empty cart." in body
    assert "| `shop/cart.py` | modified | +1 −1 |" in body
    assert "| before the change | `pytest -q` | failed (exit 1) |" in body
    assert "| after the change | `pytest -q` | passed |" in body
    assert "[CI log of the run](https://ci.example.com/jobs/7)" in body
    assert "4 turns, 2310 tokens, $0.0123" in body
    assert f"Fixes #{task.number}" in body or f"Closes #{task.number}" in body
    status = site.comments(task.number)
    assert len(status) == 1
    assert status[0].startswith("<!-- astraforge:status -->")
    assert "proposes a fix" in status[0]
    assert first.branch in status[0]


def test_concurrent_publishes_of_one_task_give_one_pr(site: Site, checkout: Path) -> None:
    task = issue_task()
    base, patch = make_change(checkout, "    return total / len(items) if items else 0")
    outcome = outcome_for(patch, "Return 0 for an empty cart.")
    results: list[Published | BaseException] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        barrier.wait()
        try:
            results.append(
                publish(
                    site.forge,
                    checkout,
                    task,
                    texts(task, outcome, RUN),
                    patch,
                    base_commit=base,
                    config=PublishConfig(),
                )
            )
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(r, Published) for r in results), results
    assert len(site.pulls()) == 1
    numbers = {r.pr.number for r in results if isinstance(r, Published) and r.pr}
    assert len(numbers) == 1


def test_the_token_stays_out_of_git_config_logs_and_bodies(
    remote_site: Site, checkout: Path, tmp_path: Path
) -> None:
    site = remote_site
    leftovers = set(Path(tempfile.gettempdir()).glob("astraforge-work-*"))
    stream = io.StringIO()
    ci = GitHubActions({"GITHUB_OUTPUT": str(tmp_path / "out")}, Redactor([TOKEN]), stream)
    ci.mask(TOKEN)
    task = issue_task()
    result = run_once(site, checkout, task, "    return 0", "Zero.")
    ci.info(f"published {result.branch} with token {TOKEN}")  # a careless log line
    log = stream.getvalue()
    assert f"::add-mask::{TOKEN}" in log
    assert log.count(TOKEN) == 1  # only inside the add-mask command
    assert TOKEN not in (checkout / ".git" / "config").read_text()
    assert set(Path(tempfile.gettempdir()).glob("astraforge-work-*")) == leftovers
    for pull in site.pulls():
        assert TOKEN not in json.dumps(pull)
    server = site.server
    assert all(TOKEN not in r.path for r in server.requests)
    pushes = [r for r in server.requests if r.path.endswith("git-receive-pack")]
    if site.kind == "github":  # written through the API: the token only in its header
        updates = [r for r in server.requests if r.path == "/graphql"]
        assert updates
        assert not pushes
        assert updates[0].headers["authorization"] in (f"token {TOKEN}", f"Bearer {TOKEN}")
        assert all(TOKEN not in r.body.decode() for r in server.requests)
    else:
        assert pushes
        assert pushes[0].headers["authorization"].startswith("Basic ")


def test_push_rejected_by_the_remote_is_a_clear_error(site: Site, checkout: Path) -> None:
    bare = site.server.bare if site.server else site.forge.remote  # type: ignore[attr-defined]
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch hook declined' >&2\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(PushRejected) as raised:
        run_once(site, checkout, issue_task(), "    return 0", "Zero.")
    assert "pushing astraforge/github-" in raised.value.message
    assert "the patch is kept" in raised.value.one_line()
    assert site.pulls() == []


def test_a_branch_with_someone_elses_commits_is_not_overwritten(
    site: Site, checkout: Path, tmp_path: Path
) -> None:
    task = issue_task()
    first = run_once(site, checkout, task, "    return 0", "Zero.")
    human = tmp_path / "human"
    bare = site.server.bare if site.server else site.forge.remote  # type: ignore[attr-defined]
    samples.git(tmp_path, "clone", "-q", "-b", first.branch, str(bare), str(human))
    (human / "NOTES.md").write_text("reviewer tweak\n")
    samples.git(human, "add", "-A")
    samples.git(human, "commit", "-qm", "Reviewer tweak")
    samples.git(human, "push", "-q", "origin", first.branch)
    with pytest.raises(PushRejected, match="not made by AstraForge"):
        run_once(site, checkout, task, "    return 1", "One.")


def test_a_lost_push_race_is_retried_on_the_new_tip(remote_site: Site, checkout: Path) -> None:
    """Another run of the same task pushes between our look at the branch and our push."""
    site = remote_site
    task = issue_task()
    base, other_patch = make_change(checkout, "    return -1")
    other = outcome_for(other_patch, "Other run.")
    fired: list[str] = []

    def concurrent_run(path: str) -> None:
        if fired:
            return
        fired.append(path)
        site.server.before_push.clear()
        publish(
            site.forge,
            checkout,
            task,
            texts(task, other, RUN),
            other_patch,
            base_commit=base,
            config=PublishConfig(),
        )

    site.server.before_push.append(concurrent_run)
    result = run_once(site, checkout, task, "    return 0", "Zero.")
    assert fired
    assert result.pushed
    assert len(site.pulls()) == 1
    assert "Zero." in json.dumps(site.pulls())


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_server_errors_and_rate_limits_are_retried(
    kind: str, tmp_path: Path, checkout: Path
) -> None:
    server: Any
    if kind == "github":
        server = FakeGitHub(tmp_path / "gh", TOKEN)
        reset = str(int(time.time()) + 1)
        server.fail("POST", r"/repos/octo/shop/pulls", 500)
        server.fail(
            "POST",
            r"/repos/octo/shop/pulls",
            403,
            headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
            body={"message": "API rate limit exceeded for installation ID 1."},
        )
        server.fail(
            "GET", r"/repos/octo/shop/issues/\d+/comments", 429, headers={"Retry-After": "1"}
        )
    else:
        server = FakeGitLab(tmp_path / "gl", TOKEN)
        server.fail("POST", r"/api/v4/projects/42/merge_requests", 500)
        server.fail(
            "POST", r"/api/v4/projects/42/merge_requests", 429, headers={"Retry-After": "1"}
        )
        server.fail("GET", r"/api/v4/projects/42/issues/\d+/notes", 502)
    server.seed(checkout)
    with server:
        forge: Forge = (
            GitHubForge("octo/shop", TOKEN, server.url, throttle=False, rate_limit_wait=5)
            if kind == "github"
            else GitLabForge("acme/shop", TOKEN, server.url)
        )
        site = Site(kind, forge, server.writes, lambda: [], lambda n: [], lambda: [], server)
        started = time.monotonic()
        result = run_once(site, checkout, issue_task(), "    return 0", "Zero.")
    assert result.created
    assert all(f.times == 0 for f in server.faults)  # every fault was hit, then retried
    assert time.monotonic() - started >= 0.9  # the Retry-After / reset wait was honoured


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_a_missing_permission_names_what_the_token_needs(
    kind: str, tmp_path: Path, checkout: Path
) -> None:
    server: Any
    if kind == "github":
        server = FakeGitHub(tmp_path / "gh", TOKEN)
        server.fail(
            "POST",
            r"/repos/octo/shop/pulls",
            403,
            body={"message": "Resource not accessible by integration"},
        )
    else:
        server = FakeGitLab(tmp_path / "gl", TOKEN)
        server.fail(
            "POST", r"/api/v4/projects/42/merge_requests", 403, body={"message": "403 Forbidden"}
        )
    server.seed(checkout)
    with server:
        forge: Forge = (
            GitHubForge("octo/shop", TOKEN, server.url, throttle=False)
            if kind == "github"
            else GitLabForge("acme/shop", TOKEN, server.url)
        )
        site = Site(kind, forge, server.writes, lambda: [], lambda n: [], lambda: [], server)
        with pytest.raises(ForgeError) as raised:
            run_once(site, checkout, issue_task(), "    return 0", "Zero.")
    text = raised.value.one_line()
    assert "HTTP 403" in text
    assert ("pull-requests: write" in text) if kind == "github" else ("api, Developer" in text)
    assert raised.value.exit_code == 5


def test_wrong_token_is_refused_by_git_and_api(tmp_path: Path, checkout: Path) -> None:
    server = FakeGitHub(tmp_path / "gh", TOKEN)
    server.seed(checkout)
    with server:
        forge = GitHubForge("octo/shop", "ghp_" + "wrong" * 8, server.url, throttle=False)
        with pytest.raises(ForgeError, match="rejected the token"):
            forge.repo()


def test_permissions_from_both_forges(tmp_path: Path, checkout: Path) -> None:
    gh = FakeGitHub(tmp_path / "gh", TOKEN)
    gh.roles.update({"maint": "maintain", "dev": "write", "viewer": "read"})
    gh.seed(checkout)
    with gh:
        forge = GitHubForge("octo/shop", TOKEN, gh.url, throttle=False)
        assert [forge.permission(u) for u in ("maint", "dev", "viewer", "nobody")] == [
            "maintain",
            "write",
            "read",
            "none",
        ]
    gl = FakeGitLab(tmp_path / "gl", TOKEN)
    gl.add_member("owner", 50)
    gl.add_member("dev", 30)
    gl.add_member("reporter", 20)
    gl.seed(checkout)
    with gl:
        glforge = GitLabForge("acme/shop", TOKEN, gl.url)
        assert [glforge.permission(u) for u in ("owner", "dev", "reporter", "ghost")] == [
            "admin",
            "write",
            "triage",
            "none",
        ]


def test_environment_is_not_leaked_to_git(
    monkeypatch: pytest.MonkeyPatch, checkout: Path, tmp_path: Path
) -> None:
    """A user's global git config (e.g. a credential helper or insteadOf) is not used."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text('[url "file:///nonexistent/"]\n\tinsteadOf = http://\n')
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    server = FakeGitHub(tmp_path / "gh", TOKEN)
    server.seed(checkout)
    with server:
        forge = GitHubForge("octo/shop", TOKEN, server.url, throttle=False)
        site = Site("github", forge, server.writes, lambda: [], lambda n: [], lambda: [], server)
        assert run_once(site, checkout, issue_task(), "    return 0", "Zero.").pushed
    assert os.environ["HOME"] == str(home)


def test_gitlab_pushes_start_no_pipeline(remote_site: Site, checkout: Path) -> None:
    """On GitLab the agent's branch is pushed with `ci.skip`: the push itself starts no
    pipeline that would run agent-written code with the project's CI/CD variables."""
    run_once(remote_site, checkout, issue_task(), "    return 0", "first")
    assert remote_site.server is not None
    options = remote_site.server.push_options()
    assert options, "a push happened"
    if remote_site.kind == "gitlab":
        assert all(opts == ["ci.skip"] for opts in options)
    else:
        assert all(opts == [] for opts in options)
