"""What a follow-up's prompt shows, made safe: the original task, the earlier rounds, the
branch's diff, the review comments with their hunks and the failed jobs' logs.

Text from people and CI logs is cleaned and goes into data blocks or one line; code (the
diff, a review comment's hunk) goes into a fence longer than any backtick run inside it.
"""

from __future__ import annotations

import re
from typing import Any

from astraforge.context.sanitize import attribute, clean, one_line
from astraforge.task import Task

MAX_LOG_TEXT = 40_000


def fence_for(text: str) -> str:
    """A code fence that ``text`` cannot close."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _capped(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit} more characters cut to fit the prompt]"


def conversation_view(task: Task, diff_limit: int, body_limit: int) -> dict[str, Any]:
    """The ``thread``, ``review`` and ``ci`` variables of the prompt templates."""
    thread = task.thread
    thread_view = None
    if thread is not None:
        diff = _capped(thread.diff, diff_limit)
        thread_view = {
            "origin": attribute(f"the original task {thread.fingerprint}"),
            "title": one_line(thread.title, 500),
            "body": clean(thread.body, body_limit),
            "branch": one_line(thread.branch, 200),
            "diff": diff,
            "fence": fence_for(diff),
            "rounds": [
                {
                    "number": r.number,
                    "kind": r.kind,
                    "by": one_line(r.by, 100) if r.by else None,
                    "request": one_line(r.request, 300),
                    "result": one_line(r.result, 300),
                    "summary": clean(r.summary, 2000) if r.summary else None,
                    "root_cause": clean(r.root_cause, 1000) if r.root_cause else None,
                }
                for r in thread.rounds
            ],
        }
    review = []
    for note in task.review:
        hunk = note.diff_hunk or ""
        where = f"{note.path or 'the pull request'}" + (f", line {note.line}" if note.line else "")
        review.append(
            {
                "where": one_line(where, 300),
                "hunk": hunk,
                "fence": fence_for(hunk),
                "source": attribute(
                    f"review comment by @{note.author}" if note.author else "review comment"
                ),
                "body": clean(note.body, body_limit),
            }
        )
    ci = None
    if task.ci is not None:
        ci = {
            "origin": attribute(f"{task.ci.provider} run {task.ci.id}"),
            "workflow": one_line(task.ci.workflow, 200),
            "conclusion": one_line(task.ci.conclusion, 50),
            "jobs": [
                {
                    "name": one_line(job.name, 200),
                    "source": attribute(f"log of {job.name}"),
                    "excerpt": clean(job.excerpt, MAX_LOG_TEXT),
                }
                for job in task.ci.jobs
            ],
        }
    return {"thread": thread_view, "review": review, "ci": ci}
