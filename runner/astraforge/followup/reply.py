"""A follow-up's writes: the new commit on the branch's tip, the same PR updated, and the
answers (in each review thread answered; the PR's status comment says the rest).

Every answer carries AstraForge's hidden marker, so it never triggers a run itself.
"""

from __future__ import annotations

from astraforge import render
from astraforge.agent.outcome import Outcome
from astraforge.branches import Author, FetchedBranch
from astraforge.config import PublishConfig
from astraforge.context.sanitize import one_line
from astraforge.errors import AstraForgeError
from astraforge.followup.state import new_round, replace, replace_section, state_after
from astraforge.forges.base import Forge, marker
from astraforge.publish import Published, Texts, write_line, writer
from astraforge.runs import Loaded, Result, Run
from astraforge.task import Task

REPLY_TOPIC = "reply"


def publish(
    forge: Forge,
    task: Task,
    written: Texts,
    patch: str,
    branch: FetchedBranch,
    config: PublishConfig,
) -> Published:
    """Commit ``patch`` on the branch's tip, update the PR's body (its rounds) and answer
    the review threads; every write is listed."""
    assert task.pull is not None
    started = branch.tip
    author = Author(config.author_name, config.author_email)
    pushed = branch.extend(
        patch, written.message, author, writer(forge, config, branch.url, branch.auth)
    )
    pull = forge.update_pr(task.pull.number, title=written.title, body=written.body)
    result = Published(
        branch=branch.branch, pr=pull, pushed=True, updated=True, verified=pushed.verified
    )
    on = "its tip" if pushed.attempts == 1 else "the commits pushed meanwhile"
    result.commit = pushed.commit
    result.writes += [
        f"{write_line(pushed)} on {on} ({started[:12]} when the run began)",
        f"update PR #{pull.number}",
    ]
    summary = one_line(written.message.split("\n\n", 1)[-1].split("\n", 1)[0], 200)
    result.writes += answer(forge, task, f"pushed `{pushed.commit[:12]}`: {summary}")
    return result


def answer(forge: Forge, task: Task, what: str) -> list[str]:
    """Reply in each review thread the follow-up answers; the writes made."""
    if task.pull is None:
        return []
    writes = []
    for note in task.review:
        forge.reply_review(task.pull.number, note, f"{marker(REPLY_TOPIC)}\n**AstraForge** {what}")
        writes.append(f"reply to review comment {note.id}")
    return writes


def record(forge: Forge, task: Task, outcome: Outcome | None, result: str) -> None:
    """Note a round that pushed nothing (no change, blocked, out of budget, failed) in the
    PR's state, so that CI rounds are counted and the next round knows."""
    if task.pull is None or task.thread is None:
        return
    state = state_after(task, new_round(task, outcome, result))
    pull = forge.pull(task.pull.number)
    rounds = [r.model_dump() for r in state.rounds]
    section = render.render("templates", "rounds.md.j2", rounds=rounds)
    body = replace_section(replace(pull.body, state), section)
    if body != pull.body:
        forge.update_pr(pull.number, title=pull.title, body=body)


def conclude(
    run: Run, loaded: Loaded | None, forge: Forge | None, result: Result, branch: FetchedBranch
) -> None:
    """The end of a follow-up: a round that published nothing is recorded in the PR's state
    and the review threads are told why; the fetched branch is removed. Forge errors here
    are reported, not raised."""
    try:
        task = result.task
        if task is None or task.thread is None or result.published is not None:
            return
        if forge is None or loaded is None or loaded.dry_run:
            return
        why = f"{result.conclusion.value.replace('_', ' ')}: {result.reason}"
        record(forge, task, result.outcome, why)
        for write in answer(forge, task, f"made no commit ({one_line(why, 300)})"):
            run.say(write)
    except AstraForgeError as exc:
        run.ci.annotate("warning", f"could not record the round on the PR: {exc.one_line()}")
    finally:
        branch.close()
