"""report.html: one self-contained page per run that people look at rather than read.

Inline CSS and JS, no external URL: it opens from the artifacts in any browser. It shows the
task, the conclusion, a timeline of model and tool calls with their durations (outputs
expand), the diff with syntax highlighting (Pygments), the runner's own test runs, the
policy results, the budget used per turn as a small chart, the network decisions, and the
engine and model. It is written for every run, also a failed one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from astraforge import render

REPORT_HTML = "report.html"
MAX_OUTPUT = 20_000  # characters of one tool output shown
MAX_DIFF = 400_000  # characters of the diff highlighted


@dataclass
class Entry:
    """One line of the timeline: a model call, a tool call, a test run, a retry."""

    kind: str  # model, tool, test, retry, setup, budget, network
    at: float
    title: str
    seconds: float | None = None
    detail: str = ""
    ok: bool = True


@dataclass
class Turn:
    """What one model call cost."""

    number: int
    prompt: int
    completion: int
    cost: float


@dataclass
class Page:
    """Everything the page shows, read from the run's artifacts."""

    report: dict[str, Any]
    entries: list[Entry] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    network: list[dict[str, Any]] = field(default_factory=list)
    diff_html: Markup = field(default_factory=Markup)
    diff_lines: int = 0
    start: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)  # frames mapped, notes, tokens


def _events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def _short(value: str, limit: int = 120) -> str:
    flat = " ".join(value.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _argument(name: str, arguments: str) -> str:
    try:
        data = json.loads(arguments)
    except ValueError:
        return _short(arguments)
    if not isinstance(data, dict):
        return _short(arguments)
    for key in ("command", "path", "pattern", "summary"):
        if isinstance(data.get(key), str):
            return _short(data[key])
    return _short(arguments)


def timeline(events: Iterable[dict[str, Any]]) -> tuple[list[Entry], list[Turn], dict[str, Any]]:
    """The timeline entries and the per-turn usage of a trajectory's events."""
    entries: list[Entry] = []
    turns: list[Turn] = []
    start: dict[str, Any] = {}
    asked: dict[int, float] = {}
    for event in events:
        kind, at = event.get("type"), float(event.get("t") or 0)
        if kind == "start":
            start = event
        elif kind == "request":
            asked[int(event.get("turn") or 0)] = at
        elif kind == "response":
            turn = int(event.get("turn") or 0)
            usage = (event.get("reply") or {}).get("usage") or {}
            prompt, completion = (
                int(usage.get("prompt_tokens") or 0),
                int(usage.get("completion_tokens") or 0),
            )
            turns.append(Turn(turn, prompt, completion, float(event.get("cost_usd") or 0)))
            calls = (event.get("reply") or {}).get("tool_calls") or []
            names = ", ".join(str(c.get("name")) for c in calls) or "text"
            entries.append(
                Entry(
                    "model",
                    at,
                    f"model call {turn}: {prompt} + {completion} tokens → {names}",
                    round(at - asked.get(turn, at), 3),
                )
            )
        elif kind == "tool":
            name = str(event.get("name"))
            code = event.get("exit_code")
            title = f"{name} {_argument(name, str(event.get('arguments') or ''))}"
            if code is not None:
                title += f" → exit {code}"
            entries.append(
                Entry(
                    "tool",
                    at,
                    title,
                    event.get("seconds"),
                    str(event.get("result") or "")[:MAX_OUTPUT],
                    bool(event.get("ok", True)),
                )
            )
        elif kind in ("test", "setup"):
            title = f"{kind} {event.get('phase') or ''} `{event.get('command')}`"
            entries.append(
                Entry(
                    "test" if kind == "test" else "setup",
                    at,
                    f"{title} → exit {event.get('exit_code')}",
                    event.get("seconds"),
                    str(event.get("output") or "")[:MAX_OUTPUT],
                    event.get("exit_code") == 0,
                )
            )
        elif kind == "retry":
            entries.append(
                Entry(
                    "retry",
                    at,
                    f"retry {event.get('attempt')} after {event.get('failure')}",
                    event.get("wait"),
                    ok=False,
                )
            )
        elif kind == "budget":
            entries.append(
                Entry("budget", at, f"the {event.get('budget')} budget ran out", ok=False)
            )
    return entries, turns, start


def highlight(patch: str) -> tuple[Markup, int]:
    """The patch as highlighted HTML (inline styles), and its line count."""
    from pygments import highlight as pygmentize
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import DiffLexer

    shown = patch[:MAX_DIFF]
    if len(patch) > MAX_DIFF:
        shown += f"\n[... {len(patch) - MAX_DIFF} characters not shown: see diff.patch]\n"
    html = pygmentize(shown, DiffLexer(), HtmlFormatter(noclasses=True, nowrap=True))
    return Markup(html), shown.count("\n")  # noqa: S704 - Pygments escapes its input


def chart(turns: list[Turn], width: int = 640, height: int = 160) -> Markup:
    """Tokens per turn as stacked bars (prompt, completion), cost as a line, in inline SVG."""
    if not turns:
        return Markup("")
    most = max(t.prompt + t.completion for t in turns) or 1
    costliest = max(t.cost for t in turns) or 1.0
    step = width / len(turns)
    bar = max(2.0, step * 0.7)
    parts = [
        f'<svg viewBox="0 0 {width} {height + 20}" role="img" class="chart" '
        'aria-label="tokens and cost per turn">'
    ]
    points = []
    for i, turn in enumerate(turns):
        x = i * step + (step - bar) / 2
        prompt_h = turn.prompt / most * height
        completion_h = turn.completion / most * height
        tip = escape(
            f"turn {turn.number}: {turn.prompt} prompt + {turn.completion} completion tokens, "
            f"${turn.cost:.4f}"
        )
        parts.append(
            f'<rect class="prompt" x="{x:.1f}" y="{height - prompt_h:.1f}" width="{bar:.1f}" '
            f'height="{prompt_h:.1f}"><title>{tip}</title></rect>'
        )
        parts.append(
            f'<rect class="completion" x="{x:.1f}" y="{height - prompt_h - completion_h:.1f}" '
            f'width="{bar:.1f}" height="{completion_h:.1f}"><title>{tip}</title></rect>'
        )
        points.append(f"{x + bar / 2:.1f},{height - turn.cost / costliest * height:.1f}")
    parts.append(f'<polyline class="cost" points="{" ".join(points)}" />')
    parts.append(
        f'<text x="0" y="{height + 16}">{len(turns)} turns; bars: tokens (max {most}); '
        f"line: cost (max ${costliest:.4f})</text></svg>"
    )
    return Markup("".join(parts))  # noqa: S704 - every value above is a number or escaped


def page(out: Path, report: dict[str, Any], network: list[dict[str, Any]] | None = None) -> Page:
    """What the page of the run in ``out`` shows."""
    events = _events(out / "trajectory.jsonl")
    entries, turns, start = timeline(events)
    context = next((e for e in events if e.get("type") == "context"), {})
    patch_path = out / "diff.patch"
    patch = patch_path.read_text(encoding="utf-8", errors="replace") if patch_path.exists() else ""
    diff_html, lines = highlight(patch) if patch.strip() else (Markup(""), 0)
    if network is None:
        network = connections(report)
    return Page(report, entries, turns, network, diff_html, lines, start, context)


def connections(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The sandbox's connections the gateway saw, as report.json lists them."""
    gateway = (report.get("outcome") or {}).get("gateway") or {}
    return [
        {**c, "bytes": int(c.get("bytes_up", 0)) + int(c.get("bytes_down", 0))}
        for c in gateway.get("connections") or []
    ]


def write(out: Path, report: dict[str, Any], network: list[dict[str, Any]] | None = None) -> Path:
    """Render report.html into ``out``; its path."""
    view = page(out, report, network)
    html = render.render("templates", "report.html.j2", page=view, chart=chart(view.turns))
    path = out / REPORT_HTML
    path.write_text(html, encoding="utf-8")
    return path
