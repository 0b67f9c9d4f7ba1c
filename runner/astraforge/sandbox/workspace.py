"""Moving a workspace in and out of a sandbox as tar, and computing its changes on the runner.

Nothing here follows a link that came out of a sandbox: archives are extracted with
:func:`tarfile.tar_filter` (no member outside the destination, through a link or otherwise),
symlinks come back as symlinks, and the diff is taken by a private git repository that
records a link as a link.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

from astraforge.git import run_git
from astraforge.globs import matches
from astraforge.sandbox.base import Changes
from astraforge.sandbox.config import SANDBOX_UID

EXCLUDED = {".git"}
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


def pack(source: Path, out: IO[bytes], uid: int = SANDBOX_UID, exclude: Sequence[str] = ()) -> None:
    """Write ``source`` (without .git and the ``exclude`` globs) as a tar owned by ``uid``,
    with a ``.`` entry first."""
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
            info.uid = info.gid = uid
            info.uname = info.gname = ""
            return info

        root = tar.gettarinfo(str(source), arcname=".")
        root.mode = 0o755
        tar.addfile(owned(root))
        for path in _walk(source, exclude):
            rel = path.relative_to(source).as_posix()
            info = tar.gettarinfo(str(path), arcname=rel)
            if info.isreg():
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
                with os.fdopen(fd, "rb") as handle:
                    tar.addfile(owned(info), handle)
            elif info.isdir() or info.issym():
                tar.addfile(owned(info))
    out.seek(0)


def _walk(root: Path, exclude: Sequence[str] = ()) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        rel = base.relative_to(root).as_posix()
        prefix = "" if rel == "." else rel + "/"
        dirnames[:] = sorted(
            d for d in dirnames if d not in EXCLUDED and not matches(prefix + d, exclude)
        )
        for name in dirnames:
            yield base / name
        for name in sorted(filenames):
            if not matches(prefix + name, exclude):
                yield base / name


def extract(archive: IO[bytes], dest: Path, strip: str = "") -> list[str]:
    """Extract a tar stream into ``dest`` safely; return the members that were refused."""
    skipped: list[str] = []

    def guard(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        name = member.name
        if strip:
            if name == strip.rstrip("/"):
                return None
            if not name.startswith(strip):
                skipped.append(name)
                return None
            member = member.replace(name=name[len(strip) :], deep=False)
        if member.name in ("", ".", "./") or member.name.split("/")[0] in EXCLUDED:
            return None
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            skipped.append(member.name)
            return None
        try:
            return tarfile.tar_filter(member, path)
        except tarfile.FilterError:
            skipped.append(member.name)
            return None

    with tarfile.open(fileobj=archive, mode="r|*") as tar:
        tar.extractall(dest, filter=guard)  # noqa: S202 - every member passes guard()
    return skipped


class Shadow:
    """A private git repository holding the starting tree, to diff what comes back.

    It follows git's own rules, as a commit in the real repository would: the repository's
    .gitignore applies, and so does :data:`JUNK`.
    """

    def __init__(self, start_tar: IO[bytes]) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="astraforge-shadow-"))
        run_git(["init", "-q", "-b", "base", "."], self.dir)
        (self.dir / ".git" / "info").mkdir(exist_ok=True)
        (self.dir / ".git" / "info" / "exclude").write_text("\n".join(JUNK) + "\n")
        extract(start_tar, self.dir)
        run_git(["add", "-A", "."], self.dir)
        run_git(["commit", "-q", "--allow-empty", "--no-verify", "-m", "start"], self.dir)
        self.base_tree = run_git(["rev-parse", "HEAD^{tree}"], self.dir).stdout.decode().strip()

    def diff(self, end_tar: IO[bytes], strip: str = "") -> Changes:
        for child in self.dir.iterdir():
            if child.name == ".git":
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        skipped = extract(end_tar, self.dir, strip)
        run_git(["add", "-A", "."], self.dir)
        status = (
            run_git(["diff", "--cached", "--name-status", "--no-renames", "-z", "HEAD"], self.dir)
            .stdout.decode("utf-8", "surrogateescape")
            .split("\0")
        )
        added: list[str] = []
        modified: list[str] = []
        deleted: list[str] = []
        buckets = {"A": added, "M": modified, "D": deleted, "T": modified}
        for code, name in zip(status[0::2], status[1::2], strict=False):
            buckets.get(code[:1], modified).append(name)
        patch = run_git(["diff", "--cached", "--binary", "--no-renames", "HEAD"], self.dir).stdout
        return Changes(
            added=added,
            modified=modified,
            deleted=deleted,
            patch=patch.decode("utf-8", "surrogateescape"),
            skipped=skipped,
            base_tree=self.base_tree,
        )

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def resolve_nofollow(
    root: Path, path: str, flags: int, *, create_dirs: bool = False, owner: int | None = None
) -> int:
    """Open ``path`` under ``root`` without following any symlink; return the fd.

    ``path`` may be relative or absolute inside the sandbox's /workspace; ``..`` may not
    leave the workspace.
    """
    parts = confine(path)
    if not parts:
        raise IsADirectoryError(path)
    dir_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for part in parts[:-1]:
            try:
                next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
            except FileNotFoundError:
                if not create_dirs:
                    raise
                os.mkdir(part, 0o755, dir_fd=dir_fd)
                if owner is not None:
                    os.chown(part, owner, owner, dir_fd=dir_fd, follow_symlinks=False)
                next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
            except NotADirectoryError:
                raise PermissionError(f"{path}: {part} is a symlink or a file") from None
            os.close(dir_fd)
            dir_fd = next_fd
        try:
            fd = os.open(parts[-1], flags | os.O_NOFOLLOW, 0o644, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == 40:  # ELOOP: the last component is a symlink
                raise PermissionError(f"{path} is a symlink; not followed") from None
            raise
        if owner is not None and flags & os.O_CREAT:
            os.fchown(fd, owner, owner)
        return fd
    finally:
        os.close(dir_fd)


def confine(path: str) -> list[str]:
    """The parts of a path inside the sandbox's workspace, resolved lexically.

    Relative paths are taken from the workspace; absolute ones must lie under it; ``..``
    may not leave it.
    """
    from astraforge.sandbox.config import WORKSPACE

    text = path[len(WORKSPACE) + 1 :] if path.startswith(WORKSPACE + "/") else path
    if text.startswith("/"):
        raise PermissionError(f"{path} is outside the workspace")
    parts: list[str] = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise PermissionError(f"{path} is outside the workspace")
            parts.pop()
        else:
            parts.append(part)
    return parts
