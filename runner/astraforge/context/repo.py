"""Facts about the repository: instruction files, a compact map, and the test command.

Instruction files are read from the checked-out base commit (``git show HEAD:path``), never
from a working tree a run may have changed, and are only ever shown to the model as guidance
text; nothing in them is executed.
"""

from __future__ import annotations

import configparser
import json
import re
import tomllib
from collections import Counter
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from astraforge.context.paths import RepoIndex
from astraforge.git import run_git

MAX_INSTRUCTIONS = 16_000  # bytes per file
LANGUAGES = {
    ".py": "Python",
    ".js": "JavaScript",
    ".mjs": "JavaScript",
    ".cjs": "JavaScript",
    ".jsx": "JavaScript",
    ".ts": "TypeScript",
    ".tsx": "TypeScript",
    ".java": "Java",
    ".kt": "Kotlin",
    ".scala": "Scala",
    ".go": "Go",
    ".rs": "Rust",
    ".rb": "Ruby",
    ".php": "PHP",
    ".cs": "C#",
    ".c": "C",
    ".h": "C",
    ".cc": "C++",
    ".cpp": "C++",
    ".hpp": "C++",
    ".swift": "Swift",
    ".m": "Objective-C",
    ".ex": "Elixir",
    ".exs": "Elixir",
    ".sh": "Shell",
    ".vue": "Vue",
    ".svelte": "Svelte",
    ".dart": "Dart",
    ".lua": "Lua",
}
MANIFESTS = (
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "requirements.txt",
    "tox.ini",
    "noxfile.py",
    "package.json",
    "pnpm-lock.yaml",
    "yarn.lock",
    "go.mod",
    "Cargo.toml",
    "pom.xml",
    "build.gradle",
    "build.gradle.kts",
    "Gemfile",
    "composer.json",
    "Makefile",
    "Dockerfile",
)


@dataclass(frozen=True)
class Instruction:
    """A repository's instruction file, shown as guidance."""

    path: str
    text: str


def read_base(repo: Path, path: str, limit: int = MAX_INSTRUCTIONS) -> str | None:
    """A file as committed at HEAD (the base branch); the file itself outside git."""
    if (repo / ".git").exists():
        result = run_git(["show", f"HEAD:{path}"], repo, check=False)
        if result.returncode != 0:
            return None
        data = result.stdout
    else:
        target = repo / path
        if target.is_symlink() or not target.is_file():
            return None
        data = target.read_bytes()
    text = data[:limit].decode("utf-8", "replace")
    if len(data) > limit:
        text += f"\n[... {len(data) - limit} bytes cut]"
    return text


def instructions(
    repo: Path,
    files: Sequence[str],
    near: Sequence[str] = (),
    present: Container[str] | None = None,
) -> list[Instruction]:
    """The configured instruction files, plus AGENTS.md files in the directories of ``near``.

    ``present`` (the repository's file list) saves looking up files that do not exist.
    """
    wanted = list(files)
    for path in near:
        for parent in PurePosixPath(path).parents:
            if str(parent) == ".":
                break
            candidate = f"{parent}/AGENTS.md"
            if candidate not in wanted:
                wanted.append(candidate)
    found = []
    for path in wanted:
        if present is not None and path not in present:
            continue
        text = read_base(repo, path)
        if text and text.strip():
            found.append(Instruction(path, text.strip()))
    return found


def repo_map(index: RepoIndex, limit: int = 40) -> str:
    """Top-level layout with file counts, languages, and manifests."""
    languages: Counter[str] = Counter()
    for ext, n in index.extensions().items():
        if ext in LANGUAGES:
            languages[LANGUAGES[ext]] += n
    entries = sorted(index.top.items(), key=lambda kv: (not kv[0].endswith("/"), kv[0]))
    lines = [f"{len(index.files)} files"]
    if languages:
        lines.append(
            "languages: " + ", ".join(f"{lang} ({n})" for lang, n in languages.most_common(6))
        )
    manifests = [m for m in MANIFESTS if m in index.top]
    if manifests:
        lines.append("manifests: " + ", ".join(manifests))
    lines.append("top level:")
    for name, count in entries[:limit]:
        lines.append(f"  {name} ({count} files)" if name.endswith("/") else f"  {name}")
    if len(entries) > limit:
        lines.append(f"  ... {len(entries) - limit} more entries")
    return "\n".join(lines)


def detect_test_command(
    repo: Path, files: Iterable[str], names: Iterable[str] = ()
) -> tuple[str, str] | None:
    """(command, why) from the repository's own configuration, or None.

    ``names`` are the repository's distinct file names (computed from ``files`` if empty).
    """
    present = set(files)
    names = set(names) or {p.rsplit("/", 1)[-1] for p in present}
    if "noxfile.py" in present:
        return "nox", "noxfile.py"
    if _pytest_configured(repo, present):
        return "python -m pytest -q", "pytest configuration"
    if "tox.ini" in present:
        return "tox", "tox.ini"
    if "package.json" in present:
        script = _npm_test(repo)
        if script:
            tool = (
                "pnpm"
                if "pnpm-lock.yaml" in present
                else ("yarn" if "yarn.lock" in present else "npm")
            )
            return f"{tool} test", f"package.json scripts.test: {script}"
    if "go.mod" in present:
        return "go test ./...", "go.mod"
    if "Cargo.toml" in present:
        return "cargo test", "Cargo.toml"
    if "Makefile" in present and re.search(
        r"^test\s*:", (repo / "Makefile").read_text(errors="replace"), re.MULTILINE
    ):
        return "make test", "Makefile target test"
    if any(re.fullmatch(r"test_.*\.py|.*_test\.py", name) for name in names):
        return "python -m pytest -q", "test_*.py files"
    return None


def _pytest_configured(repo: Path, present: set[str]) -> bool:
    if "pytest.ini" in present or "conftest.py" in present:
        return True
    if "pyproject.toml" in present:
        try:
            data = tomllib.loads((repo / "pyproject.toml").read_text(errors="replace"))
        except tomllib.TOMLDecodeError:
            data = {}
        if "pytest" in data.get("tool", {}):
            return True
    for name, section in (("setup.cfg", "tool:pytest"), ("tox.ini", "pytest")):
        if name in present:
            parser = configparser.ConfigParser(interpolation=None)
            try:
                parser.read_string((repo / name).read_text(errors="replace"))
            except configparser.Error:
                continue
            if parser.has_section(section):
                return True
    return False


def _npm_test(repo: Path) -> str | None:
    try:
        data = json.loads((repo / "package.json").read_text(errors="replace"))
    except (OSError, json.JSONDecodeError):
        return None
    script = (data.get("scripts") or {}).get("test") if isinstance(data, dict) else None
    if not isinstance(script, str) or "no test specified" in script:
        return None
    return script
