"""What a follow-up resumes, kept in the PR body: the original task and every round.

The state is one hidden line (``<!-- astraforge:thread ... -->``, compressed JSON in
base64), written by the first run and rewritten by each round. It is read back as untrusted
text: anyone who can edit the PR can edit it, so what it says reaches the model only inside
data blocks, and a line that does not parse is ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from astraforge.agent.outcome import Outcome
from astraforge.context.sanitize import clean, one_line
from astraforge.task import Kind, Round, Task

_LINE = re.compile(r"<!-- astraforge:thread ([A-Za-z0-9_=-]+) -->")
_SECTION = re.compile(r"<!-- astraforge:rounds -->.*?<!-- /astraforge:rounds -->\n?", re.DOTALL)
MAX_STATE = 64 * 1024  # bytes of the decoded state
MAX_ROUNDS = 50
MAX_BODY = 2000


class ThreadState(BaseModel):
    """The original task of a PR and its rounds."""

    model_config = ConfigDict(extra="ignore")

    fingerprint: str
    title: str
    body: str = ""
    rounds: list[Round] = Field(default_factory=list)


def encode(state: ThreadState) -> str:
    """The hidden line holding ``state``."""
    kept = state.model_copy(update={"rounds": state.rounds[-MAX_ROUNDS:]})
    data = zlib.compress(kept.model_dump_json(exclude_none=True).encode(), 9)
    return f"<!-- astraforge:thread {base64.urlsafe_b64encode(data).decode()} -->"


def decode(body: str) -> ThreadState | None:
    """The state a PR body holds, or None (absent, or not a state AstraForge wrote)."""
    found = _LINE.search(body or "")
    if not found:
        return None
    try:
        raw = zlib.decompressobj().decompress(base64.urlsafe_b64decode(found[1]), MAX_STATE)
        return ThreadState.model_validate(json.loads(raw))
    except (binascii.Error, zlib.error, ValueError, ValidationError, RecursionError):
        return None


def replace(body: str, state: ThreadState) -> str:
    """``body`` holding ``state`` (in place of an earlier one, or appended)."""
    line = encode(state)
    if _LINE.search(body or ""):
        return _LINE.sub(lambda _: line, body, count=1)
    return (body or "").rstrip() + "\n\n" + line + "\n"


def replace_section(body: str, section: str) -> str:
    """``body`` with its list of rounds replaced by ``section`` (inserted before the hidden
    lines when it has none)."""
    if _SECTION.search(body):
        return _SECTION.sub(lambda _: section, body, count=1)
    at = body.find("<!-- astraforge:")
    at = len(body.rstrip()) if at < 0 else at
    return body[:at].rstrip() + "\n\n" + section + "\n" + body[at:]


def request_of(task: Task) -> str:
    """What a round was asked, as one line."""
    if task.kind is Kind.CI_FAILURE and task.ci:
        jobs = ", ".join(job.name for job in task.ci.jobs) or "no job named"
        return one_line(f"CI: {task.ci.workflow} failed ({jobs})", 200)
    if task.review:
        what = f"{len(task.review)} review comment(s)"
        text = task.instruction if task.invocation else ""
        return one_line(f"{what}: {text}" if text else what, 200)
    return one_line(task.instruction or task.title, 200)


def kind_of(task: Task) -> Literal["first", "comment", "review", "ci"]:
    """The kind of round a task starts."""
    if task.thread is None:
        return "first"
    if task.kind is Kind.CI_FAILURE:
        return "ci"
    return "review" if task.review else "comment"


def new_round(task: Task, outcome: Outcome | None, result: str) -> Round:
    """The round this run adds, from what it was asked and what came of it."""
    earlier = task.thread.rounds if task.thread else []
    before = outcome.tests_before if outcome else None
    after = outcome.tests_after if outcome else None
    return Round(
        number=len(earlier) + 1,
        kind=kind_of(task),
        request=request_of(task),
        by=task.requester.login if task.requester else None,
        result=one_line(result, 300),
        summary=clean(outcome.summary, 2000) if outcome and outcome.summary else None,
        root_cause=clean(outcome.root_cause, 1000) if outcome and outcome.root_cause else None,
        tests_before=before.passed if before else None,
        tests_after=after.passed if after else None,
    )


def state_after(task: Task, added: Round) -> ThreadState:
    """The PR's state once ``added`` is done: a first run starts it."""
    if task.thread is None:
        return ThreadState(
            fingerprint=task.fingerprint,
            title=one_line(task.title, 300),
            body=clean(task.body, MAX_BODY),
            rounds=[added],
        )
    return ThreadState(
        fingerprint=task.thread.fingerprint,
        title=task.thread.title,
        body=task.thread.body,
        rounds=[*task.thread.rounds, added],
    )
