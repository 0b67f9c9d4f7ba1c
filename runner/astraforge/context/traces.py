"""Stack traces pasted as text (issue bodies, comments, requests) read into frames.

Recognized: Python tracebacks, V8 (Node.js, Chrome) and Firefox/Safari stacks, Java and other
JVM stacks, Go panics and Ruby backtraces. Frames come out oldest call first, like Sentry's.
"""

from __future__ import annotations

import re

from astraforge.task import Frame

MAX_FRAMES = 100

_PYTHON = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>\S.*))?$')
_V8 = re.compile(
    r"^\s*at (?:(?:async )?(?P<func>[^(]*?) \()?(?P<path>[^()\s]+?):(?P<line>\d+):(?P<col>\d+)\)?$"
)
_GECKO = re.compile(r"^\s*(?P<func>[^@\s]*)@(?P<path>\S+?):(?P<line>\d+):(?P<col>\d+)$")
_JAVA = re.compile(
    r"^\s*at (?P<func>[\w$.<>/]+)\((?P<file>[\w$.-]+\.(?:java|kt|scala|groovy)):(?P<line>\d+)\)$"
)
_GO = re.compile(r"^\s+(?P<path>/\S+\.go):(?P<line>\d+)(?: \+0x[0-9a-f]+)?$")
_RUBY = re.compile(r"^\s*(?:from )?(?P<path>[^\s:]+\.rb):(?P<line>\d+):in [`'](?P<func>[^']*)'")


def parse_text(text: str) -> list[Frame]:
    """The frames of the last stack trace in ``text`` that has any, oldest call first."""
    traces: list[list[Frame]] = []
    current: list[Frame] = []
    newest_first = False
    style = None
    lines = text.splitlines()
    for index, line in enumerate(lines):
        frame, kind = _frame(line, lines, index)
        if frame is None:
            if current and not _continuation(lines, index):
                traces.append(current[::-1] if newest_first else current)
                current = []
            continue
        if not current:
            style = kind
            newest_first = kind in ("v8", "gecko", "java", "ruby", "go")
        if kind == style:
            current.append(frame)
    if current:
        traces.append(current[::-1] if newest_first else current)
    if not traces:
        return []
    return traces[-1][-MAX_FRAMES:]


def _continuation(lines: list[str], index: int) -> bool:
    """Lines that sit between frames of one trace (source lines, markers, Go function names)."""
    line = lines[index]
    if index + 1 < len(lines) and _GO.match(lines[index + 1]):
        return True
    stripped = line.strip()
    return bool(stripped) and (line.startswith((" ", "\t")) or stripped.startswith("..."))


def _frame(line: str, lines: list[str], index: int) -> tuple[Frame | None, str | None]:
    if match := _PYTHON.match(line):
        following = lines[index + 1].strip() if index + 1 < len(lines) else ""
        context = following if following and not _PYTHON.match(lines[index + 1]) else None
        return Frame(
            abs_path=match["path"],
            filename=match["path"],
            function=match["func"],
            lineno=int(match["line"]),
            context_line=context,
        ), "python"
    if match := _JAVA.match(line):
        qualified = match["func"]
        owner, _, method = qualified.rpartition(".")
        return Frame(
            filename=match["file"],
            module=owner.split("$")[0] or None,
            function=method,
            lineno=int(match["line"]),
        ), "java"
    if match := _V8.match(line):
        return _path_frame(match, "v8")
    if match := _GECKO.match(line):
        return _path_frame(match, "gecko")
    if match := _GO.match(line):
        function = lines[index - 1].strip() if index else None
        return Frame(
            abs_path=match["path"],
            filename=match["path"],
            function=function.split("(")[0] if function else None,
            lineno=int(match["line"]),
        ), "go"
    if match := _RUBY.match(line):
        return _path_frame(match, "ruby")
    return None, None


def _path_frame(match: re.Match[str], kind: str) -> tuple[Frame, str]:
    path = match["path"]
    if path.startswith("file://"):
        path = path[len("file://") :]
    groups = match.groupdict()
    return Frame(
        abs_path=path,
        filename=path,
        function=(groups.get("func") or "").strip() or None,
        lineno=int(match["line"]),
        colno=int(groups["col"]) if groups.get("col") else None,
    ), kind
