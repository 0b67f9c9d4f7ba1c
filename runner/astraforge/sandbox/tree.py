"""What goes into a sandbox: exactly the files git tracks at the starting commit.

Untracked and ignored files of a checkout (credentials a CI step wrote, build output) never
enter a sandbox; a trusted setting may name extra paths (``include``). A directory that is
not a git checkout is copied as it is, without ``.git`` and the excluded globs.

The entries stream once: into a tar for the Docker API, or into a staging directory for
bubblewrap. Every file starts with mtime 0, so that any later write shows.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from astraforge.errors import SandboxError
from astraforge.git import git_env, head_commit, is_checkout
from astraforge.globs import matches

REGULAR, EXECUTABLE, SYMLINK = 0o100644, 0o100755, 0o120000
MODES = {b"100644": REGULAR, b"100755": EXECUTABLE, b"120000": SYMLINK}


@dataclass(frozen=True)
class Entry:
    """One file: its path, git mode, content (or link target) and git blob id."""

    path: str
    mode: int
    data: bytes
    blob: str
    in_store: bool = False  # the blob is in the checkout's git object store

    @property
    def is_link(self) -> bool:
        return self.mode == SYMLINK


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
    """The files a sandbox starts with."""

    def __init__(
        self, root: Path, *, exclude: Sequence[str] = (), include: Sequence[str] = ()
    ) -> None:
        self.root = root
        self.exclude = list(exclude)
        self.include = list(include)
        self.commit = head_commit(root) if is_checkout(root) else None
        self.objects: Path | None = None  # a git object store holding every blob, if any
        if self.commit is not None:
            found = subprocess.run(
                ["git", "rev-parse", "--git-path", "objects"],
                cwd=root,
                env=git_env(),
                capture_output=True,
                check=True,
            )
            self.objects = (root / found.stdout.decode().strip()).resolve()
        elif is_checkout(root):
            raise SandboxError(
                f"{root} is a git checkout without a commit; only committed files are copied "
                "into the sandbox",
                "commit the files first",
            )

    def entries(self) -> Iterator[Entry]:
        """Every file, in path order of the tree (tracked first, then ``include``)."""
        if self.commit is None:
            yield from self._directory()
            return
        seen: set[str] = set()
        for entry in self._tracked():
            seen.add(entry.path)
            yield entry
        if self.include:
            for entry in self._directory(only=self.include):
                if entry.path not in seen:
                    yield entry

    def _skip(self, path: str) -> bool:
        return any(part == ".git" for part in path.split("/")) or bool(matches(path, self.exclude))

    def _tracked(self) -> Iterator[Entry]:
        listing = subprocess.run(
            ["git", "ls-tree", "-r", "-z", "--full-tree", str(self.commit)],
            cwd=self.root,
            env=git_env(),
            capture_output=True,
            check=True,
        ).stdout
        wanted: list[tuple[str, int, str]] = []
        for record in listing.split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            raw_mode, kind, raw_oid = meta.split()
            name = raw_path.decode("utf-8", "surrogateescape")
            if kind != b"blob" or raw_mode not in MODES or self._skip(name):
                continue  # submodules (commits) and excluded paths stay out
            wanted.append((name, MODES[raw_mode], raw_oid.decode()))
        if not wanted:
            return
        with subprocess.Popen(
            ["git", "cat-file", "--batch"],
            cwd=self.root,
            env=git_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        ) as proc:
            stdin, stdout = proc.stdin, proc.stdout
            assert stdin is not None
            assert stdout is not None

            def feed() -> None:
                with stdin:
                    for _, _, oid in wanted:
                        stdin.write(oid.encode() + b"\n")

            feeder = threading.Thread(target=feed, daemon=True)
            feeder.start()
            for path, mode, oid in wanted:
                header = stdout.readline().split()
                if len(header) != 3 or header[0].decode() != oid:
                    raise SandboxError(f"git cat-file could not read {path} ({oid})")
                data = stdout.read(int(header[2]))
                stdout.read(1)  # the newline after each object
                yield Entry(path, mode, data, oid, in_store=True)
            feeder.join()

    def _directory(self, only: Sequence[str] = ()) -> Iterator[Entry]:
        for dirpath, dirnames, filenames in os.walk(self.root):
            base = Path(dirpath)
            rel = base.relative_to(self.root).as_posix()
            prefix = "" if rel == "." else rel + "/"
            dirnames[:] = sorted(d for d in dirnames if not self._skip(prefix + d))
            names = sorted(filenames) + [d for d in dirnames if (base / d).is_symlink()]
            for name in sorted(names):
                path = prefix + name
                if self._skip(path) or (only and not matches(path, only)):
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
    """A tar of ``entries`` (owned by ``uid``, mtime 0, parents created), in chunks."""
    sink = _Chunks()
    made: set[str] = set()
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:

        def add(info: tarfile.TarInfo, data: bytes | None = None) -> None:
            info.uid = info.gid = uid
            info.uname = info.gname = ""
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data) if data is not None else None)

        for entry in entries:
            parts = entry.path.split("/")
            for depth in range(1, len(parts)):
                parent = "/".join(parts[:depth])
                if parent not in made:
                    made.add(parent)
                    add(_dir_info(parent))
            info = tarfile.TarInfo(entry.path)
            if entry.is_link:
                info.type, info.linkname = (
                    tarfile.SYMTYPE,
                    entry.data.decode("utf-8", "surrogateescape"),
                )
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
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info


def write_staging(entries: Iterable[Entry], dest: Path) -> None:
    """Materialize ``entries`` under ``dest`` (modes kept, mtime 0, symlinks as symlinks)."""
    for entry in entries:
        target = dest / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if entry.is_link:
            os.symlink(entry.data, target)
            os.utime(target, (0, 0), follow_symlinks=False)
            continue
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(entry.data)
        os.chmod(target, entry.mode & 0o777)
        os.utime(target, (0, 0))
