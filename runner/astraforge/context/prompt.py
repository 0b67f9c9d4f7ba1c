"""The first messages of a run, rendered from prompts/ and fitted to a token budget.

Everything that came from outside the repository is cleaned (see :mod:`sanitize`) before a
template sees it, and templates put it in ``<data>`` blocks. When the prompt is over budget the
least relevant parts go first: far frames, breadcrumbs, the repository map, suspect commits,
instruction files, then the size of the issue text. The crashing frame always stays.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astraforge import render, tokens
from astraforge.config import Config
from astraforge.context.build import Context, gather
from astraforge.context.conversation import conversation_view
from astraforge.context.sanitize import MAX_UNTRUSTED, attribute, clean, one_line
from astraforge.sandbox.config import WORKSPACE
from astraforge.task import Frame, Kind, Task

Message = dict[str, Any]
MAX_BREADCRUMBS = 20
MAX_TAGS = 20
MAX_UNMAPPED = 10
MIN_BODY = 1000
KIND_TEMPLATES = {
    Kind.ISSUE: "issue.md.j2",
    Kind.COMMENT_COMMAND: "comment_command.md.j2",
    Kind.ALERT: "alert.md.j2",
    Kind.REQUEST: "request.md.j2",
    Kind.FOLLOW_UP: "follow_up.md.j2",
    Kind.CI_FAILURE: "follow_up.md.j2",  # ci_failure.md.j2 when there is no PR to continue
}
MIN_DIFF = 4000


@dataclass
class Selection:
    """What the prompt keeps; reduced part by part to fit the budget."""

    frames: int
    breadcrumbs: bool = True
    repo_map: bool = True
    suspects: bool = True
    instructions: int = 0
    body_limit: int = MAX_UNTRUSTED
    diff_limit: int = 40_000
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
        elif self.diff_limit > MIN_DIFF:
            self.diff_limit = max(MIN_DIFF, self.diff_limit // 2)
            self.omitted.append("part of the branch's diff")
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
    """The first messages of a run and their token count."""

    messages: list[Message]
    tokens: int
    budget: int
    omitted: list[str]
    context: Context


def build_prompt(
    task: Task, checkout: Path, config: Config, env: Mapping[str, str] | None = None
) -> Prompt:
    """Gather the context of a task and render its prompt within the budget."""
    ctx = gather(task, checkout, config.context, test_command=config.test_command, env=env)
    return render_prompt(ctx, config.context.max_tokens)


def render_prompt(ctx: Context, budget: int) -> Prompt:
    """The prompt of a gathered context, dropping the least relevant parts to fit."""
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
    template = KIND_TEMPLATES[ctx.task.kind]
    if ctx.task.kind is Kind.CI_FAILURE and ctx.task.thread is None:
        template = "ci_failure.md.j2"
    user = render.render("prompts", template, **view)
    return [{"role": "system", "content": system}, {"role": "user", "content": user.strip()}]


def _fence_for(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _frame_text(frame: Frame) -> str:
    where = frame.abs_path or frame.filename or frame.module or "?"
    return one_line(f"{where}:{frame.lineno or '?'} in {frame.function or '?'}", 300)


def _view(ctx: Context, selection: Selection) -> dict[str, Any]:
    task = ctx.task
    alert = task.alert
    windows = ctx.windows[: selection.frames]
    omitted_frames = len(ctx.windows) - len(windows)
    requester = f" by @{task.requester.login}" if task.requester else ""
    where = task.repository.full_name if task.repository else None
    number = f"#{task.number}" if task.number is not None else ""
    allowed = set(ctx.personal_data)
    view: dict[str, Any] = {
        "task": task,
        "origin": attribute(f"{task.source.value} {task.event} {where or ''}{number}{requester}"),
        "title": one_line(task.title, 500),
        "body": clean(task.body, selection.body_limit) if task.body else "",
        "instruction": clean(task.instruction, selection.body_limit) if task.instruction else "",
        "labels": [one_line(label, 100) for label in task.labels],
        "alert": _alert_view(alert, selection, allowed) if alert else None,
        "frames": [
            {
                "path": one_line(w.path, 300),
                "lineno": w.lineno,
                "function": one_line(w.function or "", 200) or None,
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
        "suspects": [
            {
                "commit": s.commit[:10],
                "date": one_line(s.date, 40),
                "author": one_line(s.author, 100),
                "summary": one_line(s.summary, 200),
                "where": one_line(s.where, 300),
            }
            for s in (ctx.suspects if selection.suspects else [])
        ],
        "instructions": [
            {"path": attribute(i.path), "text": clean(i.text, 16_000)}
            for i in ctx.instructions[: selection.instructions]
        ],
        "repo_map": clean(ctx.repo_map, 8000) if selection.repo_map else None,
        "test_command": one_line(ctx.test_command, 500) if ctx.test_command else None,
        "test_command_from": ctx.test_command_from,
        "notes": [one_line(note, 600) for note in ctx.notes],
        "omitted": _summarize(selection.omitted),
        **conversation_view(task, selection.diff_limit, selection.body_limit),
    }
    return view


# Personal data in alerts, by the name a trusted setting allows it with.
PERSONAL_HEADERS = {
    "cookie": "cookies",
    "set-cookie": "cookies",
    "authorization": "auth_headers",
    "proxy-authorization": "auth_headers",
    "x-api-key": "auth_headers",
    "x-auth-token": "auth_headers",
    "x-csrftoken": "auth_headers",
    "x-xsrf-token": "auth_headers",
    "user-agent": "user_agent",
    "x-forwarded-for": "ip_address",
    "x-real-ip": "ip_address",
    "forwarded": "ip_address",
    "true-client-ip": "ip_address",
    "cf-connecting-ip": "ip_address",
    "x-client-ip": "ip_address",
    "x-cluster-client-ip": "ip_address",
    "remote-addr": "ip_address",
}
PERSONAL_TAGS = {
    "user": "email",
    "user.email": "email",
    "email": "email",
    "user.ip": "ip_address",
    "ip": "ip_address",
    "ip_address": "ip_address",
    "client_ip": "ip_address",
    "user_agent": "user_agent",
    "user-agent": "user_agent",
}
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}(?![\w:])")


def _ipv6(match: re.Match[str]) -> str:
    try:
        ipaddress.IPv6Address(match.group(0))
    except ValueError:
        return match.group(0)  # a time of day, a port list: not an address
    return "[ip]"


def _private(text: str, allowed: set[str]) -> str:
    """``text`` with e-mail and IP addresses masked, unless a trusted setting allows them."""
    if "email" not in allowed:
        text = _EMAIL.sub("[email]", text)
    if "ip_address" not in allowed:
        text = _IPV6.sub(_ipv6, _IPV4.sub("[ip]", text))
    return text


def _alert_view(alert: Any, selection: Selection, allowed: set[str]) -> dict[str, Any]:
    request = alert.request

    def field(text: str | None, limit: int) -> str | None:
        return one_line(_private(text or "", allowed), limit) or None

    def kept(key: str, table: dict[str, str]) -> bool:
        kind = table.get(key.lower())
        return kind is None or kind in allowed

    return {
        "short_id": field(alert.short_id, 100),
        "level": field(alert.level, 50),
        "environment": field(alert.environment, 100),
        "release": one_line(alert.release or "", 200) or None,
        "platform": field(alert.platform, 50),
        "culprit": field(alert.culprit, 500),
        "exception": clean(
            _private(
                ": ".join(p for p in (alert.exception_type, alert.exception_value) if p), allowed
            ),
            2000,
        ),
        "tags": [
            (one_line(k, 100), field(v, 200) or "")
            for k, v in list(alert.tags.items())[:MAX_TAGS]
            if kept(k, PERSONAL_TAGS)
        ],
        "request": (
            {
                "method": field(request.method, 20) or "",
                "url": field(request.url, 1000) or "",
                "query": field(request.query, 1000) or "",
                "headers": [
                    (one_line(k, 100), field(v, 300) or "")
                    for k, v in list(request.headers.items())[:20]
                    if kept(k, PERSONAL_HEADERS)
                ],
            }
            if request
            else None
        ),
        "breadcrumbs": [
            {
                "time": one_line(str(b.timestamp or ""), 40),
                "category": field(b.category or b.type, 60) or "",
                "level": field(b.level, 20) or "",
                "message": field(b.message, 300) or "",
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
