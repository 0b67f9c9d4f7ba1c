"""Whether a pull/merge request may be continued, and what a follow-up resumes.

Only a PR whose head branch lives in the repository itself is continued: a fork's code never
reaches a job that holds secrets. By default only AstraForge's own PRs are: the branch has
AstraForge's prefix, and every commit on it carries AstraForge's trailer or comes from someone
with write permission (a trusted setting, ``follow_up.any_pr``, allows any same-repository
PR). A failed CI run is fixed at most ``ci_fix.max_rounds`` times per PR, and on the default
branch only when a trusted setting says so. Configuration and policy always come from the
default branch, never from the PR's head.
"""

from __future__ import annotations

from astraforge import credentials, policy
from astraforge.branches import TRAILER, FetchedBranch, auth_env
from astraforge.conclusion import Conclusion
from astraforge.context.ci_log import excerpt
from astraforge.context.sanitize import clean, one_line
from astraforge.followup.state import ThreadState, decode
from astraforge.forges.base import Forge, PullRequest, RepoInfo
from astraforge.runs import Loaded, Run, Stop
from astraforge.task import Kind, PullRef, ReviewNote, Task, Thread


def resolve(
    run: Run, loaded: Loaded, task: Task, forge: Forge
) -> tuple[Task, FetchedBranch | None]:
    """The task with what the follow-up resumes, and its branch fetched (None for a CI fix of
    the default branch, which opens a new PR); a PR that may not be continued stops here."""
    repo = forge.repo()
    if task.kind is Kind.CI_FAILURE and task.pull is None:
        task = _ci_pull(run, loaded, task, forge, repo)
        if task.pull is None:
            return _with_logs(run, loaded, task, forge), None
    assert task.pull is not None
    pull = forge.pull(task.pull.number)
    _eligible(run, loaded, task, forge, pull, repo)
    state = decode(pull.body)
    if task.kind is Kind.CI_FAILURE:
        done = [r for r in state.rounds if r.kind == "ci"] if state else []
        limit = loaded.config.ci_fix.max_rounds
        if len(done) >= limit:
            raise Stop(
                Conclusion.REFUSED,
                f"pull request #{pull.number} had {len(done)} automatic CI fix attempt(s) "
                f"(ci_fix.max_rounds: {limit}); AstraForge stops here, a comment with the "
                "command can still ask for more",
            )
        task = _with_logs(run, loaded, task, forge)
    review = list(task.review)
    if task.review_id is not None and not review:
        review = forge.review_notes(pull.number, task.review_id)
    auth = forge.git_auth()
    env: dict[str, str] = {}
    if auth is not None:
        credentials.for_run(run.env).check(repo.clone_url, auth.token)
        env = auth_env(auth.username, auth.token)
    branch = FetchedBranch(run.options.repo, repo.clone_url, pull.head, pull.base, env)
    diff = branch.diff()
    run.say(f"follow-up on #{pull.number}: branch {pull.head} at {branch.tip[:12]}")
    thread = _thread(task, pull, state, branch, diff)
    return (
        task.model_copy(
            update={
                "thread": thread,
                "review": [_with_hunk(note, diff) for note in review],
                "pull": PullRef(
                    number=pull.number,
                    head=pull.head,
                    head_repo=pull.head_repo,
                    base=pull.base,
                    head_sha=branch.tip,
                    url=pull.url,
                ),
            }
        ),
        branch,
    )


def _ci_pull(run: Run, loaded: Loaded, task: Task, forge: Forge, repo: RepoInfo) -> Task:
    """A CI failure without a PR in its event: the PR of its branch, or the default branch."""
    ci = task.ci
    assert ci is not None
    if ci.head_repo and ci.head_repo != repo.full_name:
        raise Stop(Conclusion.REFUSED, f"the failed run is for {ci.head_repo}, a fork")
    if ci.head_branch == repo.default_branch:
        if not loaded.config.ci_fix.default_branch:
            raise Stop(
                Conclusion.SKIPPED,
                f"{ci.workflow!r} failed on the default branch; the trusted setting "
                "ci_fix.default_branch (ASTRAFORGE_CI_FIX_DEFAULT_BRANCH) lets AstraForge "
                "open a fix PR for it",
            )
        return task
    found = forge.find_pr(ci.head_branch) if ci.head_branch else None
    if found is None:
        raise Stop(Conclusion.SKIPPED, f"no open pull request for branch {ci.head_branch!r}")
    run.say(f"the failed run is on the branch of pull request #{found.number}")
    full = repo.full_name
    return task.model_copy(
        update={
            "pull": PullRef(number=found.number, head=found.head, url=found.url),
            "number": found.number,
            "on_pull_request": True,
            "fingerprint": f"{task.source.value}:{full}{'!' if forge.name == 'gitlab' else '#'}"
            f"{found.number}",
        }
    )


def _eligible(
    run: Run, loaded: Loaded, task: Task, forge: Forge, pull: PullRequest, repo: RepoInfo
) -> None:
    """Stop unless the PR may be continued."""
    if pull.state != "open":
        raise Stop(Conclusion.SKIPPED, f"pull request #{pull.number} is {pull.state}")
    if pull.head_repo != repo.full_name:
        raise Stop(
            Conclusion.REFUSED,
            f"pull request #{pull.number} comes from {pull.head_repo or 'another repository'}: "
            f"AstraForge continues only branches of {repo.full_name} and never runs a fork's "
            "code in a job that holds secrets",
        )
    if loaded.config.follow_up.any_pr:
        return
    prefix = loaded.config.publish.branch_prefix.strip("/") + "/"
    if not pull.head.startswith(prefix):
        raise Stop(
            Conclusion.REFUSED,
            f"pull request #{pull.number} is not AstraForge's (branch {pull.head!r} does not "
            f"start with {prefix!r}); the trusted setting follow_up.any_pr allows any "
            "same-repository pull request",
        )
    needed = loaded.rules.triggers.permission
    for commit in forge.pull_commits(pull.number):
        if f"{TRAILER}:" in commit.message:
            continue
        if commit.login is None:
            raise Stop(
                Conclusion.REFUSED,
                f"commit {commit.sha[:12]} on {pull.head} is neither AstraForge's nor by a "
                "known account with write permission",
            )
        permission = forge.permission(commit.login)
        if not policy.at_least(permission, needed):
            raise Stop(
                Conclusion.REFUSED,
                f"commit {commit.sha[:12]} on {pull.head} is by {commit.login!r}, who has "
                f"{permission!r} permission; {needed!r} is needed",
            )


def _with_logs(run: Run, loaded: Loaded, task: Task, forge: Forge) -> Task:
    """The CI task with the failing part of each failed job's log."""
    assert task.ci is not None
    logs = forge.job_logs(task.ci)
    if not logs:
        raise Stop(Conclusion.SKIPPED, f"run {task.ci.id} has no failed job to look at")
    budget = loaded.config.ci_fix.log_tokens
    jobs = [log.job.model_copy(update={"excerpt": excerpt(log.log, budget)}) for log in logs]
    run.say(f"failed jobs: {', '.join(one_line(j.name, 80) for j in jobs)}")
    return task.model_copy(update={"ci": task.ci.model_copy(update={"jobs": jobs})})


def _thread(
    task: Task, pull: PullRequest, state: ThreadState | None, branch: FetchedBranch, diff: str
) -> Thread:
    """What the follow-up resumes; a PR without AstraForge's state starts from its own text."""
    return Thread(
        fingerprint=state.fingerprint if state else task.fingerprint,
        title=state.title if state else one_line(pull.title, 300),
        body=state.body if state else clean(pull.body, 2000),
        pr_title=pull.title,
        rounds=state.rounds if state else [],
        branch=pull.head,
        tip=branch.tip,
        diff=diff,
    )


def _with_hunk(note: ReviewNote, diff: str, context: int = 4) -> ReviewNote:
    """A review note with the diff hunk around its line, when the forge sent none."""
    if note.diff_hunk or not note.path or not note.line:
        return note
    hunk = _hunk_at(diff, note.path, note.line, context)
    return note.model_copy(update={"diff_hunk": hunk}) if hunk else note


def _hunk_at(diff: str, path: str, line: int, context: int) -> str | None:
    """The lines of ``diff``'s hunk in ``path`` around new-file line ``line``."""
    from unidiff.patch import PatchSet

    try:
        patch = PatchSet(diff)
    except Exception:
        return None
    for changed in patch:
        if changed.path != path:
            continue
        for hunk in changed:
            if hunk.target_start <= line < hunk.target_start + max(1, hunk.target_length):
                rows = [str(row).rstrip("\n") for row in hunk]
                at = next(
                    (i for i, row in enumerate(hunk) if row.target_line_no == line), len(rows) // 2
                )
                lo, hi = max(0, at - context), min(len(rows), at + context + 1)
                return f"@@ -{hunk.source_start} +{hunk.target_start} @@\n" + "\n".join(rows[lo:hi])
    return None
