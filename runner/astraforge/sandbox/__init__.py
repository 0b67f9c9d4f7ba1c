"""Sandboxes: where every agent command runs. Backends are imported lazily."""

from __future__ import annotations

from pathlib import Path

from astraforge.progress import Progress
from astraforge.sandbox.base import Changes, ExecResult, Sandbox, SandboxConfig, confine
from astraforge.sandbox.config import BwrapConfig, DockerConfig, SandboxSpec

__all__ = [
    "BwrapConfig",
    "Changes",
    "DockerConfig",
    "ExecResult",
    "Sandbox",
    "SandboxConfig",
    "SandboxSpec",
    "confine",
    "open_sandbox",
]


def open_sandbox(
    config: SandboxSpec,
    workspace: Path,
    *,
    run_id: str | None = None,
    progress: Progress | None = None,
) -> Sandbox:
    """A not-yet-started sandbox holding a copy of ``workspace``; use it as a context manager.
    ``progress`` hears what takes long (an image pull)."""
    if config.type == "docker":
        from astraforge.sandbox.docker import DockerSandbox

        return DockerSandbox(config, workspace, run_id=run_id, progress=progress)
    from astraforge.sandbox.bwrap import BwrapSandbox

    return BwrapSandbox(config, workspace, run_id=run_id, progress=progress)
