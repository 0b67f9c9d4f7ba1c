"""One model of a git patch, read with unidiff: what policy checks, outcomes and reports see.

Each file has its path (git's C-quoted paths unquoted), its status, its modes, whether it is
binary, and its added lines; ``git diff --binary`` patches, mode changes, symlinks (mode
120000) and submodules (160000) are all represented.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from unidiff.patch import PatchSet

NULL = "/dev/null"


@dataclass(frozen=True)
class FileDiff:
    """One file of a patch."""

    path: str
    old_path: str | None = None
    status: str = "modified"  # added, modified, deleted
    binary: bool = False
    old_mode: str | None = None
    new_mode: str | None = None
    added: list[str] = field(default_factory=list)
    removed: int = 0

    @property
    def changed_lines(self) -> int:
        return len(self.added) + self.removed

    @property
    def paths(self) -> list[str]:
        """Every path the change touches (a rename touches two)."""
        return list(dict.fromkeys(p for p in (self.path, self.old_path) if p))


def unquote(path: str) -> str:
    """A path as git prints it, C-quoted when it holds unusual bytes, made plain."""
    if not path.startswith('"'):
        return path
    raw = path[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
    return raw.encode("latin-1", "surrogateescape").decode("utf-8", "surrogateescape")


def _side(name: str | None) -> str | None:
    if not name or name == NULL:
        return None
    plain = unquote(name.strip())
    return plain[2:] if plain[:2] in ("a/", "b/") else plain


def parse(patch: str) -> list[FileDiff]:
    """The files of a git patch."""
    if not patch.strip():
        return []
    files = []
    for item in PatchSet(patch):
        old, new = _side(item.source_file), _side(item.target_file)
        status = (
            "added" if item.is_added_file else "deleted" if item.is_removed_file else "modified"
        )
        old_mode = str(item.source_mode) if item.source_mode else None
        new_mode = str(item.target_mode) if item.target_mode else None
        files.append(
            FileDiff(
                path=new or old or unquote(item.path),
                old_path=old if old != new else None,
                status=status,
                binary=bool(item.is_binary_file),
                old_mode=old_mode if status != "added" else None,
                new_mode=new_mode if status != "deleted" else None,
                added=[line.value.rstrip("\n") for hunk in item for line in hunk if line.is_added],
                removed=sum(1 for hunk in item for line in hunk if line.is_removed),
            )
        )
    return files
