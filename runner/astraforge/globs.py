"""Path globs as in .gitignore, for policies and sandbox exclusions."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache


@cache
def glob_regex(pattern: str) -> re.Pattern[str]:
    """gitignore-like globs: ``**`` crosses directories, ``*`` does not; a pattern without a
    slash matches a file or directory name at any depth; a directory matches what it holds."""
    anchored = "/" in pattern.rstrip("/")
    body = pattern.strip("/")
    out = ""
    i = 0
    while i < len(body):
        if body.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif body.startswith("**", i):
            out += ".*"
            i += 2
        elif body[i] == "*":
            out += "[^/]*"
            i += 1
        elif body[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(body[i])
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    return re.compile(f"^{prefix}{out}(?:/.*)?$")


def matches(path: str, patterns: Iterable[str]) -> str | None:
    """The first pattern ``path`` matches."""
    for pattern in patterns:
        if glob_regex(pattern).match(path):
            return pattern
    return None
