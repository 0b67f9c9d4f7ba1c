"""The starting files' stream: one tar of the tracked files, made while the sandbox starts.

``git archive`` of the starting tree writes the tar (no temporary files, no checkout), and a
thread runs it ahead of the backend's copy so the two overlap with the container's start.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator

from astraforge.sandbox.config import SANDBOX_UID
from astraforge.sandbox.shadow import Shadow
from astraforge.sandbox.tree import Source, archive, tar_stream


def starting_files(source: Source, shadow: Shadow) -> Iterator[bytes]:
    """The tar stream of the starting files, noting each in the shadow as it goes: a
    commit's files come from ``git archive`` of the starting tree, a directory's from disk."""
    if source.commit is None:
        yield from tar_stream((shadow.record(e) for e in source.untracked()), SANDBOX_UID)
        return
    shadow.record_tracked(source.tracked())
    for entry in source.untracked():
        shadow.record(entry)
    shadow.seal()
    yield from archive(shadow.dir, shadow.base_tree)
    yield from tar_stream([], SANDBOX_UID)  # the end of the archive


class Prefetch:
    """Makes a stream in a thread while the sandbox starts, up to ``depth`` chunks ahead."""

    def __init__(self, make: Callable[[], Iterable[bytes]], depth: int = 64) -> None:
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(depth)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._fill, args=(make,), daemon=True)
        self._thread.start()

    def _fill(self, make: Callable[[], Iterable[bytes]]) -> None:
        try:
            chunks = make()
            for chunk in chunks:
                while not self._closed.is_set():
                    try:
                        self._queue.put(chunk, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if self._closed.is_set():
                    getattr(chunks, "close", lambda: None)()
                    return
        except BaseException as exc:
            self._queue.put(exc)
            return
        self._queue.put(None)

    def close(self) -> None:
        """Stop reading: the producer ends (and its ``git archive`` with it)."""
        self._closed.set()

    def __iter__(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


def take(chunks: Iterator[bytes], limit: int) -> tuple[list[bytes], bool]:
    """The first chunks of a stream, up to about ``limit`` bytes, and whether that was all
    of it (the rest stays in ``chunks``)."""
    head: list[bytes] = []
    size = 0
    for chunk in chunks:
        head.append(chunk)
        size += len(chunk)
        if size >= limit:
            return head, False
    return head, True
