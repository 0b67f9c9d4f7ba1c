"""GitLab pipeline hooks -> Task (a failed pipeline, and the merge request it ran for)."""

from __future__ import annotations

from typing import Any

from astraforge.events.payload import Node, ci_task
from astraforge.task import CIRun, FailedJob, PullRef, Repository, Source, Task


def merge_request_ref(mr: Node, repo: Repository) -> PullRef:
    """The merge request a hook names; its head repository is the source project's path
    (or the target's, when both ids say it is the same project)."""
    source = mr.opt_obj("source")
    head_repo = source.opt_str("path_with_namespace") if source else None
    same = mr.opt_int("source_project_id") == mr.opt_int("target_project_id")
    if head_repo is None and same and mr.has("source_project_id"):
        head_repo = repo.full_name
    last = mr.opt_obj("last_commit")
    return PullRef(
        number=mr.integer("iid"),
        head=mr.opt_str("source_branch", 1000),
        head_repo=head_repo,
        base=mr.opt_str("target_branch", 1000),
        head_sha=last.opt_str("id") if last else None,
        url=mr.opt_str("url"),
    )


def parse(root: Node, payload: dict[str, Any]) -> Task:
    """A pipeline hook as a CI task: the failed jobs are listed, their traces fetched later."""
    from astraforge.events.gitlab import repository

    repo = repository(root.obj("project"))
    attrs = root.obj("object_attributes")
    mr = root.opt_obj("merge_request")
    pull = merge_request_ref(mr, repo) if mr else None
    ref = attrs.opt_str("ref", 1000)
    jobs = [
        FailedJob(
            id=build.integer("id"),
            name=build.opt_str("name") or "job",
            url=f"{repo.url}/-/jobs/{build.integer('id')}" if repo.url else None,
        )
        for build in root.array("builds")
        if build.opt_str("status") == "failed" and not build.opt_bool("allow_failure")
    ]
    ci = CIRun(
        provider="gitlab_ci",
        id=attrs.integer("id"),
        workflow=attrs.opt_str("name") or f"pipeline for {ref or '?'}",
        conclusion=attrs.opt_str("status") or "unknown",
        head_branch=pull.head if pull else ref,
        head_sha=attrs.opt_str("sha"),
        head_repo=pull.head_repo if pull else repo.full_name,
        url=attrs.opt_str("url"),
        source=attrs.opt_str("source"),
        jobs=jobs,
    )
    return ci_task(Source.GITLAB, f"pipeline.{ci.conclusion}", repo, ci, pull, payload)
