"""GitHub events about pull requests and CI -> Task: review comments, submitted reviews,
finished workflow runs and check runs of other CI apps (a comment on a PR's conversation is
an ``issue_comment``, read in :mod:`astraforge.events.github`)."""

from __future__ import annotations

from typing import Any

from astraforge.events.commands import CommandSyntax, find_invocation
from astraforge.events.payload import MAX_TEXT, Node, ci_task
from astraforge.task import CIRun, FailedJob, Kind, Links, PullRef, ReviewNote, Source, Task

EVENTS = ("pull_request_review_comment", "pull_request_review", "workflow_run", "check_run")
ACTIONS_APP = "GitHub Actions"  # its check runs are read through workflow_run instead


def parse(root: Node, payload: dict[str, Any], name: str, syntax: CommandSyntax) -> Task:
    """A pull request or CI event as a Task."""
    if name == "workflow_run":
        return _workflow_run(root, payload)
    if name == "check_run":
        return _check_run(root, payload)
    return _review(root, payload, name, syntax)


def pull_ref(pull: Node) -> PullRef:
    """The pull request an event names: number, head and base branches, head repository."""
    head, base = pull.opt_obj("head"), pull.opt_obj("base")
    head_repo = head.opt_obj("repo") if head else None
    return PullRef(
        number=pull.integer("number"),
        head=head.opt_str("ref") if head else None,
        head_repo=head_repo.opt_str("full_name") if head_repo else None,
        base=base.opt_str("ref") if base else None,
        head_sha=head.opt_str("sha") if head else None,
        url=pull.opt_str("html_url"),
    )


def review_note(comment: Node) -> ReviewNote:
    """A review comment on a line: its text, file, line and diff hunk."""
    user = comment.opt_obj("user")
    return ReviewNote(
        id=comment.integer("id"),
        body=comment.opt_str("body", MAX_TEXT) or "",
        path=comment.opt_str("path", 1000),
        line=comment.opt_int("line") or comment.opt_int("original_line"),
        diff_hunk=comment.opt_str("diff_hunk", MAX_TEXT),
        author=user.opt_str("login") if user else None,
    )


def _review(root: Node, payload: dict[str, Any], name: str, syntax: CommandSyntax) -> Task:
    from astraforge.events.github import labels, repository, requester

    repo = repository(root)
    pull = root.obj("pull_request")
    ref = pull_ref(pull)
    if name == "pull_request_review_comment":
        item = root.obj("comment")
        notes = [review_note(item)]
        review_id = item.opt_int("pull_request_review_id")
    else:
        item = root.obj("review")
        notes, review_id = [], item.integer("id")
    text = item.opt_str("body", MAX_TEXT) or ""
    invocation = find_invocation(text, syntax)
    return Task(
        source=Source.GITHUB,
        kind=Kind.FOLLOW_UP,
        event=f"{name}.{root.opt_str('action') or 'unknown'}",
        repository=repo,
        number=ref.number,
        on_pull_request=True,
        title=pull.string("title"),
        body=pull.opt_str("body", MAX_TEXT) or "",
        instruction=invocation.instruction if invocation else text,
        invocation=invocation.how if invocation else None,
        requester=requester(item.obj("user"), item.opt_str("author_association")),
        labels=labels(pull),
        links=Links(issue=ref.url, comment=item.opt_str("html_url")),
        fingerprint=f"github:{repo.full_name}#{ref.number}",
        pull=ref,
        review=notes,
        review_id=review_id,
        raw=payload,
    )


def _workflow_run(root: Node, payload: dict[str, Any]) -> Task:
    from astraforge.events.github import repository

    repo = repository(root)
    run = root.obj("workflow_run")
    workflow = root.opt_obj("workflow")
    name = run.opt_str("name") or (workflow.opt_str("name") if workflow else None) or "workflow"
    head_repo = run.opt_obj("head_repository")
    ci = CIRun(
        provider="github_actions",
        id=run.integer("id"),
        workflow=name,
        conclusion=run.opt_str("conclusion") or run.opt_str("status") or "unknown",
        head_branch=run.opt_str("head_branch", 1000),
        head_sha=run.opt_str("head_sha"),
        head_repo=head_repo.opt_str("full_name") if head_repo else None,
        url=run.opt_str("html_url"),
        source=run.opt_str("event"),
    )
    pulls = run.array("pull_requests")
    pull = None
    if pulls:
        pull = pull_ref(pulls[0]).model_copy(update={"head_repo": ci.head_repo})
    event = f"workflow_run.{root.opt_str('action') or 'completed'}"
    return ci_task(Source.GITHUB, event, repo, ci, pull, payload)


def _check_run(root: Node, payload: dict[str, Any]) -> Task:
    """A check run of a CI app (not GitHub Actions): the run is its one job, and its output
    (title, summary, text) is what the log says."""
    from astraforge.events.github import repository

    repo = repository(root)
    check = root.obj("check_run")
    suite = check.opt_obj("check_suite")
    app = check.opt_obj("app")
    repo_id = root.obj("repository").opt_int("id")
    pulls = check.array("pull_requests")
    pull = None
    if pulls:
        ref = pull_ref(pulls[0])
        head = pulls[0].opt_obj("head")
        head_repo = head.opt_obj("repo") if head else None
        same = head_repo is not None and head_repo.opt_int("id") == repo_id
        pull = ref.model_copy(update={"head_repo": repo.full_name if same else None})
    output = check.opt_obj("output")
    text = "\n\n".join(
        part
        for part in (
            (output.opt_str(key, MAX_TEXT) if output else None)
            for key in ("title", "summary", "text")
        )
        if part
    )
    name = check.opt_str("name") or "check"
    ci_id = check.integer("id")
    ci = CIRun(
        provider="github_checks",
        id=ci_id,
        workflow=name,
        conclusion=check.opt_str("conclusion") or check.opt_str("status") or "unknown",
        head_branch=suite.opt_str("head_branch", 1000) if suite else None,
        head_sha=check.opt_str("head_sha"),
        head_repo=pull.head_repo if pull else repo.full_name,
        url=check.opt_str("html_url"),
        source=app.opt_str("name") if app else None,
        jobs=[
            FailedJob(
                id=check.integer("id"), name=name, url=check.opt_str("html_url"), excerpt=text
            )
        ],
    )
    event = f"check_run.{root.opt_str('action') or 'completed'}"
    return ci_task(Source.GITHUB, event, repo, ci, pull, payload)
