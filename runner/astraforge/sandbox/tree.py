"""What goes into a sandbox: exactly the files git tracks at the starting commit.

Untracked and ignored files of a checkout (credentials a CI step wrote, build output) never
enter a sandbox; a trusted setting may name extra paths (``include``). A directory that is
not a git checkout is copied as it is, without ``.git`` and the excluded globs.

Everything goes in as one tar stream: for a checkout, ``git archive`` of the wanted tree
(no temporary file, no blob read into Python), for a directory a tar built as it streams.
Every file starts with mtime 0, so that any later write shows.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from astraforge.errors import SandboxError
from astraforge.git import git_env, head_commit, is_checkout
from astraforge.globs import matches

REGULAR, EXECUTABLE, SYMLINK = 0o100644, 0o100755, 0o120000
MODES = {b"100644": REGULAR, b"100755": EXECUTABLE, b"120000": SYMLINK}
BLOCK = 512


@dataclass(frozen=True)
class Entry:
    """One file: its path, git mode, content (or link target) and git blob id."""

    path: str
    mode: int
    data: bytes
    blob: str
    in_store: bool = False  # the blob is in the checkout's git object store
    mtime: int = 0

    @property
    def is_link(self) -> bool:
        return self.mode == SYMLINK


@dataclass(frozen=True)
class Tracked:
    """A file git tracks at the starting commit (its content stays in git)."""

    path: str
    mode: int
    size: int
    blob: str


def blob_id(data: bytes) -> str:
    """The git object id of a blob holding ``data``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def write_object(objects: Path, data: bytes) -> str:
    """Store ``data`` as a loose git blob under ``objects``; its id."""
    oid = blob_id(data)
    path = objects / oid[:2] / oid[2:]
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_bytes(zlib.compress(b"blob %d\0" % len(data) + data, 1))
        tmp.replace(path)
    return oid


class Source:
    """The files a sandbox starts with: a commit's tracked files (plus trusted ``include``
    paths from the working tree), or a plain directory."""

    def __init__(
        self,
        root: Path,
        *,
        exclude: Sequence[str] = (),
        include: Sequence[str] = (),
        commit: str | None = None,
        objects: Path | None = None,
    ) -> None:
        self.root = root
        self.exclude = list(exclude)
        self.include = list(include)
        self.commit = commit or (head_commit(root) if is_checkout(root) else None)
        # The git object store holding every blob, if any: the checkout's, or one that
        # borrows it and also holds ``commit`` (a follow-up's branch, fetched apart).
        self.objects: Path | None = objects
        self._env = git_env({"GIT_ALTERNATE_OBJECT_DIRECTORIES": str(objects)} if objects else {})
        if self.commit is None and is_checkout(root):
            raise SandboxError(
                f"{root} is a git checkout without a commit; only committed files are copied "
                "into the sandbox",
                "commit the files first",
            )
        if self.commit is not None and objects is None:
            found = subprocess.run(
                ["git", "rev-parse", "--git-path", "objects"],
                cwd=root,
                env=git_env(),
                capture_output=True,
                check=True,
            )
            self.objects = (root / found.stdout.decode().strip()).resolve()

    def skip(self, path: str) -> bool:
        """Whether ``path`` stays out: inside a ``.git``, or excluded."""
        return any(part == ".git" for part in path.split("/")) or bool(matches(path, self.exclude))

    def tracked(self) -> list[Tracked]:
        """The commit's files that go in (submodules and excluded paths stay out)."""
        if self.commit is None:
            return []
        listing = subprocess.run(
            ["git", "ls-tree", "-r", "-l", "-z", "--full-tree", self.commit],
            cwd=self.root,
            env=self._env,
            capture_output=True,
            check=True,
        ).stdout
        wanted = []
        for record in listing.split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            raw_mode, kind, oid, size = meta.split()
            path = raw_path.decode("utf-8", "surrogateescape")
            if kind == b"blob" and raw_mode in MODES and not self.skip(path):
                wanted.append(Tracked(path, MODES[raw_mode], int(size), oid.decode()))
        return wanted

    def untracked(self) -> Iterator[Entry]:
        """The files read from disk: every file of a plain directory, or the trusted
        ``include`` paths of a checkout."""
        if self.commit is not None and not self.include:
            return
        only = self.include if self.commit is not None else ()
        tracked = {t.path for t in self.tracked()} if self.commit is not None else set()
        for entry in self._directory(only):
            if entry.path not in tracked:
                yield entry

    def _directory(self, only: Sequence[str]) -> Iterator[Entry]:
        for dirpath, dirnames, filenames in os.walk(self.root):
            base = Path(dirpath)
            rel = base.relative_to(self.root).as_posix()
            prefix = "" if rel == "." else rel + "/"
            dirnames[:] = sorted(d for d in dirnames if not self.skip(prefix + d))
            names = sorted(filenames) + [d for d in dirnames if (base / d).is_symlink()]
            for name in sorted(names):
                path = prefix + name
                if self.skip(path) or (only and not matches(path, only)):
                    continue
                full = base / name
                if full.is_symlink():
                    data, mode = os.readlink(full).encode("utf-8", "surrogateescape"), SYMLINK
                elif full.is_file():
                    fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                    with os.fdopen(fd, "rb") as handle:
                        data = handle.read()
                    mode = EXECUTABLE if os.access(full, os.X_OK) else REGULAR
                else:
                    continue  # FIFOs, sockets, devices
                yield Entry(path, mode, data, blob_id(data))


def archive(git_dir: Path, tree: str) -> Iterator[bytes]:
    """``git archive`` of ``tree`` from ``git_dir`` as a tar stream with every mtime set to
    0 and no end-of-archive blocks (:func:`tar_stream` may follow it)."""
    command = ["git", "-c", "tar.umask=022", "archive", "--format=tar", tree]
    with subprocess.Popen(
        command, cwd=git_dir, env=git_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None
        yield from zero_mtimes(iter(lambda: proc.stdout.read(1 << 20), b""))  # type: ignore[union-attr]
        error = proc.stderr.read() if proc.stderr else b""
    if proc.returncode:
        raise SandboxError(f"git archive failed: {error.decode(errors='replace').strip()}")


def zero_mtimes(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """A tar stream with each member's mtime set to 0 (and its checksum redone), ending
    before the end-of-archive blocks."""
    pending = bytearray()
    skip = 0  # bytes of member data still to pass through
    for chunk in chunks:
        pending += chunk
        out = bytearray()
        while True:
            if skip:
                take = min(skip, len(pending))
                out += pending[:take]
                del pending[:take]
                skip -= take
                if skip:
                    break
            if len(pending) < BLOCK:
                break
            header = bytearray(pending[:BLOCK])
            del pending[:BLOCK]
            if not any(header):
                yield bytes(out)
                return  # the end of the archive: the rest are zero blocks
            size = int(header[124:136].rstrip(b"\0 ") or b"0", 8)
            skip = (size + BLOCK - 1) // BLOCK * BLOCK
            if bytes(header[156:157]) not in (b"x", b"g"):  # pax records carry no mtime
                header[136:148] = b"00000000000\0"
            header[148:156] = b" " * 8
            header[148:156] = b"%06o\0 " % sum(header)
            out += header
        if out:
            yield bytes(out)
    if pending:
        raise SandboxError("git archive ended in the middle of a tar member")


class _Chunks(io.RawIOBase):
    """A write-only file whose writes are collected, to stream a tar as it is built."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def tar_stream(entries: Iterable[Entry], uid: int, chunk: int = 1 << 20) -> Iterator[bytes]:
    """A tar of ``entries`` (owned by ``uid``, their mtime, parents created), in chunks."""
    sink = _Chunks()
    made: set[str] = set()
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:

        def add(info: tarfile.TarInfo, data: bytes | None = None) -> None:
            info.uid = info.gid = uid
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data) if data is not None else None)

        for entry in entries:
            parts = entry.path.split("/")
            for depth in range(1, len(parts)):
                parent = "/".join(parts[:depth])
                if parent not in made:
                    made.add(parent)
                    add(_dir_info(parent))
            info = tarfile.TarInfo(entry.path)
            info.mtime = entry.mtime
            if entry.is_link:
                info.type = tarfile.SYMTYPE
                info.linkname = entry.data.decode("utf-8", "surrogateescape")
                info.mode = 0o777
                add(info)
            else:
                info.size, info.mode = len(entry.data), entry.mode & 0o777
                add(info, entry.data)
            if sum(len(p) for p in sink.parts) >= chunk:
                yield sink.take()
    rest = sink.take()
    if rest:
        yield rest


def _dir_info(path: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
    return info


def read_tar(data: bytes) -> list[Entry]:
    """The regular files and symlinks of a tar (other members are dropped), in memory:
    nothing is extracted, and a link is never followed."""
    entries = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            path = member.name.removeprefix("./")
            if member.issym():
                link = member.linkname.encode("utf-8", "surrogateescape")
                entries.append(Entry(path, SYMLINK, link, blob_id(link), mtime=int(member.mtime)))
            elif member.isreg():
                handle = tar.extractfile(member)
                content = handle.read() if handle else b""
                mode = EXECUTABLE if member.mode & 0o100 else REGULAR
                entries.append(
                    Entry(path, mode, content, blob_id(content), mtime=int(member.mtime))
                )
    return entries
