"""The first messages of a run, rendered from prompts/ and fitted to a token budget.

Everything that came from outside the repository is cleaned (see :mod:`sanitize`) before a
template sees it, and templates put it in ``<data>`` blocks. When the prompt is over budget the
least relevant parts go first: far frames, breadcrumbs, the repository map, suspect commits,
instruction files, then the size of the issue text. The crashing frame always stays.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astraforge import render, tokens
from astraforge.config import Config
from astraforge.context.build import Context, gather
from astraforge.context.sanitize import MAX_UNTRUSTED, clean
from astraforge.sandbox.config import WORKSPACE
from astraforge.task import Frame, Kind, Task

Message = dict[str, Any]
MAX_BREADCRUMBS = 20
MAX_TAGS = 20
MAX_UNMAPPED = 10
MIN_BODY = 1000
SECRET_HEADERS = {
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
    "x-csrftoken",
    "x-xsrf-token",
}
KIND_TEMPLATES = {
    Kind.ISSUE: "issue.md.j2",
    Kind.COMMENT_COMMAND: "comment_command.md.j2",
    Kind.ALERT: "alert.md.j2",
    Kind.REQUEST: "request.md.j2",
}


@dataclass
class Selection:
    frames: int
    breadcrumbs: bool = True
    repo_map: bool = True
    suspects: bool = True
    instructions: int = 0
    body_limit: int = MAX_UNTRUSTED
    omitted: list[str] = field(default_factory=list)

    def reduce(self) -> bool:
        """Drop the next least relevant part; False when nothing is left to drop."""
        if self.frames > 1:
            self.frames -= 1
            self.omitted.append("a far stack frame")
        elif self.breadcrumbs:
            self.breadcrumbs = False
            self.omitted.append("breadcrumbs")
        elif self.repo_map:
            self.repo_map = False
            self.omitted.append("repository map")
        elif self.suspects:
            self.suspects = False
            self.omitted.append("suspect commits")
        elif self.instructions > 0:
            self.instructions -= 1
            self.omitted.append("an instruction file")
        elif self.body_limit > MIN_BODY:
            self.body_limit = max(MIN_BODY, self.body_limit // 2)
            self.omitted.append("part of the issue text")
        else:
            return False
        return True


@dataclass
class Prompt:
    messages: list[Message]
    tokens: int
    budget: int
    omitted: list[str]
    context: Context


def build_prompt(
    task: Task, checkout: Path, config: Config, env: Mapping[str, str] | None = None
) -> Prompt:
    ctx = gather(task, checkout, config.context, test_command=config.test_command, env=env)
    return render_prompt(ctx, config.context.max_tokens)


def render_prompt(ctx: Context, budget: int) -> Prompt:
    selection = Selection(frames=len(ctx.windows), instructions=len(ctx.instructions))
    while True:
        messages = _messages(ctx, selection)
        count = tokens.count_messages(messages)
        if count <= budget or not selection.reduce():
            break
    return Prompt(messages, count, budget, _summarize(selection.omitted), ctx)


def _summarize(omitted: list[str]) -> list[str]:
    counts: dict[str, int] = {}
    for item in omitted:
        counts[item] = counts.get(item, 0) + 1
    return [item if n == 1 else f"{n} x {item}" for item, n in counts.items()]


def _messages(ctx: Context, selection: Selection) -> list[Message]:
    view = _view(ctx, selection)
    system = render.render(
        "prompts", "system.md.j2", workspace=WORKSPACE, test_command=ctx.test_command
    )
    user = render.render("prompts", KIND_TEMPLATES[ctx.task.kind], **view)
    return [{"role": "system", "content": system}, {"role": "user", "content": user.strip()}]


def _fence_for(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _frame_text(frame: Frame) -> str:
    where = frame.abs_path or frame.filename or frame.module or "?"
    return clean(f"{where}:{frame.lineno or '?'} in {frame.function or '?'}", 300)


def _view(ctx: Context, selection: Selection) -> dict[str, Any]:
    task = ctx.task
    alert = task.alert
    windows = ctx.windows[: selection.frames]
    omitted_frames = len(ctx.windows) - len(windows)
    requester = f" by @{task.requester.login}" if task.requester else ""
    where = task.repository.full_name if task.repository else None
    number = f"#{task.number}" if task.number is not None else ""
    origin = clean(f"{task.source.value} {task.event} {where or ''}{number}{requester}", 200)
    view: dict[str, Any] = {
        "task": task,
        "origin": " ".join(origin.split()),
        "title": clean(task.title, 500),
        "body": clean(task.body, selection.body_limit) if task.body else "",
        "instruction": clean(task.instruction, selection.body_limit) if task.instruction else "",
        "labels": [clean(label, 100) for label in task.labels],
        "alert": _alert_view(alert, selection) if alert else None,
        "frames": [
            {
                "path": w.path,
                "lineno": w.lineno,
                "function": clean(w.function or "", 200) or None,
                "crashing": w.crashing,
                "in_app": w.in_app,
                "drift": clean(w.drift, 600) if w.drift else None,
                "code": w.render(),
                "fence": _fence_for(w.render()),
                "language": _language(w.path),
            }
            for w in windows
        ],
        "frames_omitted": omitted_frames,
        "frames_total": ctx.frames_total,
        "trace_from": ctx.trace_from,
        "unmapped": [_frame_text(f) for f in ctx.unmapped[:MAX_UNMAPPED]],
        "unmapped_more": max(0, len(ctx.unmapped) - MAX_UNMAPPED),
        "suspects": ctx.suspects if selection.suspects else [],
        "instructions": [
            {"path": i.path, "text": clean(i.text, 16_000)}
            for i in ctx.instructions[: selection.instructions]
        ],
        "repo_map": ctx.repo_map if selection.repo_map else None,
        "test_command": ctx.test_command,
        "test_command_from": ctx.test_command_from,
        "notes": ctx.notes,
        "omitted": _summarize(selection.omitted),
    }
    return view


def _alert_view(alert: Any, selection: Selection) -> dict[str, Any]:
    request = alert.request
    return {
        "short_id": clean(alert.short_id or "", 100) or None,
        "level": clean(alert.level or "", 50) or None,
        "environment": clean(alert.environment or "", 100) or None,
        "release": clean(alert.release or "", 200) or None,
        "platform": clean(alert.platform or "", 50) or None,
        "culprit": clean(alert.culprit or "", 500) or None,
        "exception": clean(
            ": ".join(p for p in (alert.exception_type, alert.exception_value) if p), 2000
        ),
        "tags": [(clean(k, 100), clean(v, 200)) for k, v in list(alert.tags.items())[:MAX_TAGS]],
        "request": (
            {
                "method": clean(request.method or "", 20),
                "url": clean(request.url or "", 1000),
                "query": clean(request.query or "", 1000),
                "headers": [
                    (clean(k, 100), clean(v, 300))
                    for k, v in list(request.headers.items())[:20]
                    if k.lower() not in SECRET_HEADERS
                ],
            }
            if request
            else None
        ),
        "breadcrumbs": [
            {
                "time": clean(str(b.timestamp or ""), 40),
                "category": clean(b.category or b.type or "", 60),
                "level": clean(b.level or "", 20),
                "message": clean(b.message or "", 300),
            }
            for b in alert.breadcrumbs[-MAX_BREADCRUMBS:]
        ]
        if selection.breadcrumbs
        else [],
    }


def _language(path: str) -> str:
    ext = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    return {
        "py": "python",
        "js": "javascript",
        "mjs": "javascript",
        "cjs": "javascript",
        "ts": "typescript",
        "tsx": "tsx",
        "jsx": "jsx",
        "java": "java",
        "kt": "kotlin",
        "go": "go",
        "rb": "ruby",
        "rs": "rust",
        "php": "php",
        "cs": "csharp",
    }.get(ext, "")
