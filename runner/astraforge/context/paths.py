"""Stack frames to repository files.

A frame names its file in whatever form the runtime saw: a deployment path (``/srv/app/...``,
``/usr/src/app/...``, a release's build directory), a URL (``webpack:///./src/App.tsx``,
``app:///src/index.js``, ``https://cdn.example.com/js/app.min.js``), a Windows path, an
installed package (``site-packages/pkg/mod.py``) or only a module (``pkg.mod``,
``com.example.Foo``). Rather than knowing every prefix, the index matches path *suffixes*:
the repository file sharing the longest tail of path components with the frame wins, and a
bare file name only counts when it is unambiguous.
"""

from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from astraforge.git import run_git
from astraforge.task import Frame

SKIP_DIRS = {
    ".git",
    "node_modules",
    ".venv",
    "venv",
    "__pycache__",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "dist",
    "build",
    "target",
    ".idea",
    ".gradle",
}
LIBRARY_MARKERS = ("site-packages/", "dist-packages/", "node_modules/", "/go/pkg/mod/", "/gems/")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://+[^/]*", re.IGNORECASE)
_DRIVE = re.compile(r"^[A-Za-z]:/")
_NOT_A_FILE = {"<anonymous>", "<string>", "<stdin>", "native", "[native code]", "<unknown>"}


@dataclass(frozen=True)
class Mapped:
    """A frame mapped to a repository file, and how."""

    path: str  # relative to the repository root, with forward slashes
    matched: int  # path components matched
    how: str  # filename, abs_path or module


def list_files(repo: Path) -> list[str]:
    """The repository's files: what git tracks (what was deployed is committed), or a walk
    that skips build and vendor directories."""
    if (repo / ".git").exists():
        result = run_git(["ls-files", "-z", "--cached"], repo, check=False)
        tracked = result.stdout.decode("utf-8", "surrogateescape").split("\0")
        if result.returncode == 0 and any(tracked):
            return [p for p in tracked if p]
    found = []
    for dirpath, dirnames, filenames in os.walk(repo):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        rel = os.path.relpath(dirpath, repo)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        found += [prefix + name for name in filenames]
    return found


def normalize(raw: str) -> list[str]:
    """A frame's path as components, without scheme, host, drive, query or dot segments."""
    text = raw.strip().replace("\\", "/")
    if not text or text in _NOT_A_FILE:
        return []
    text = _URL.sub("", text).split("?")[0].split("#")[0]
    text = _DRIVE.sub("/", text)
    parts: list[str] = []
    for part in text.split("/"):
        if part in ("", ".", "~"):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return parts


def module_paths(frame: Frame) -> list[list[str]]:
    """Candidate paths from a dotted module name (Python, Java and other JVM languages)."""
    module = (frame.module or "").strip()
    if not module or "/" in module or " " in module:
        return []
    parts = [p for p in module.split(".") if p]
    filename = normalize(frame.filename or "")
    ext = os.path.splitext(filename[-1])[1] if filename else ""
    if ext in (".java", ".kt", ".scala", ".groovy") and parts:
        # com.example.app.Controller$Inner, file Controller.java: the package plus the file
        return [[*parts[:-1], filename[-1]]]
    candidates = [[*parts[:-1], parts[-1] + ".py"], [*parts, "__init__.py"]] if parts else []
    return candidates


class RepoIndex:
    """Repository files by name, for suffix matching."""

    def __init__(self, files: Iterable[str]) -> None:
        self.files = set(files)
        self._by_name: dict[str, list[str]] = defaultdict(list)
        self.top: Counter[str] = Counter()  # top-level entries, directories ending in /
        for path in self.files:
            self._by_name[path[path.rfind("/") + 1 :]].append(path)
            slash = path.find("/")
            self.top[path if slash < 0 else path[: slash + 1]] += 1
        self.names = set(self._by_name)

    def extensions(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for name, paths in self._by_name.items():
            dot = name.rfind(".")
            if dot > 0:
                counts[name[dot:].lower()] += len(paths)
        return counts

    @classmethod
    def of(cls, repo: Path) -> RepoIndex:
        return cls(list_files(repo))

    def match(self, parts: list[str]) -> tuple[str, int] | None:
        """The file sharing the longest tail with ``parts``; a bare name must be unique."""
        if not parts:
            return None
        candidates = self._by_name.get(parts[-1])
        if not candidates:
            return None
        # Fast path: a repository path that is a whole tail of the frame's path, e.g.
        # /srv/app/shop/cart.py -> shop/cart.py. Two components or more settle it.
        for start in range(len(parts) - 1):
            if len(parts) - start < 2:
                break
            suffix = "/".join(parts[start:])
            if suffix in self.files:
                return suffix, len(parts) - start
        best: str | None = None
        best_len, tie = 0, False
        for candidate in candidates:
            n = _common_tail(candidate.split("/"), parts)
            if n > best_len:
                best, best_len, tie = candidate, n, False
            elif n == best_len:
                tie = True
        if best is None or tie:
            return None
        if best_len == 1 and len(candidates) > 1:
            return None
        return best, best_len

    def map_frame(self, frame: Frame) -> Mapped | None:
        """The repository file a frame ran, if the repository has it."""
        found: list[Mapped] = []
        for how, raw in (("abs_path", frame.abs_path), ("filename", frame.filename)):
            hit = self.match(normalize(raw or ""))
            if hit:
                found.append(Mapped(hit[0], hit[1], how))
        for parts in module_paths(frame):
            hit = self.match(parts)
            if hit and hit[1] == len(parts):
                found.append(Mapped(hit[0], hit[1], "module"))
        if not found:
            return None
        best = max(found, key=lambda m: m.matched)
        if (is_library(frame) or frame.in_app is False) and best.matched < 2:
            return None  # a dependency's file that merely shares a name with one of ours
        return best


def is_library(frame: Frame) -> bool:
    """Whether a path is inside installed packages rather than the application."""
    text = (frame.abs_path or frame.filename or "").replace("\\", "/")
    return any(marker in text for marker in LIBRARY_MARKERS)


def _common_tail(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(reversed(a), reversed(b), strict=False):
        if x != y:
            break
        n += 1
    return n
