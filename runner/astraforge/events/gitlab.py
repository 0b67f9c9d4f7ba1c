"""GitLab webhooks (issue and note hooks) and pipeline variables -> Task."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from astraforge.errors import PayloadError, UnsupportedEventError
from astraforge.events import gitlab_pipeline
from astraforge.events.commands import CommandSyntax, find_invocation
from astraforge.events.payload import MAX_TEXT, Node, digest, title_of
from astraforge.task import Kind, Links, Repository, Requester, ReviewNote, Source, Task

REQUEST_VARIABLE = "ASTRAFORGE_REQUEST"


def parse(payload: dict[str, Any], syntax: CommandSyntax | None = None) -> Task:
    """A GitLab webhook payload as a Task."""
    root = Node(payload)
    kind = root.string("object_kind")
    if kind == "issue":
        return _issue(root, payload)
    if kind == "note":
        return _note(root, payload, syntax or CommandSyntax())
    if kind == "pipeline":
        return gitlab_pipeline.parse(root, payload)
    raise UnsupportedEventError(f"GitLab '{kind}' hook is not one AstraForge acts on")


def repository(project: Node) -> Repository:
    """The project a GitLab payload names."""
    path = project.string("path_with_namespace")
    owner, _, name = path.rpartition("/")
    if not owner:
        project.fail("path_with_namespace", f"must look like group/project, got {path!r}")
    return Repository(
        forge="gitlab",
        owner=owner,
        name=name,
        default_branch=project.opt_str("default_branch"),
        url=project.opt_str("web_url"),
    )


def _user(root: Node) -> Requester | None:
    user = root.opt_obj("user")
    if not user:
        return None
    login = user.string("username")
    return Requester(login=login, is_bot=user.opt_str("bot") == "true" or "_bot" in login)


def _label_titles(node: Node, key: str) -> list[str]:
    return [
        label.opt_str("title") or "" if label.is_obj() else label.as_str()
        for label in node.array(key)
    ]


def _issue(root: Node, payload: dict[str, Any]) -> Task:
    repo = repository(root.obj("project"))
    attrs = root.obj("object_attributes")
    iid = attrs.integer("iid")
    labels = _label_titles(root, "labels") or _label_titles(attrs, "labels")
    added = None
    changes = root.opt_obj("changes")
    label_change = changes.opt_obj("labels") if changes else None
    if label_change:
        before = set(_label_titles(label_change, "previous"))
        new = [t for t in _label_titles(label_change, "current") if t not in before]
        added = new[0] if new else None
    return Task(
        source=Source.GITLAB,
        kind=Kind.ISSUE,
        event=f"issue.{attrs.opt_str('action') or 'unknown'}",
        repository=repo,
        number=iid,
        title=attrs.string("title"),
        body=attrs.opt_str("description", MAX_TEXT) or "",
        requester=_user(root),
        labels=labels,
        added_label=added,
        links=Links(issue=attrs.opt_str("url")),
        fingerprint=f"gitlab:{repo.full_name}#{iid}",
        raw=payload,
    )


def _note(root: Node, payload: dict[str, Any], syntax: CommandSyntax) -> Task:
    repo = repository(root.obj("project"))
    attrs = root.obj("object_attributes")
    noteable = attrs.string("noteable_type")
    if noteable == "Issue":
        target, on_mr = root.obj("issue"), False
    elif noteable == "MergeRequest":
        target, on_mr = root.obj("merge_request"), True
    else:
        raise UnsupportedEventError(f"GitLab comment on a {noteable} is not one AstraForge acts on")
    iid = target.integer("iid")
    text = attrs.opt_str("note", MAX_TEXT) or ""
    invocation = find_invocation(text, syntax)
    requester = _user(root)
    pull = gitlab_pipeline.merge_request_ref(target, repo) if on_mr else None
    review = []
    position = attrs.opt_obj("position")
    if on_mr and (attrs.opt_str("type") == "DiffNote" or position):
        review.append(
            ReviewNote(
                id=attrs.integer("id"),
                body=text,
                path=(position.opt_str("new_path", 1000) or position.opt_str("old_path", 1000))
                if position
                else None,
                line=(position.opt_int("new_line") or position.opt_int("old_line"))
                if position
                else None,
                thread=attrs.opt_str("discussion_id"),
                author=requester.login if requester else None,
            )
        )
    return Task(
        source=Source.GITLAB,
        kind=Kind.FOLLOW_UP if on_mr else Kind.COMMENT_COMMAND,
        event=f"note.{noteable.lower()}",
        repository=repo,
        number=iid,
        on_pull_request=on_mr,
        title=target.string("title"),
        body=target.opt_str("description", MAX_TEXT) or "",
        instruction=invocation.instruction if invocation else text,
        invocation=invocation.how if invocation else None,
        requester=requester,
        labels=_label_titles(target, "labels"),
        links=Links(issue=target.opt_str("url"), comment=attrs.opt_str("url")),
        fingerprint=f"gitlab:{repo.full_name}{'!' if on_mr else '#'}{iid}",
        pull=pull,
        review=review,
        raw=payload,
    )


def repository_from_env(env: Mapping[str, str]) -> Repository | None:
    """The project a GitLab CI job runs for, from its predefined variables."""
    owner, _, name = env.get("CI_PROJECT_PATH", "").rpartition("/")
    if not owner:
        return None
    return Repository(
        forge="gitlab",
        owner=owner,
        name=name,
        default_branch=env.get("CI_DEFAULT_BRANCH"),
        url=env.get("CI_PROJECT_URL"),
    )


def from_variables(env: Mapping[str, str]) -> Task:
    """A plain-language request passed as a pipeline variable (api, web or trigger pipelines)."""
    request = (env.get(REQUEST_VARIABLE) or "").strip()
    if not request:
        raise PayloadError(
            f"the pipeline has no {REQUEST_VARIABLE} variable and no TRIGGER_PAYLOAD",
            f"run the pipeline with {REQUEST_VARIABLE}='what to fix', or trigger it with a webhook",
        )
    repo = repository_from_env(env)
    path = env.get("CI_PROJECT_PATH", "")
    login = env.get("GITLAB_USER_LOGIN")
    return Task(
        source=Source.MANUAL,
        kind=Kind.REQUEST,
        event=f"pipeline.{env.get('CI_PIPELINE_SOURCE', 'unknown')}",
        repository=repo,
        title=title_of(request),
        instruction=request[:MAX_TEXT],
        requester=Requester(login=login) if login else None,
        links=Links(event=env.get("CI_PIPELINE_URL")),
        fingerprint=f"gitlab:{path}:request:{digest(request)}"
        if path
        else f"manual:{digest(request)}",
        raw={name: env[name] for name in (REQUEST_VARIABLE, "CI_PIPELINE_SOURCE") if name in env},
    )
