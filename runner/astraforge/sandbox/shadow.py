"""The runner's record of a sandbox's starting tree, to turn changed files into a git patch.

A private git directory holds an index of the starting files (their blobs come from the
checkout's object store, or are written here). Only the files that changed come back from
the sandbox; they update a copy of that index and ``git diff-index`` writes the patch. Git
never looks at a working tree here, so nothing the sandbox made (a nested ``.git`` directory,
a ``.git`` file pointing at a host path, a symlink) is ever interpreted on the host.

New files follow git's own rules, as a commit in the real repository would: the
repository's ``.gitignore`` files apply, and so does :data:`JUNK`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from astraforge.git import run_git
from astraforge.sandbox.tree import SYMLINK, Entry, Tracked, write_object

# Build and test leftovers never count as changes, on top of the repository's .gitignore.
JUNK = (
    "__pycache__/",
    "*.py[cod]",
    ".pytest_cache/",
    ".mypy_cache/",
    ".ruff_cache/",
    ".tox/",
    ".nox/",
    ".coverage",
    "node_modules/",
    ".DS_Store",
)
JUNK_DIRS = tuple(j.rstrip("/") for j in JUNK if j.endswith("/"))
ZERO = "0" * 40


@dataclass(frozen=True)
class Changes:
    """The workspace against its starting point."""

    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    patch: str = ""
    skipped: list[str] = field(default_factory=list)
    base_tree: str = ""  # git tree id of the starting workspace

    @property
    def empty(self) -> bool:
        return not (self.added or self.modified or self.deleted)


@dataclass(frozen=True)
class Start:
    """A starting file as the shadow knows it."""

    mode: int
    blob: str
    size: int


class Shadow:
    """The starting tree of one sandbox, kept on the runner."""

    def __init__(self, objects: Path | None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="astraforge-shadow-"))
        run_git(["init", "-q", "--bare", "."], self.dir)
        if objects is not None:
            (self.dir / "objects" / "info" / "alternates").write_text(f"{objects}\n")
        (self.dir / "info").mkdir(exist_ok=True)
        (self.dir / "info" / "exclude").write_text("\n".join(JUNK) + "\n")
        # `git archive` of the starting tree copies every file as committed: the tree's own
        # .gitattributes can neither hide a file (export-ignore) nor rewrite it (export-subst).
        (self.dir / "info" / "attributes").write_text("* -export-ignore -export-subst\n")
        self.objects = self.dir / "objects"
        self.files: dict[str, Start] = {}
        self.base_tree = ""

    def record(self, entry: Entry) -> Entry:
        """Note one starting file (storing its blob unless the checkout has it); pass it on."""
        if not entry.in_store:
            write_object(self.objects, entry.data)
        self.files[entry.path] = Start(entry.mode, entry.blob, len(entry.data))
        return entry

    def record_tracked(self, tracked: Iterable[Tracked]) -> None:
        """Note the files of the starting commit (their blobs are in the checkout)."""
        for t in tracked:
            self.files[t.path] = Start(t.mode, t.blob, t.size)

    def seal(self) -> None:
        """Write the starting index and tree, once every file is recorded."""
        lines = "".join(f"{s.mode:o} {s.blob}\t{path}\0" for path, s in sorted(self.files.items()))
        self._git(["update-index", "-z", "--index-info"], lines.encode("utf-8", "surrogateescape"))
        self.base_tree = self._git(["write-tree"]).strip()

    def _git(self, args: list[str], data: bytes | None = None, index: Path | None = None) -> str:
        env = {"GIT_INDEX_FILE": str(index or self.dir / "index")}
        out = run_git(args, self.dir, env=env, input=data).stdout
        return out.decode("utf-8", "surrogateescape")

    def diff(
        self, present: Iterable[str], fetched: Iterable[Entry], skipped: Iterable[str] = ()
    ) -> Changes:
        """The patch from the starting tree to a workspace holding exactly ``present``, whose
        changed files are ``fetched``."""
        here = set(present)
        changed = {e.path: e for e in fetched}
        deleted = sorted(p for p in self.files if p not in here)
        new = sorted(p for p in changed if p not in self.files)
        ignored = self._ignored(new, changed)
        work = Path(tempfile.mkdtemp(prefix="astraforge-index-"))
        try:
            index = work / "index"
            shutil.copyfile(self.dir / "index", index)
            lines = [f"0 {ZERO}\t{p}\0" for p in deleted]
            for path, entry in sorted(changed.items()):
                if path in ignored:
                    continue
                write_object(self.objects, entry.data)
                lines.append(f"{entry.mode:o} {entry.blob}\t{path}\0")
            if lines:
                self._git(
                    ["update-index", "-z", "--index-info"],
                    "".join(lines).encode("utf-8", "surrogateescape"),
                    index,
                )
            status = self._git(
                ["diff-index", "--cached", "--name-status", "--no-renames", "-z", self.base_tree],
                index=index,
            ).split("\0")
            patch = self._git(
                ["diff-index", "--cached", "-p", "--binary", "--no-renames", self.base_tree],
                index=index,
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        buckets: dict[str, list[str]] = {"A": [], "M": [], "D": []}
        for code, name in zip(status[0::2], status[1::2], strict=False):
            buckets.get(code[:1], buckets["M"]).append(name)
        return Changes(
            added=buckets["A"],
            modified=buckets["M"],
            deleted=buckets["D"],
            patch=patch,
            skipped=sorted(skipped),
            base_tree=self.base_tree,
        )

    def _ignored(self, new: list[str], fetched: dict[str, Entry]) -> set[str]:
        """Which new paths git would ignore, by the .gitignore files of the end state."""
        if not new:
            return set()
        tree = Path(tempfile.mkdtemp(prefix="astraforge-ignore-"))
        try:
            for path, start in self.files.items():
                if path.rsplit("/", 1)[-1] == ".gitignore" and start.mode != SYMLINK:
                    if path in fetched:
                        continue
                    data = run_git(["cat-file", "blob", start.blob], self.dir).stdout
                    _place(tree, path, data)
            for path, entry in fetched.items():
                if path.rsplit("/", 1)[-1] == ".gitignore" and not entry.is_link:
                    _place(tree, path, entry.data)
            result = run_git(
                [f"--work-tree={tree}", "check-ignore", "--no-index", "-z", "--stdin"],
                self.dir,
                input="\0".join(new).encode("utf-8", "surrogateescape") + b"\0",
                check=False,
            )
            return {p for p in result.stdout.decode("utf-8", "surrogateescape").split("\0") if p}
        finally:
            shutil.rmtree(tree, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _place(root: Path, path: str, data: bytes) -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
