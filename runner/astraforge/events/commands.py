"""Recognizing `/astraforge fix ...` commands and `@astraforge ...` mentions in comments."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CommandSyntax(BaseModel):
    """How a comment asks AstraForge for a run; part of the trigger configuration."""

    model_config = ConfigDict(extra="forbid")

    command: str = Field(
        default="/astraforge",
        description="a comment starting with this word asks for a run, e.g. `/astraforge fix ...`",
    )
    mention: str = Field(
        default="@astraforge",
        description="a comment mentioning this handle asks for a run; empty disables mentions",
    )


@dataclass(frozen=True)
class Invocation:
    """A command or mention found in a comment, with what follows it."""

    how: Literal["command", "mention"]
    instruction: str


_VERBS = ("fix",)


def find_invocation(comment: str, syntax: CommandSyntax) -> Invocation | None:
    """Return the invocation a comment makes, or None.

    The command must start the comment (``/astraforge fix the flaky parser``); the optional
    verb ``fix`` is dropped from the instruction. A mention counts anywhere outside quoted
    lines and code; the instruction is the comment with the handle removed.
    """
    text = comment.strip()
    if syntax.command and _starts_with_word(text, syntax.command):
        rest = text[len(syntax.command) :].strip()
        first, _, tail = rest.partition(" ")
        if first.lower() in _VERBS:
            rest = tail.strip()
        return Invocation("command", rest)
    if syntax.mention:
        pattern = re.compile(re.escape(syntax.mention) + r"(?![\w-])", re.IGNORECASE)
        plain = "\n".join(_unquoted_lines(text))
        if pattern.search(plain):
            return Invocation("mention", " ".join(pattern.sub("", plain).split()))
    return None


def _starts_with_word(text: str, word: str) -> bool:
    if not text.lower().startswith(word.lower()):
        return False
    after = text[len(word) : len(word) + 1]
    return after == "" or after.isspace()


def _unquoted_lines(text: str) -> list[str]:
    lines: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced or line.lstrip().startswith(">"):
            continue
        lines.append(re.sub(r"`[^`]*`", "", line))
    return lines
