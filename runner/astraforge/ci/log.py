"""The CI job log is the run log: groups per phase, masked secrets, annotations, outputs and a
job summary, in each CI system's own format.

- GitHub Actions: ``::group::``, ``::add-mask::``, ``::error::``/``::warning::``, the job
  summary in $GITHUB_STEP_SUMMARY, outputs in $GITHUB_OUTPUT, and untrusted output fenced by
  ``::stop-commands::<random token>`` so that it cannot issue workflow commands.
- GitLab CI: collapsible sections, a dotenv report with the outputs, artifact paths.
- Terminal: plain lines with a phase header and elapsed time.

Every line goes through :func:`neutralize` and the redactor, whatever the CI system masks on
its own: text from outside (titles, file names, check details, error messages, model output)
can never issue a workflow command or a section marker, and only the runner's own commands
are written raw.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Protocol

from astraforge.redact import Redactor

# ESC and CSI sequences (colours, cursor moves, GitLab's \e[0K), then other C0 controls.
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])?")
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_COMMAND_START = re.compile(r"^(\s*)::")  # GitHub: `::name ...::` at the start of a line


def neutralize(text: str) -> str:
    """Text that cannot issue a CI workflow command: escape sequences and control characters
    are removed, a bare CR becomes a line break, and a line that would start a GitHub command
    (``::``, after any blanks) or hold a v1 command (``##[``) is escaped with a backslash."""
    text = _ESCAPES.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROLS.sub("", text)
    lines = [_COMMAND_START.sub(r"\1\\::", line) for line in text.split("\n")]
    return "\n".join(lines).replace("##[", "##\\[")


class CI(Protocol):
    """The CI log seam: groups, masks, annotations, outputs and a summary."""

    redact: Redactor

    def group(self, name: str) -> contextlib.AbstractContextManager[None]: ...

    def mask(self, secret: str) -> None: ...

    def info(self, line: str) -> None: ...

    def annotate(self, level: str, message: str) -> None: ...

    def untrusted(self, text: str) -> None: ...

    def set_output(self, key: str, value: str) -> None: ...

    def summary(self, markdown: str) -> None: ...


class Terminal:
    """Plain log lines with a phase header and elapsed time: the run's progress on stdout,
    warnings and errors on stderr. Safe to call from several threads."""

    def __init__(
        self,
        redact: Redactor | None = None,
        stream: IO[str] | None = None,
        errors: IO[str] | None = None,
    ) -> None:
        self.redact = redact or Redactor()
        self.stream = stream or sys.stdout
        self.errors = errors or (sys.stderr if stream is None else self.stream)
        self.outputs: dict[str, str] = {}
        self._started = time.monotonic()
        self._lock = threading.RLock()

    def _write(self, text: str, stream: IO[str] | None = None) -> None:
        """Data lines: redacted and neutralized."""
        with self._lock:
            target = stream or self.stream
            target.write(neutralize(self.redact(text)) + "\n")
            target.flush()

    def _command(self, line: str) -> None:
        """One of the runner's own workflow commands, written as it is."""
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    @contextlib.contextmanager
    def group(self, name: str) -> Iterator[None]:
        self._write(f"==> {name}")
        started = time.monotonic()
        try:
            yield
        finally:
            self._write(f"    ({name}: {time.monotonic() - started:.1f}s)")

    def mask(self, secret: str) -> None:
        self.redact.add(secret)

    def info(self, line: str) -> None:
        self._write(line)

    def annotate(self, level: str, message: str) -> None:
        self._write(f"{level}: {message}", self.errors)

    def untrusted(self, text: str) -> None:
        for line in text.splitlines():
            self._write(f"    | {line}")

    def set_output(self, key: str, value: str) -> None:
        self.outputs[key] = value  # a terminal has no outputs: the last line says where

    def summary(self, markdown: str) -> None:
        pass  # the terminal shows the same facts as it goes


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _one_line(text: str) -> str:
    return " ".join(neutralize(text).split())


class GitHubActions(Terminal):
    """GitHub Actions' workflow commands, job summary and outputs."""

    def __init__(
        self, env: Mapping[str, str], redact: Redactor | None = None, stream: IO[str] | None = None
    ) -> None:
        super().__init__(redact, stream or sys.stdout)
        self.output_file = Path(env["GITHUB_OUTPUT"]) if env.get("GITHUB_OUTPUT") else None
        self.summary_file = (
            Path(env["GITHUB_STEP_SUMMARY"]) if env.get("GITHUB_STEP_SUMMARY") else None
        )

    @contextlib.contextmanager
    def group(self, name: str) -> Iterator[None]:
        self._command(f"::group::{_one_line(self.redact(name))}")
        try:
            yield
        finally:
            self._command("::endgroup::")

    def mask(self, secret: str) -> None:
        super().mask(secret)
        for line in secret.splitlines():
            if line.strip():
                # written raw: the runner must see the value to mask it
                self._command(f"::add-mask::{line}")

    def annotate(self, level: str, message: str) -> None:
        kind = "error" if level == "error" else ("warning" if level == "warning" else "notice")
        text = neutralize(self.redact(message))
        self._command(f"::{kind}::{_escape_data(text)}")

    def untrusted(self, text: str) -> None:
        """Text from outside, fenced by stop-commands as well as neutralized line by line."""
        token = secrets.token_hex(16)
        self._command(f"::stop-commands::{token}")
        for line in text.splitlines():
            self._write(line)
        self._command(f"::{token}::")

    def set_output(self, key: str, value: str) -> None:
        self.outputs[key] = value
        value = self.redact(value)
        if self.output_file is None:
            self._write(f"output {key}={value}")
            return
        delimiter = f"ghadelimiter_{secrets.token_hex(8)}"
        with self.output_file.open("a", encoding="utf-8") as handle:
            handle.write(f"{key}<<{delimiter}\n{value}\n{delimiter}\n")

    def summary(self, markdown: str) -> None:
        if self.summary_file is not None:
            with self.summary_file.open("a", encoding="utf-8") as handle:
                handle.write(self.redact(markdown).rstrip() + "\n")


_SECTION_NAME = re.compile(r"[^a-z0-9_]+")


class GitLabCI(Terminal):
    """Sections per phase; outputs in a dotenv report (``artifacts:reports:dotenv``)."""

    def __init__(
        self,
        env: Mapping[str, str],
        dotenv: Path,
        redact: Redactor | None = None,
        stream: IO[str] | None = None,
    ) -> None:
        super().__init__(redact, stream or sys.stdout)
        self.dotenv = dotenv
        self._count = 0

    @contextlib.contextmanager
    def group(self, name: str) -> Iterator[None]:
        self._count += 1
        section = f"astraforge_{self._count}_{_SECTION_NAME.sub('_', name.lower())}"[:60]
        self._command(
            f"\x1b[0Ksection_start:{int(time.time())}:{section}[collapsed=false]\r\x1b[0K"
            f"{_one_line(self.redact(name))}"
        )
        try:
            yield
        finally:
            self._command(f"\x1b[0Ksection_end:{int(time.time())}:{section}\r\x1b[0K")

    def annotate(self, level: str, message: str) -> None:
        color = {"error": "31", "warning": "33"}.get(level, "36")
        text = neutralize(self.redact(f"{level.upper()}: {message}"))
        self._command(f"\x1b[{color}m{text}\x1b[0m")

    def set_output(self, key: str, value: str) -> None:
        self.outputs[key] = value
        value = self.redact(value).replace("\n", " ")
        name = f"ASTRAFORGE_{key.upper()}"
        self.dotenv.parent.mkdir(parents=True, exist_ok=True)
        with self.dotenv.open("a", encoding="utf-8") as handle:
            handle.write(f"{name}={value}\n")
        self._write(f"{name}={value}")


def current(env: Mapping[str, str], redact: Redactor, artifacts: Path) -> CI:
    """The CI the runner is in, by its environment."""
    if env.get("GITHUB_ACTIONS", "").lower() == "true":
        return GitHubActions(env, redact)
    if env.get("GITLAB_CI", "").lower() == "true":
        return GitLabCI(env, artifacts / "astraforge.env", redact)
    return Terminal(redact)
