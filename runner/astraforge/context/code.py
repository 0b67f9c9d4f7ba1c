"""Code windows around mapped frames, drift notes, and the commits that last touched them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from astraforge.context.paths import Mapped
from astraforge.git import run_git
from astraforge.task import Frame

MAX_LINE = 240
DRIFT_SEARCH = 60  # lines either side searched for the event's line when the code moved


@dataclass
class CodeWindow:
    """Numbered lines around a frame's line, with the line marked."""

    path: str
    lineno: int  # the line the frame ran, in today's file (after drift)
    function: str | None
    start: int
    lines: list[str]
    crashing: bool
    in_app: bool | None
    drift: str | None = None
    how: str = ""

    def render(self) -> str:
        width = len(str(self.start + len(self.lines)))
        out = []
        for offset, text in enumerate(self.lines):
            number = self.start + offset
            mark = ">" if number == self.lineno else " "
            out.append(f"{mark} {number:>{width}} | {text}")
        return "\n".join(out)


@dataclass
class Suspect:
    """A commit that last touched failing lines."""

    commit: str
    author: str
    time: int
    summary: str
    lines: dict[str, list[int]] = field(default_factory=dict)  # path -> line numbers

    @property
    def where(self) -> str:
        """``path:3-6, other.py:9``."""
        out = []
        for path, numbers in self.lines.items():
            ordered = sorted(set(numbers))
            runs: list[list[int]] = []
            for n in ordered:
                if runs and n == runs[-1][1] + 1:
                    runs[-1][1] = n
                else:
                    runs.append([n, n])
            spans = ",".join(f"{a}-{b}" if a != b else str(a) for a, b in runs)
            out.append(f"{path}:{spans}")
        return ", ".join(out)

    @property
    def date(self) -> str:
        import datetime

        return datetime.datetime.fromtimestamp(self.time, datetime.UTC).strftime("%Y-%m-%d")


def read_lines(repo: Path, path: str) -> list[str] | None:
    """A file's lines as committed at HEAD (or on disk outside git)."""
    try:
        data = (repo / path).read_bytes()
    except OSError:
        return None
    if b"\0" in data[:4096]:
        return None
    return data.decode("utf-8", "replace").splitlines()


def _clip(text: str, colno: int | None) -> str:
    text = text.rstrip()
    if len(text) <= MAX_LINE:
        return text
    if colno and colno > MAX_LINE // 2:
        start = min(max(0, colno - MAX_LINE // 2), len(text) - MAX_LINE)
        return (
            "..." + text[start : start + MAX_LINE] + ("..." if start + MAX_LINE < len(text) else "")
        )
    return text[:MAX_LINE] + "..."


def _same(event_line: str, repo_line: str) -> bool:
    wanted = event_line.replace("{snip}", "").strip()
    return bool(wanted) and (wanted == repo_line.strip() or wanted in repo_line)


def window(
    repo: Path, mapped: Mapped, frame: Frame, *, radius: int, crashing: bool
) -> CodeWindow | None:
    """The code window of a mapped frame, with a drift note when the code moved."""
    lines = read_lines(repo, mapped.path)
    if lines is None or not frame.lineno:
        return None
    lineno, drift = frame.lineno, None
    if lineno > len(lines):
        drift = (
            f"line {lineno} is past the end of today's file ({len(lines)} lines): the code "
            "changed since the release that crashed"
        )
        lineno = len(lines)
    elif frame.context_line and not _same(frame.context_line, lines[lineno - 1]):
        moved = next(
            (
                n
                for d in range(1, DRIFT_SEARCH + 1)
                for n in (lineno - d, lineno + d)
                if 1 <= n <= len(lines) and _same(frame.context_line, lines[n - 1])
            ),
            None,
        )
        event_line = frame.context_line.strip()[:MAX_LINE]
        if moved:
            drift = (
                f"the code moved since the release that crashed: the event's line {lineno} "
                f"(`{event_line}`) is now line {moved}"
            )
            lineno = moved
        else:
            drift = (
                f"line {lineno} differs from the release that crashed, which ran "
                f"`{event_line}`: the code changed since"
            )
    if not lines:
        return None
    start = max(1, lineno - radius)
    end = min(len(lines), lineno + (radius if crashing else max(2, radius // 2)))
    return CodeWindow(
        path=mapped.path,
        lineno=lineno,
        function=frame.function,
        start=start,
        lines=[
            _clip(t, frame.colno if n == lineno else None)
            for n, t in enumerate(lines[start - 1 : end], start)
        ],
        crashing=crashing,
        in_app=frame.in_app,
        drift=drift,
        how=mapped.how,
    )


def suspects(repo: Path, windows: list[CodeWindow], limit: int, around: int = 3) -> list[Suspect]:
    """The commits that last touched the lines around each mapped line (git blame)."""
    if limit <= 0 or not (repo / ".git").exists():
        return []
    found: dict[str, Suspect] = {}
    for win in windows:
        first, last = max(1, win.lineno - around), win.lineno + around
        result = run_git(
            ["blame", "--porcelain", "-L", f"{first},{last}", "HEAD", "--", win.path],
            repo,
            check=False,
        )
        if result.returncode != 0:
            continue
        for suspect, line in _porcelain(result.stdout.decode("utf-8", "replace")):
            entry = found.setdefault(suspect.commit, suspect)
            entry.lines.setdefault(win.path, []).append(line)
    ordered = sorted(found.values(), key=lambda s: s.time, reverse=True)
    return ordered[:limit]


def _porcelain(text: str) -> list[tuple[Suspect, int]]:
    out: list[tuple[Suspect, int]] = []
    known: dict[str, Suspect] = {}
    current: Suspect | None = None
    line_no = 0
    for row in text.splitlines():
        if row.startswith("\t"):
            if current is not None and set(current.commit) != {"0"}:
                out.append((known.setdefault(current.commit, current), line_no))
            current = None
            continue
        head = row.split(" ")
        if len(head) >= 3 and len(head[0]) == 40 and head[1].isdigit():
            sha = head[0]
            current = known.get(sha) or Suspect(sha, "", 0, "")
            line_no = int(head[2])
        elif current is not None:
            key, _, value = row.partition(" ")
            if key == "author":
                current.author = value
            elif key == "author-time":
                current.time = int(value)
            elif key == "summary":
                current.summary = value
    return out
