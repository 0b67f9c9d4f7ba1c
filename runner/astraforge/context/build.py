"""Gathering the context of a task: frames mapped to code, suspect commits, the fetched Sentry
event when the payload had no frames, and the repository's facts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from astraforge import credentials
from astraforge.config import ContextConfig
from astraforge.context import code, repo, sentry_api, traces
from astraforge.context.paths import RepoIndex
from astraforge.errors import PayloadError
from astraforge.events.payload import Node
from astraforge.events.sentry import alert_from_event
from astraforge.task import Alert, Frame, Kind, Task


@dataclass
class Context:
    """Everything gathered for a task's prompt."""

    task: Task
    windows: list[code.CodeWindow] = field(default_factory=list)  # the crashing frame first
    unmapped: list[Frame] = field(default_factory=list)
    frames_total: int = 0
    trace_from: str | None = None  # alert, event API or text
    suspects: list[code.Suspect] = field(default_factory=list)
    instructions: list[repo.Instruction] = field(default_factory=list)
    repo_map: str = ""
    test_command: str | None = None
    test_command_from: str | None = None
    notes: list[str] = field(default_factory=list)
    personal_data: list[str] = field(default_factory=list)  # what a trusted setting allows

    @property
    def crashing(self) -> code.CodeWindow | None:
        return self.windows[0] if self.windows and self.windows[0].crashing else None


def gather(
    task: Task,
    checkout: Path,
    config: ContextConfig,
    *,
    test_command: str | None = None,
    env: Mapping[str, str] | None = None,
    index: RepoIndex | None = None,
) -> Context:
    """The context of a task: mapped frames, suspects, instructions and repository facts."""
    env = env or {}
    index = index or RepoIndex.of(checkout)
    ctx = Context(task=task, personal_data=list(config.personal_data))
    if task.alert and task.alert.needs_fetch and not task.alert.frames:
        ctx.task = task = _fetch(task, config, env, ctx.notes)
    frames, ctx.trace_from = _frames(task)
    ctx.frames_total = len(frames)
    map_frames(ctx, frames, index, checkout, config)
    ctx.suspects = code.suspects(checkout, ctx.windows[:3], config.suspect_commits)
    ctx.instructions = repo.instructions(
        checkout,
        config.instruction_files,
        near=[w.path for w in ctx.windows[:3]],
        present=index.files,
    )
    ctx.repo_map = repo.repo_map(index)
    if test_command:
        ctx.test_command, ctx.test_command_from = test_command, "configuration"
    else:
        found = repo.detect_test_command(checkout, index.files, index.names)
        if found:
            ctx.test_command, ctx.test_command_from = found
    return ctx


def _frames(task: Task) -> tuple[list[Frame], str | None]:
    if task.alert and task.alert.frames:
        return task.alert.frames, "alert"
    texts = [task.body, task.instruction or ""]
    if task.thread is not None:
        # A follow-up works on its branch; the checkout's code (the default branch) would
        # show stale windows, and the PR body's test output is the runner's own.
        texts = [task.instruction or ""] if task.kind is Kind.FOLLOW_UP else []
    elif task.ci is not None:
        texts = [job.excerpt for job in task.ci.jobs]
    for text in texts:
        found = traces.parse_text(text)
        if found:
            return found, "text"
    return [], None


def map_frames(
    ctx: Context, frames: list[Frame], index: RepoIndex, checkout: Path, config: ContextConfig
) -> None:
    """Windows for the mapped frames, newest first; in-app frames are preferred."""
    mapped = [(f, index.map_frame(f)) for f in reversed(frames)]  # newest first
    hits = [(f, m) for f, m in mapped if m is not None]
    ctx.unmapped = [f for f, m in mapped if m is None]
    in_app = [(f, m) for f, m in hits if f.in_app is not False]
    ordered = in_app + [h for h in hits if h not in in_app]
    for position, (frame, where) in enumerate(ordered[: config.max_frames]):
        assert where is not None
        win = code.window(
            checkout, where, frame, radius=config.window_lines, crashing=position == 0
        )
        if win is not None:
            ctx.windows.append(win)
    if frames and not ctx.windows:
        ctx.notes.append(
            f"none of the {len(frames)} stack frames maps to a file in this repository"
        )


def _fetch(task: Task, config: ContextConfig, env: Mapping[str, str], notes: list[str]) -> Task:
    alert = task.alert
    assert alert is not None
    token = env.get(config.sentry_token_env, "").strip()
    if not alert.issue_id:
        notes.append("the alert names no issue, so its latest event cannot be fetched")
        return task
    if not token:
        notes.append(
            f"the alert carries no stack trace and {config.sentry_token_env} is not set, "
            "so the issue's latest event was not fetched"
        )
        return task
    base = config.sentry_url
    held = credentials.for_run(env, sentry=(base, config.sentry_token_env))
    try:
        held.check(base, token)
        event = sentry_api.fetch_latest_event(base, token, alert.issue_id, alert.organization)
    except (sentry_api.FetchError, credentials.CredentialError) as exc:
        notes.append(exc.one_line())
        return task
    try:
        fetched = alert_from_event(Node(event))
    except PayloadError as exc:
        notes.append(f"the fetched event is malformed: {exc.one_line()}")
        return task
    merged = Alert(
        **{
            **alert.model_dump(),
            **{k: v for k, v in fetched.model_dump().items() if v not in (None, [], {}, 0)},
            "issue_id": alert.issue_id,
            "needs_fetch": False,
        }
    )
    return task.model_copy(update={"alert": merged})
