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
from astraforge.config import PublishConfig
from astraforge.context.sanitize import clean
from astraforge.credentials import Credentials
from astraforge.forges.base import AlreadyExists, Forge, PullRequest, upsert_comment
from astraforge.git import TRAILER, Author, auth_env, publish_branch
from astraforge.task import Task

HASH_MARKER = "<!-- astraforge:body-hash={} -->"
_HASH = re.compile(r"<!-- astraforge:body-hash=([0-9a-f]{16}) -->")
STATUS_TOPIC = "status"
MAX_SLUG = 40


def slug(text: str, limit: int = MAX_SLUG) -> str:
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
    return f"{prefix.strip('/')}/{task.source.value}-{task_id(task)}-{slug(task.title)}"


@dataclass(frozen=True)
class Links:
    run: str | None = None  # the CI job log, which is the run log
    trajectory: str | None = None


@dataclass
class Published:
    branch: str
    pr: PullRequest | None
    pushed: bool
    created: bool = False
    updated: bool = False
    writes: list[str] = field(default_factory=list)


def pr_title(task: Task, outcome: Outcome) -> str:
    prefix = "Fix" if task.kind.value in ("issue", "alert") else "AstraForge"
    title = task.title if len(task.title) <= 80 else task.title[:77] + "..."
    return f"{prefix}: {title}"


def commit_message(task: Task, outcome: Outcome, links: Links) -> str:
    lines = [pr_title(task, outcome), ""]
    if outcome.summary:
        lines += [outcome.summary.strip(), ""]
    if task.number is not None and task.source.value in ("github", "gitlab"):
        lines += [f"Fixes #{task.number}", ""]
    lines.append(f"{TRAILER}: {task.fingerprint}")
    if links.run:
        lines.append(f"AstraForge-Run: {links.run}")
    return "\n".join(lines) + "\n"


def _body_hash(title: str, substance: Mapping[str, Any]) -> str:
    text = repr((title, sorted(substance.items())))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def pr_body(
    task: Task,
    outcome: Outcome,
    links: Links,
    *,
    policy: list[dict[str, Any]] | None = None,
) -> tuple[str, str]:
    """(body, hash). The hash covers what the PR says, not which run said it."""
    substance = {
        "diff": outcome.diff_sha256,
        "summary": outcome.summary,
        "root_cause": outcome.root_cause,
        "tests_reported": outcome.tests_reported,
        "before": outcome.tests_before.passed if outcome.tests_before else None,
        "after": outcome.tests_after.passed if outcome.tests_after else None,
        "policy": repr(policy or []),
        "status": outcome.status.value,
    }
    digest = _body_hash(pr_title(task, outcome), substance)
    shown = outcome.model_copy(
        update={
            key: clean(value, 8000)
            for key in ("summary", "root_cause", "tests_reported")
            if isinstance(value := getattr(outcome, key), str)
        }
    )
    body = render.render(
        "templates",
        "pr_body.md.j2",
        task=task,
        outcome=shown,
        links=links,
        policy=policy or [],
        closes=_closing_line(task),
    )
    return body.rstrip() + "\n\n" + HASH_MARKER.format(digest) + "\n", digest


def _closing_line(task: Task) -> str | None:
    if task.number is None:
        return None
    if task.source.value == "github":
        return f"Fixes #{task.number}"
    if task.source.value == "gitlab":
        return f"Closes #{task.number}"
    return None


def publish(
    forge: Forge,
    checkout: Path,
    task: Task,
    outcome: Outcome,
    patch: str,
    *,
    base_commit: str,
    config: PublishConfig,
    links: Links,
    policy: list[dict[str, Any]] | None = None,
    credentials: Credentials | None = None,
) -> Published:
    """Push the branch and open or update its PR; every write is listed in the result."""
    repo = forge.repo()
    branch = branch_name(task, config.branch_prefix)
    auth = forge.git_auth()
    if auth is not None and credentials is not None:
        credentials.check(repo.clone_url, auth.token)
    pushed = publish_branch(
        checkout,
        base=base_commit,
        patch=patch,
        message=commit_message(task, outcome, links),
        author=Author(config.author_name, config.author_email),
        url=repo.clone_url,
        branch=branch,
        fingerprint=task.fingerprint,
        auth=auth_env(auth.username, auth.token) if auth else {},
        push_options=forge.push_options,
    )
    result = Published(branch=branch, pr=None, pushed=pushed.pushed)
    if pushed.pushed:
        result.writes.append(f"push {branch}")
    title = pr_title(task, outcome)
    body, digest = pr_body(task, outcome, links, policy=policy)
    pull = forge.find_pr(branch)
    if pull is None:
        try:
            pull = forge.open_pr(
                head=branch, base=repo.default_branch, title=title, body=body, draft=config.draft
            )
            result.created = True
            result.writes.append(f"open PR #{pull.number}")
        except AlreadyExists:
            pull = forge.find_pr(branch)  # a concurrent run opened it first
            if pull is None:
                raise
    if not result.created and (_existing_hash(pull.body) != digest or pull.title != title):
        pull = forge.update_pr(pull.number, title=title, body=body)
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


def _existing_hash(body: str) -> str | None:
    found = _HASH.search(body or "")
    return found[1] if found else None


def post_status(forge: Forge, task: Task, body: str) -> bool:
    """Create or edit the one status comment on the task's issue; whether it wrote."""
    if task.number is None:
        return False
    _, wrote = upsert_comment(forge, task.number, STATUS_TOPIC, body)
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
