"""The failing part of a CI job's log, within a token budget.

A job log is mostly setup noise; what a fix needs is near the failure: the test names, the
assertion, the traceback, the compiler error, and the summary at the end. The log is first
made plain (ANSI escapes, GitHub timestamps and ``##[group]`` markers, GitLab section
markers go), then the lines around each failure marker and the last lines are kept, the
earliest dropped first when over budget.
"""

from __future__ import annotations

import re

from astraforge import tokens

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
_GITLAB_SECTION = re.compile(r"section_(?:start|end):\d+:[\w.-]+(?:\[[^\]]*\])?\r?")
_GITHUB_STAMP = re.compile(r"^\ufeff?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ")
_GITHUB_MARK = re.compile(r"^##\[(?:group|endgroup|section|command|debug)\]")
_FAILURE = re.compile(
    r"\b(?:FAIL(?:ED|URE)?|ERROR|Error|Traceback|AssertionError|assert(?:ion)?|Exception|"
    r"panicked|expected|Expected|failed|error\[|E\s{3})|^\s*[✕✗×]|##\[error\]",
)
CONTEXT_BEFORE = 6
CONTEXT_AFTER = 12
TAIL_LINES = 25


def plain(log: str) -> list[str]:
    """The log's lines without terminal escapes, timestamps and CI section markers."""
    log = _ANSI.sub("", _GITLAB_SECTION.sub("", log.replace("\r\n", "\n")))
    lines = []
    for raw in log.split("\n"):
        line = raw.rsplit("\r", 1)[-1]  # a progress bar's last state
        line = _GITHUB_MARK.sub("", _GITHUB_STAMP.sub("", line))
        lines.append(line.rstrip())
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _spans(lines: list[str]) -> list[tuple[int, int]]:
    """Line ranges worth keeping: around each failure marker, and the end."""
    spans = [
        (max(0, i - CONTEXT_BEFORE), min(len(lines), i + CONTEXT_AFTER + 1))
        for i, line in enumerate(lines)
        if _FAILURE.search(line)
    ]
    spans.append((max(0, len(lines) - TAIL_LINES), len(lines)))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def excerpt(log: str, max_tokens: int) -> str:
    """The failing part of ``log`` in at most about ``max_tokens`` tokens; gaps are marked."""
    lines = plain(log)
    spans = _spans(lines)

    def render(kept: list[tuple[int, int]]) -> str:
        parts, last = [], 0
        for start, end in kept:
            if start > last:
                parts.append(f"[... {start - last} lines]")
            parts.extend(lines[start:end])
            last = end
        return "\n".join(parts)

    text = render(spans)
    while tokens.count(text) > max_tokens and len(spans) > 1:
        spans = spans[1:]  # the earliest failure goes first; the end of the log stays
        text = render(spans)
    if tokens.count(text) > max_tokens:
        keep = max(200, max_tokens * 3)  # characters, from the end
        text = f"[... {len(text) - keep} characters]\n" + text[-keep:]
    return text
