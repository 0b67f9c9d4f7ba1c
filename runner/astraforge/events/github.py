"""GitHub webhook payloads (as in GITHUB_EVENT_PATH) -> Task."""

from __future__ import annotations

from typing import Any

from astraforge.errors import PayloadError, UnsupportedEventError
from astraforge.events import forwarded, github_pulls
from astraforge.events.commands import CommandSyntax, find_invocation
from astraforge.events.payload import MAX_TEXT, Node, digest, title_of
from astraforge.task import Kind, Links, PullRef, Repository, Requester, Source, Task

REQUEST_INPUTS = ("request", "prompt", "task", "instructions")


def infer_event_name(payload: dict[str, Any]) -> str:
    """Guess the X-GitHub-Event of a payload saved without its header."""
    keys = set(payload)
    if "client_payload" in keys:
        return "repository_dispatch"
    if "inputs" in keys and "ref" in keys and "action" not in keys:
        return "workflow_dispatch"
    if "comment" in keys:
        return "issue_comment" if "issue" in keys else "pull_request_review_comment"
    if "review" in keys and "pull_request" in keys:
        return "pull_request_review"
    for name in ("issue", "workflow_run", "pull_request", "check_run", "check_suite", "release"):
        if name in keys:
            return "issues" if name == "issue" else name
    if "pusher" in keys:
        return "push"
    raise PayloadError(
        "payload is not a recognizable GitHub event (no issue, comment, client_payload or inputs)",
        "pass --event-name with the X-GitHub-Event header GitHub sent with it "
        "(issues, issue_comment, repository_dispatch, ...)",
    )


def parse(
    payload: dict[str, Any], event_name: str | None = None, syntax: CommandSyntax | None = None
) -> Task:
    """A GitHub webhook payload as a Task."""
    name = event_name or infer_event_name(payload)
    syntax = syntax or CommandSyntax()
    root = Node(payload)
    if name == "issues":
        return _issue(root, payload)
    if name == "issue_comment":
        return _comment(root, payload, name, syntax)
    if name in github_pulls.EVENTS:
        return github_pulls.parse(root, payload, name, syntax)
    if name == "repository_dispatch":
        return _dispatch(root, payload)
    if name == "workflow_dispatch":
        return _workflow_dispatch(root, payload)
    raise UnsupportedEventError(f"GitHub event '{name}' is not one AstraForge acts on")


def repository(root: Node) -> Repository:
    """The repository a GitHub payload names."""
    repo = root.obj("repository")
    full = repo.string("full_name")
    owner, _, name = full.partition("/")
    if not owner or not name:
        repo.fail("full_name", f"must look like owner/name, got {full!r}")
    return Repository(
        forge="github",
        owner=owner,
        name=name,
        default_branch=repo.opt_str("default_branch"),
        url=repo.opt_str("html_url"),
    )


def requester(user: Node, association: str | None = None) -> Requester:
    """Who caused a GitHub event."""
    login = user.string("login")
    is_bot = user.opt_str("type") == "Bot" or login.endswith("[bot]")
    return Requester(login=login, association=association, is_bot=is_bot)


def labels(issue: Node) -> list[str]:
    """The label names of an issue or pull request."""
    return [
        label.string("name") if label.is_obj() else label.as_str()
        for label in issue.array("labels")
    ]


def _issue(root: Node, payload: dict[str, Any]) -> Task:
    repo = repository(root)
    issue = root.obj("issue")
    number = issue.integer("number")
    author = issue.obj("user")
    sender = root.opt_obj("sender") or author
    association = (
        issue.opt_str("author_association")
        if sender.value.get("login") == author.value.get("login")
        else None
    )
    label = root.opt_obj("label")
    return Task(
        source=Source.GITHUB,
        kind=Kind.ISSUE,
        event=f"issues.{root.opt_str('action') or 'unknown'}",
        repository=repo,
        number=number,
        title=issue.string("title"),
        body=issue.opt_str("body", MAX_TEXT) or "",
        requester=requester(sender, association),
        labels=labels(issue),
        added_label=label.opt_str("name") if label else None,
        links=Links(issue=issue.opt_str("html_url")),
        fingerprint=f"github:{repo.full_name}#{number}",
        raw=payload,
    )


def _comment(root: Node, payload: dict[str, Any], name: str, syntax: CommandSyntax) -> Task:
    repo = repository(root)
    comment = root.obj("comment")
    target = root.obj("issue")
    on_pr = target.has("pull_request")
    number = target.integer("number")
    text = comment.opt_str("body", MAX_TEXT) or ""
    invocation = find_invocation(text, syntax)
    return Task(
        source=Source.GITHUB,
        kind=Kind.FOLLOW_UP if on_pr else Kind.COMMENT_COMMAND,
        event=f"{name}.{root.opt_str('action') or 'unknown'}",
        repository=repo,
        number=number,
        on_pull_request=on_pr,
        title=target.string("title"),
        body=target.opt_str("body", MAX_TEXT) or "",
        instruction=invocation.instruction if invocation else text,
        invocation=invocation.how if invocation else None,
        requester=requester(comment.obj("user"), comment.opt_str("author_association")),
        labels=labels(target),
        links=Links(issue=target.opt_str("html_url"), comment=comment.opt_str("html_url")),
        fingerprint=f"github:{repo.full_name}#{number}",
        pull=PullRef(number=number, url=target.opt_str("html_url")) if on_pr else None,
        raw=payload,
    )


def _dispatch(root: Node, payload: dict[str, Any]) -> Task:
    repo = repository(root)
    event_type = root.string("action")
    client = root.obj("client_payload")
    if forwarded.is_forwarded(client.value):
        task = forwarded.decode(client.value, path=client.path)
        return task.model_copy(
            update={
                "repository": repo,
                "raw": payload,
                "event": f"repository_dispatch.{event_type}",
            }
        )
    request = client.opt_str("request", MAX_TEXT)
    return Task(
        source=Source.MANUAL if request else Source.GITHUB,
        kind=Kind.REQUEST,
        event=f"repository_dispatch.{event_type}",
        repository=repo,
        title=title_of(request) if request else f"repository_dispatch {event_type}",
        instruction=request,
        requester=_sender(root),
        fingerprint=f"github:{repo.full_name}:dispatch:{digest(request or event_type)}",
        raw=payload,
    )


def _workflow_dispatch(root: Node, payload: dict[str, Any]) -> Task:
    repo = repository(root)
    inputs = root.opt_obj("inputs")
    request = None
    if inputs:
        request = next((inputs.opt_str(k, MAX_TEXT) for k in REQUEST_INPUTS if inputs.has(k)), None)
    return Task(
        source=Source.MANUAL,
        kind=Kind.REQUEST,
        event="workflow_dispatch",
        repository=repo,
        title=title_of(request) if request else "workflow_dispatch without a request",
        instruction=request,
        requester=_sender(root),
        fingerprint=f"github:{repo.full_name}:request:{digest(request or '')}",
        raw=payload,
    )


def _sender(root: Node) -> Requester | None:
    sender = root.opt_obj("sender")
    return requester(sender) if sender else None
