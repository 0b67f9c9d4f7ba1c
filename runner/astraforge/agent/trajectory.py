"""The trajectory: every model request and reply, every tool call and result, as JSON lines.

Lines are written and flushed as the run goes, so a crash keeps everything up to the crash.
Every string is redacted before it is written. Event types (a public format, version 1):

- ``start``: run id, model, tools, base commit, task
- ``message``: a message appended to the conversation (system, user, tool, assistant)
- ``request``: a model call is about to be made (turn, caps sent)
- ``response``: the model's reply, usage and cost
- ``retry``: a failed model call that will be retried
- ``tool``: a tool call and its result
- ``elided``: older tool outputs were shortened to fit the context window
- ``test``: the runner's own run of the test command (phase before/after)
- ``end``: the outcome
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from astraforge.errors import PayloadError
from astraforge.redact import Redactor

VERSION = 1


class Trajectory:
    """The run's JSONL record, redacted and written as the run goes."""

    def __init__(self, path: Path, redactor: Redactor) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.redact = redactor
        self._file: IO[str] | None = path.open("w", encoding="utf-8")
        self._started = time.monotonic()

    def write(self, type: str, **fields: Any) -> None:
        if self._file is None:
            return
        event = {"type": type, "t": round(time.monotonic() - self._started, 3), **fields}
        if type == "start":
            event["version"] = VERSION
        line = json.dumps(self.redact.scrub(event), ensure_ascii=False, default=str)
        self._file.write(line + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_events(path: Path) -> Iterator[dict[str, Any]]:
    """The events of a trajectory file; a torn last line (a crash mid-write) is skipped."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise PayloadError(
            f"{path}: cannot read the trajectory ({exc.strerror})", "pass a trajectory.jsonl file"
        ) from None
    with handle:
        lines = handle.read().splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                return
            raise PayloadError(
                f"{path}:{number}: not a JSON line", "pass a trajectory written by astraforge"
            ) from None
        if not isinstance(event, dict) or "type" not in event:
            raise PayloadError(f"{path}:{number}: not a trajectory event")
        if number == 1 and (event["type"] != "start" or event.get("version") != VERSION):
            raise PayloadError(
                f"{path}: not an astraforge trajectory (version {VERSION})",
                "pass the trajectory.jsonl of a run",
            )
        yield event
