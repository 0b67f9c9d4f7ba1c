"""Paths inside the sandbox's workspace, and the errors a file operation reports."""

from __future__ import annotations

from astraforge.sandbox.config import HOME, TMP, WORKSPACE


def confine(path: str) -> list[str]:
    """The parts of a path inside the sandbox's workspace, resolved lexically.

    Relative paths are taken from the workspace; absolute ones must lie under it; ``..``
    may not leave it.
    """
    text = path[len(WORKSPACE) + 1 :] if path.startswith(WORKSPACE + "/") else path
    if text == WORKSPACE:
        text = ""
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


def raise_for(code: int, stderr: str, path: str) -> None:
    """The OSError a file helper's exit code stands for (2: missing, 3: refused)."""
    message = stderr.strip().splitlines()[-1] if stderr.strip() else f"{path}: error {code}"
    if code == 0:
        return
    if code == 2:
        raise FileNotFoundError(2, message, path)
    if code == 3:
        raise PermissionError(message)
    if code == 4:
        raise OSError(message)
    raise OSError(message)


def private(path: str) -> str:
    """``path`` when it lies under the sandbox's own ``$HOME`` or ``/tmp``."""
    if not path.startswith((HOME + "/", TMP + "/")) or "/../" in path or "\n" in path:
        raise PermissionError(f"{path} is not under {HOME} or {TMP}")
    return path
