"""From an outcome to a branch, exactly one PR/MR per task, and a status comment on the issue.

The same for every forge, and idempotent:

- one deterministic branch per task (``<prefix>/<source>-<id>-<slug>``);
- the PR is found by its head branch: a re-run updates it instead of opening another, and an
  "already exists" answer (a concurrent run won the race) counts as success;
- the PR body carries a hash of what it says, so a run that changed nothing writes nothing
  (links and usage numbers of later runs do not count as changes);
- the status comment is one comment per issue, found by a hidden marker and edited in place.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astraforge import render
from astraforge.agent.outcome import Outcome
from astraforge.branches import (
    TRAILER,
    Author,
    GitPush,
    Preferred,
    PushResult,
    Writer,
    auth_env,
    publish_branch,
)
from astraforge.config import PublishConfig
from astraforge.context.sanitize import clean, one_line
from astraforge.credentials import Credentials
from astraforge.errors import UsageError
from astraforge.followup.state import encode, new_round, request_of, state_after
from astraforge.forges.base import AlreadyExists, Forge, PullRequest, upsert_comment
from astraforge.task import Task

HASH_MARKER = "<!-- astraforge:body-hash={} -->"
_HASH = re.compile(r"<!-- astraforge:body-hash=([0-9a-f]{16}) -->")
STATUS_TOPIC = "status"
MAX_SLUG = 40


def slug(text: str, limit: int = MAX_SLUG) -> str:
    """Words of a title as a branch-name slug."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return words[:limit].rstrip("-") or "task"


def task_id(task: Task) -> str:
    """The task's stable id within its source."""
    if task.number is not None:
        return str(task.number)
    if task.alert and (task.alert.short_id or task.alert.issue_id):
        return slug(task.alert.short_id or task.alert.issue_id or "", 30)
    return hashlib.sha256(task.fingerprint.encode()).hexdigest()[:10]


def branch_name(task: Task, prefix: str) -> str:
    """The one branch of a task."""
    return f"{prefix.strip('/')}/{task.source.value}-{task_id(task)}-{slug(task.title)}"


@dataclass(frozen=True)
class Links:
    """Where the run log, the trajectory and report.html are."""

    run: str | None = None  # the CI job log, which is the run log
    trajectory: str | None = None
    report: str | None = None  # report.html, in the artifacts


@dataclass
class Published:
    """What publishing wrote: the branch, the PR, every write."""

    branch: str
    pr: PullRequest | None
    pushed: bool
    created: bool = False
    updated: bool = False
    writes: list[str] = field(default_factory=list)
    commit: str | None = None  # the commit pushed
    verified: bool | None = None  # the forge signed the commit (GitHub's API)


def pr_title(task: Task) -> str:
    """The PR/MR title: ``Fix: <issue title>`` for issues and alerts."""
    prefix = "Fix" if task.kind.value in ("issue", "alert") else "AstraForge"
    title = task.title if len(task.title) <= 80 else task.title[:77] + "..."
    return f"{prefix}: {title}"


def closing_line(task: Task) -> str | None:
    """The line that closes the issue when the PR/MR merges (GitHub: Fixes, GitLab: Closes)."""
    if task.number is None:
        return None
    if task.source.value == "github":
        return f"Fixes #{task.number}"
    if task.source.value == "gitlab":
        return f"Closes #{task.number}"
    return None


@dataclass(frozen=True)
class Texts:
    """Everything a run writes to the forge about its change, rendered once: the same text
    is scanned for secrets and then published."""

    title: str
    body: str
    digest: str  # what the body says, not which run said it
    message: str  # the commit message


def commit_message(task: Task, outcome: Outcome, links: Links, round_number: int = 1) -> str:
    """The fix commit's message, with AstraForge's trailers (a follow-up's carry the original
    task's fingerprint, so the branch stays recognizably AstraForge's)."""
    if task.thread is None:
        lines = [pr_title(task), ""]
    else:
        lines = [one_line(f"AstraForge round {round_number}: {request_of(task)}", 120), ""]
    if outcome.summary:
        lines += [outcome.summary.strip(), ""]
    closes = closing_line(task) if task.thread is None else None
    if closes:
        lines += [closes, ""]
    lines.append(f"{TRAILER}: {task.thread.fingerprint if task.thread else task.fingerprint}")
    if task.thread is not None:
        lines.append(f"AstraForge-Round: {round_number}")
    if links.run:
        lines.append(f"AstraForge-Run: {links.run}")
    return "\n".join(lines) + "\n"


def _body_hash(title: str, substance: Mapping[str, Any]) -> str:
    text = repr((title, sorted(substance.items())))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def texts(
    task: Task,
    outcome: Outcome,
    links: Links,
    *,
    policy: list[dict[str, Any]] | None = None,
    unverified: str | None = None,
) -> Texts:
    """The title, body and commit message of a change, with the policy results to show and,
    when the runner's own tests did not pass, a warning at the top. The body keeps the PR's
    rounds (hidden state and a visible list) so that a follow-up can resume it."""
    title = task.thread.pr_title if task.thread else pr_title(task)
    result = "draft, unverified" if unverified else "pushed"
    added = new_round(task, outcome, result)
    state = state_after(task, added)
    substance = {
        "diff": outcome.diff_sha256,
        "summary": outcome.summary,
        "root_cause": outcome.root_cause,
        "before": outcome.tests_before.passed if outcome.tests_before else None,
        "after": outcome.tests_after.passed if outcome.tests_after else None,
        "policy": repr(policy or []),
        "status": outcome.status.value,
        "unverified": unverified,
        "rounds": repr([(r.kind, r.request, r.result) for r in state.rounds]),
    }
    digest = _body_hash(title, substance)
    shown = outcome.model_copy(
        update={
            key: clean(value, 8000)
            for key in ("summary", "root_cause", "tests_reported")
            if isinstance(value := getattr(outcome, key), str)
        }
    )
    first = state.rounds[0]
    body = render.render(
        "templates",
        "pr_body.md.j2",
        task=task,
        outcome=shown,
        links=links,
        policy=policy or [],
        closes=closing_line(task) if task.thread is None else None,
        unverified=unverified,
        original=first if task.thread is not None else None,
        rounds=[r.model_dump() for r in state.rounds] if len(state.rounds) > 1 else [],
        round_number=added.number,
    )
    body = body.rstrip() + "\n\n" + encode(state) + "\n" + HASH_MARKER.format(digest) + "\n"
    return Texts(title, body, digest, commit_message(task, outcome, links, added.number))


def publish(
    forge: Forge,
    checkout: Path,
    task: Task,
    texts: Texts,
    patch: str,
    *,
    base_commit: str,
    config: PublishConfig,
    credentials: Credentials | None = None,
    draft: bool = False,
) -> Published:
    """Push the branch and open or update its PR; every write is listed in the result."""
    repo = forge.repo()
    branch = branch_name(task, config.branch_prefix)
    auth = forge.git_auth()
    if auth is not None and credentials is not None:
        credentials.check(repo.clone_url, auth.token)
    env = auth_env(auth.username, auth.token) if auth else {}
    pushed = publish_branch(
        checkout,
        base=base_commit,
        patch=patch,
        message=texts.message,
        author=Author(config.author_name, config.author_email),
        url=repo.clone_url,
        branch=branch,
        fingerprint=task.fingerprint,
        auth=env,
        writer=writer(forge, config, repo.clone_url, env),
    )
    result = Published(branch=branch, pr=None, pushed=pushed.pushed, verified=pushed.verified)
    if pushed.pushed:
        result.commit = pushed.commit
        result.writes.append(write_line(pushed))
    pull = forge.find_pr(branch)
    if pull is None:
        try:
            pull = forge.open_pr(
                head=branch,
                base=repo.default_branch,
                title=texts.title,
                body=texts.body,
                draft=config.draft or draft,
            )
            result.created = True
            result.writes.append(f"open PR #{pull.number}")
        except AlreadyExists:
            pull = forge.find_pr(branch)  # a concurrent run opened it first
            if pull is None:
                raise
    if not result.created and (
        _existing_hash(pull.body) != texts.digest or pull.title != texts.title
    ):
        pull = forge.update_pr(pull.number, title=texts.title, body=texts.body)
        result.updated = True
        result.writes.append(f"update PR #{pull.number}")
    missing = [label for label in config.labels if label not in pull.labels]
    if missing:
        forge.add_labels(pull.number, missing)
        result.writes.append(f"label PR #{pull.number}")
    if result.created:
        if config.assignees:
            forge.add_assignees(pull.number, config.assignees)
            result.writes.append(f"assign PR #{pull.number}")
        if config.reviewers:
            forge.request_reviewers(pull.number, config.reviewers)
            result.writes.append(f"request reviews on PR #{pull.number}")
    result.pr = pull
    return result


def writer(forge: Forge, config: PublishConfig, url: str, auth: Mapping[str, str]) -> Writer:
    """How a fix commit reaches the branch (``publish.commit``): through the forge's API where
    it signs commits (GitHub), else, or when that API cannot, with git push."""
    push = GitPush(url, auth, forge.push_options)
    if config.commit == "push":
        return push
    api = forge.commit_writer(Author(config.author_name, config.author_email))
    if api is None:
        if config.commit == "api":
            raise UsageError(
                f"publish.commit is `api`, but {forge.name} commits are pushed with git",
                "set publish.commit to `auto` or `push` in .astraforge.yml",
            )
        return push
    return api if config.commit == "api" else Preferred(api, push)


def write_line(pushed: PushResult) -> str:
    """The log line of a written commit: how, and whether the forge signed it."""
    line = f"push {pushed.branch}: {pushed.commit[:12]}"
    if pushed.how == "api":
        signed = "signed by GitHub, verified" if pushed.verified else "not signed by GitHub"
        line = f"commit {pushed.commit[:12]} on {pushed.branch} through GitHub's API ({signed})"
    return f"{line} ({pushed.note})" if pushed.note else line


def _existing_hash(body: str) -> str | None:
    found = _HASH.search(body or "")
    return found[1] if found else None


def post_status(forge: Forge, task: Task, body: str) -> bool:
    """Create or edit the one status comment on the task's issue; whether it wrote."""
    if task.number is None:
        return False
    _, wrote = upsert_comment(forge, task.number, STATUS_TOPIC, body, pull=task.on_pull_request)
    return wrote


def status_text(
    state: str,
    *,
    task: Task,
    links: Links,
    outcome: Outcome | None = None,
    published: Published | None = None,
    reason: str | None = None,
) -> str:
    """The status comment for a state of the run."""
    return render.render(
        "templates",
        "status_comment.md.j2",
        state=state,
        task=task,
        links=links,
        outcome=outcome,
        published=published,
        reason=reason,
    ).strip()
