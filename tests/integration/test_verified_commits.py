"""Fix commits through GitHub's Git Data API (signed by GitHub, shown as verified), against
the local GitHub server, which stores real git objects in its bare repository: what the API
made is compared with what ``git push`` makes, by fetching both branches with git."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests import samples
from tests.conftest import load_fixture
from tests.servers.github import FakeGitHub

from astraforge.agent.outcome import Outcome, Status
from astraforge.branches import (
    Author,
    FetchedBranch,
    PushRejected,
    Unsupported,
    WorkRepo,
    auth_env,
)
from astraforge.config import PublishConfig
from astraforge.errors import AstraForgeError, UsageError
from astraforge.events import github as github_events
from astraforge.forges.github import GitHubForge
from astraforge.forges.local import LocalForge
from astraforge.publish import Links, Published, publish, texts, writer
from astraforge.task import Task

TOKEN = "ghs_" + "VerifiedCanary" * 3
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
FILES = {
    **samples.PY_FILES,
    "scripts/old.sh": "#!/bin/sh\necho old\n",
    "scripts/tool.sh": "#!/bin/sh\necho tool\n",
    "docs/gone.md": "to be deleted\n",
}


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return samples.make_repo(tmp_path / "shop", FILES)


@contextlib.contextmanager
def github(root: Path, checkout: Path) -> Iterator[tuple[FakeGitHub, GitHubForge]]:
    server = FakeGitHub(root, TOKEN)
    server.seed(checkout)
    with server:
        yield server, GitHubForge("octo/shop", TOKEN, server.url, throttle=False)


def task() -> Task:
    return github_events.parse(load_fixture("github/issues.labeled.json"), "issues")


def every_kind_of_change(checkout: Path) -> tuple[str, str]:
    """(base, patch) changing text, modes, a symlink, a deletion, a binary file, CRLF, a
    file without a final newline and a non-ASCII name, as the agent's diff would."""
    base = samples.git(checkout, "rev-parse", "HEAD").strip()
    cart = checkout / "shop" / "cart.py"
    cart.write_text(cart.read_text().replace("len(items)", "max(len(items), 1)"))
    (checkout / "scripts" / "tool.sh").chmod(0o755)  # a mode change only
    new = checkout / "scripts" / "check.sh"
    new.write_text("#!/bin/sh\nexec python -m pytest -q\n")
    new.chmod(0o755)
    (checkout / "scripts" / "latest").symlink_to("check.sh")
    (checkout / "docs" / "gone.md").unlink()
    (checkout / "scripts" / "old.sh").rename(checkout / "scripts" / "renamed.sh")
    (checkout / "assets").mkdir()
    (checkout / "assets" / "logo.bin").write_bytes(bytes(range(256)) * 8)
    (checkout / "docs" / "windows.txt").write_bytes(b"line one\r\nline two\r\n")
    (checkout / "docs" / "no-newline.txt").write_text("last line")
    (checkout / "docs" / "caf\u00e9.md").write_text("cr\u00e8me br\u00fbl\u00e9e \u2713\n")
    samples.git(checkout, "add", "-A")
    patch = subprocess.run(
        ["git", "-C", str(checkout), "diff", "--cached", "--binary"],
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8", "surrogateescape")
    samples.git(checkout, "reset", "-q", "--hard", base)
    samples.git(checkout, "clean", "-qfdx")
    return base, patch


def publish_on(
    forge: GitHubForge, checkout: Path, base: str, patch: str, **config: str
) -> Published:
    outcome = Outcome(
        status=Status.FIXED,
        reason="fixed",
        summary="Guard the empty cart.",
        run_id="r1",
        model={"name": "gpt-4.1", "api": "openai"},
        usage={"turns": 3, "total_tokens": 900, "cost_usd": 0.01},
    )
    return publish(
        forge,
        checkout,
        task(),
        texts(task(), outcome, Links(run="https://ci.example.com/jobs/7")),
        patch,
        base_commit=base,
        config=PublishConfig(**config),
    )


def fetched(server: FakeGitHub, branch: str, into: Path) -> Path:
    """A clone of ``branch`` over the server's git smart HTTP (the way anyone reads it)."""
    url = f"{server.url}/git/{server.full_name}.git"
    env = {**samples.GIT_ENV, **auth_env("x-access-token", TOKEN)}
    subprocess.run(
        ["git", "clone", "-q", "--single-branch", "-b", branch, url, str(into)],
        env=env,
        check=True,
        capture_output=True,
    )
    return into


def test_github_commits_go_through_the_api_signed_with_the_trees_a_push_makes(
    tmp_path: Path, checkout: Path
) -> None:
    base, patch = every_kind_of_change(checkout)
    with (
        github(tmp_path / "api", checkout) as (api, api_forge),
        github(tmp_path / "push", checkout) as (pushed, push_forge),
    ):
        by_api = publish_on(api_forge, checkout, base, patch)
        by_push = publish_on(push_forge, checkout, base, patch, commit="push")
        api_clone = fetched(api, by_api.branch, tmp_path / "api-clone")
        push_clone = fetched(pushed, by_push.branch, tmp_path / "push-clone")
        writes = api.writes()
        again = publish_on(api_forge, checkout, base, patch)  # a rerun with the same change
        assert (again.pushed, again.writes) == (False, [])
        assert api.writes() == writes  # it wrote nothing at all
    # The same tree: every byte, mode, symlink and deletion as git push gives.
    tree = samples.git(api_clone, "rev-parse", "HEAD^{tree}").strip()
    assert tree == samples.git(push_clone, "rev-parse", "HEAD^{tree}").strip()
    listing = samples.git(api_clone, "ls-tree", "-r", "HEAD")
    assert "100755 blob" in next(ln for ln in listing.splitlines() if ln.endswith("tool.sh"))
    assert "120000 blob" in next(ln for ln in listing.splitlines() if ln.endswith("latest"))
    assert (api_clone / "scripts" / "latest").is_symlink()
    assert not (api_clone / "docs" / "gone.md").exists()
    assert (api_clone / "assets" / "logo.bin").read_bytes() == bytes(range(256)) * 8
    assert (api_clone / "docs" / "windows.txt").read_bytes() == b"line one\r\nline two\r\n"
    # Through the API, never a push; the binary file as a blob, the text inside the tree.
    assert not any(r.path.endswith("git-receive-pack") for r in api.requests)
    assert [w.split()[1].rsplit("/", 2)[-2:] for w in writes if "/git/" in w] == [
        ["git", "blobs"],
        ["git", "trees"],
        ["git", "commits"],
    ]
    assert "POST /graphql" in writes
    # Signed by "GitHub", on top of the base, with AstraForge's trailers and author kept.
    commit = samples.git(api_clone, "cat-file", "commit", "HEAD")
    assert "gpgsig -----BEGIN SSH SIGNATURE-----" in commit
    assert samples.git(api_clone, "rev-parse", "HEAD^").strip() == base
    verify = subprocess.run(
        ["git", "-C", str(api_clone), "-c", "gpg.format=ssh", "-c",
         f"gpg.ssh.allowedSignersFile={api.git_objects.allowed_signers}", "verify-commit", "HEAD"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stderr
    message = samples.git(api_clone, "log", "-1", "--format=%B")
    assert f"AstraForge-Fingerprint: {task().fingerprint}" in message
    assert "AstraForge-Run: https://ci.example.com/jobs/7" in message
    assert message.rstrip().endswith(
        "Co-authored-by: AstraForge <astraforge@users.noreply.github.com>"
    )
    assert samples.git(api_clone, "log", "-1", "--format=%ae").strip() == BOT_EMAIL
    assert by_api.verified is True
    assert by_api.commit == samples.git(api_clone, "rev-parse", "HEAD").strip()
    assert "through GitHub's API (signed by GitHub, verified)" in by_api.writes[0]
    # git push keeps the configured author, unsigned.
    assert samples.git(push_clone, "log", "-1", "--format=%an <%ae>").strip() == (
        "AstraForge <astraforge@users.noreply.github.com>"
    )
    assert "gpgsig" not in samples.git(push_clone, "cat-file", "commit", "HEAD")
    assert by_push.verified is None


def test_the_branch_moves_only_from_the_tip_the_run_saw(tmp_path: Path, checkout: Path) -> None:
    base, patch = every_kind_of_change(checkout)
    with github(tmp_path / "gh", checkout) as (server, forge):
        first = publish_on(forge, checkout, base, patch)
        tip = samples.git(server.bare, "rev-parse", f"refs/heads/{first.branch}").strip()
        api = forge.commit_writer(Author("AstraForge", "astraforge@users.noreply.github.com"))
        work = WorkRepo(checkout)
        try:
            commit, _ = work.commit(base, patch, "Another commit\n", Author("A", "a@example.com"))
            stale = api.write(work, first.branch, commit, base)  # not the branch's tip
            fresh = api.write(work, "astraforge/new", commit, None)
            exists = api.write(work, first.branch, commit, None)  # "must not exist yet"
        finally:
            work.close()
        assert not stale.accepted
        assert "does not point to" in stale.detail
        assert not exists.accepted
        assert samples.git(server.bare, "rev-parse", f"refs/heads/{first.branch}").strip() == tip
        assert fresh.accepted
        assert samples.git(server.bare, "rev-parse", "refs/heads/astraforge/new").strip() == (
            fresh.commit
        )


def test_a_tree_github_stored_differently_is_never_committed(
    tmp_path: Path, checkout: Path
) -> None:
    base, patch = every_kind_of_change(checkout)
    with github(tmp_path / "gh", checkout) as (server, forge):
        server.fail("POST", r"/repos/octo/shop/git/trees", 201, body={"sha": "f" * 40})
        with pytest.raises(AstraForgeError, match="stored the fix's tree as ffffffffffff"):
            publish_on(forge, checkout, base, patch)
        assert not any(r.path.endswith("/git/commits") for r in server.requests)
        assert not any(r.path == "/graphql" for r in server.requests)
        assert samples.git(server.bare, "branch", "--list", "astraforge/*").strip() == ""


def test_a_github_without_conditional_ref_updates_falls_back_to_git_push(
    tmp_path: Path, checkout: Path
) -> None:
    base, patch = every_kind_of_change(checkout)
    with github(tmp_path / "gh", checkout) as (server, forge):
        server.graphql_update_refs = False
        with pytest.raises(Unsupported) as refused:
            publish_on(forge, checkout, base, patch, commit="api")
        assert "publish.commit" in refused.value.one_line()
        assert samples.git(server.bare, "branch", "--list", "astraforge/*").strip() == ""
        result = publish_on(forge, checkout, base, patch)  # auto
        assert result.pushed
        assert any(r.path.endswith("git-receive-pack") for r in server.requests)
        assert "pushed with git instead" in result.writes[0]
        assert "updateRefs" in result.writes[0]
        head = samples.git(server.bare, "log", "-1", "--format=%an", result.branch).strip()
        assert head == "AstraForge"


def test_a_follow_up_commit_goes_on_the_tip_through_the_api_and_can_go_on_again(
    tmp_path: Path, checkout: Path
) -> None:
    base, patch = every_kind_of_change(checkout)
    with github(tmp_path / "gh", checkout) as (server, forge):
        first = publish_on(forge, checkout, base, patch)
        url = forge.repo().clone_url
        auth = auth_env("x-access-token", TOKEN)
        branch = FetchedBranch(checkout, url, first.branch, "main", auth)
        try:
            (tmp_path / "next").mkdir()
            follow_patch = (
                "--- a/docs/no-newline.txt\n+++ b/docs/no-newline.txt\n@@ -1 +1 @@\n"
                "-last line\n\\ No newline at end of file\n+last line\n"
            )
            author = Author("AstraForge", "astraforge@users.noreply.github.com")
            api = writer(forge, PublishConfig(), url, auth)
            one = branch.extend(follow_patch, "Round 2\n", author, api)
            again = (
                "--- a/docs/windows.txt\n+++ b/docs/windows.txt\n@@ -1,2 +1 @@\n"
                " line one\r\n-line two\r\n"
            )
            two = branch.extend(again, "Round 3\n", author, api)
        finally:
            branch.close()
        assert (one.how, two.how, one.verified, two.verified) == ("api", "api", True, True)
        log = samples.git(server.bare, "log", "--format=%H %P", "-3", first.branch).splitlines()
        assert [line.split()[0] for line in log] == [two.commit, one.commit, first.commit]
        assert log[0].split()[1] == one.commit  # fast-forwards: nothing was replaced
        assert log[1].split()[1] == first.commit
        assert "POST /graphql" in server.writes()
        assert not any(r.path.endswith("git-receive-pack") for r in server.requests)


def test_commits_through_an_api_only_where_the_forge_has_one(
    tmp_path: Path, checkout: Path
) -> None:
    local = LocalForge.init(tmp_path / "forge", checkout, "local/shop")
    with pytest.raises(UsageError) as refused:
        writer(local, PublishConfig(commit="api"), str(local.remote), {})
    assert "set publish.commit to `auto` or `push`" in refused.value.one_line()
    assert writer(local, PublishConfig(), str(local.remote), {}).__class__.__name__ == "GitPush"


def test_branch_protection_refuses_an_api_write_too(tmp_path: Path, checkout: Path) -> None:
    base, patch = every_kind_of_change(checkout)
    with github(tmp_path / "gh", checkout) as (server, forge):
        hook = server.bare / "hooks" / "pre-receive"
        hook.write_text("#!/bin/sh\necho 'GH006: Protected branch update failed' >&2\nexit 1\n")
        with pytest.raises(PushRejected, match="GH006: Protected branch update failed"):
            publish_on(forge, checkout, base, patch)
        assert samples.git(server.bare, "branch", "--list", "astraforge/*").strip() == ""
