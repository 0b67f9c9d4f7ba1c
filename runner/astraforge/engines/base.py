"""The engine seam: one coding-agent CLI run headless inside the sandbox.

An engine says how it is configured (files written into the sandbox's ``$HOME``, a tmpfs,
and environment variables), how it is started (it reads the task prompt on stdin and writes
its machine-readable events on stdout), and how those events read as AstraForge's
trajectory. Installing it, running it and judging the outcome are the same for all engines
(:mod:`astraforge.engines.install`, :mod:`astraforge.engines.run`).
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from astraforge.engines.pins import PINS, Package
from astraforge.sandbox.config import TMP

ENGINE_ROOT = "/opt/astraforge/engine"  # the installed engine, read-only in the sandbox
SCRATCH = f"{TMP}/.astraforge-engine"  # the prompt, the engine's output and its stderr
PROTOCOLS = {
    "responses": "OpenAI Responses",
    "chat": "OpenAI chat completions",
    "anthropic": "Anthropic Messages",
    "gemini": "Gemini API",
}
MAX_TEXT = 4000  # characters of one message or tool output kept in the trajectory


@dataclass(frozen=True)
class Settings:
    """What an engine is configured with: the model it is told to use and the gateway's
    variables of the sandbox (base URLs; the per-run token is only ever read from the
    environment, never written into a file)."""

    model: str
    env: Mapping[str, str]

    @property
    def openai_base(self) -> str:
        return self.env.get("OPENAI_BASE_URL", "")


@dataclass
class Transcript:
    """An engine's output read as trajectory events, its final message and its error."""

    events: list[dict[str, Any]] = field(default_factory=list)
    final: str | None = None
    error: str | None = None

    def message(self, role: str, text: str) -> None:
        if text.strip():
            self.events.append({"type": "message", "role": role, "content": text[:MAX_TEXT]})
            if role == "assistant":
                self.final = text

    def tool(self, name: str, arguments: Any, output: Any = None, **extra: Any) -> None:
        text = output if isinstance(output, str) or output is None else json.dumps(output)
        self.events.append(
            {
                "type": "tool",
                "name": name,
                "arguments": arguments,
                "result": (text or "")[:MAX_TEXT],
                **extra,
            }
        )

    @property
    def tool_calls(self) -> list[str]:
        return [e["name"] for e in self.events if e["type"] == "tool"]


class Engine(ABC):
    """One external coding agent."""

    name: ClassVar[str]
    protocol: ClassVar[str]  # a key of PROTOCOLS: what it calls the gateway with
    command: ClassVar[str]  # its executable, in the installed package's bin directory
    instructions: ClassVar[str] = "AGENTS.md"  # the repository file it reads by itself
    inner_sandbox: ClassVar[str] = ""  # how its own sandbox and approvals are turned off

    @property
    def package(self) -> Package:
        return PINS[self.name]

    def links(self) -> dict[str, str]:
        """Files the package's install script would put in place (a platform binary over a
        placeholder): destination -> source, relative to the installed folder. The
        runner does it instead, since no install script runs."""
        return {}

    @abstractmethod
    def argv(self, settings: Settings) -> list[str]:
        """The headless command line; the prompt comes on stdin."""

    def home_files(self, settings: Settings) -> dict[str, str]:
        """Configuration files, relative to the sandbox's ``$HOME``."""
        return {}

    def environment(self, settings: Settings) -> dict[str, str]:
        """Variables set for the engine's process only."""
        return {}

    @abstractmethod
    def read(self, output: str) -> Transcript:
        """The engine's stdout as trajectory events and a final message."""


def json_lines(output: str) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSON-lines stream; other lines (banners, warnings) are
    skipped."""
    for line in output.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            yield value


SECTION = re.compile(
    r"^\s*(?:#+\s*|\*\*)?(summary|root cause|tests?)\s*(?:\*\*)?\s*:?\s*(?:\*\*)?\s*", re.I
)


def sections(final: str) -> dict[str, str]:
    """The ``Summary:``, ``Root cause:`` and ``Tests:`` parts of an engine's final message
    (the prompt asks for them); the whole message is the summary when there are none."""
    parts: dict[str, list[str]] = {}
    current = "summary"
    for line in final.splitlines():
        match = SECTION.match(line)
        if match:
            current = (
                "tests" if match.group(1).lower().startswith("test") else match.group(1).lower()
            )
            line = line[match.end() :]
        parts.setdefault(current, []).append(line)
    return {
        key: "\n".join(lines).strip() for key, lines in parts.items() if "\n".join(lines).strip()
    }
