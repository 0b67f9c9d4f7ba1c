"""`astraforge sandbox run|gc`: a command in a fresh sandbox, and cleaning up after runners."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click

from astraforge.commands.common import BACKENDS, EXISTING, say
from astraforge.sandbox import BwrapConfig, DockerConfig, ExecResult, SandboxSpec, open_sandbox


def spec(backend: str | None, image: str | None) -> SandboxSpec | None:
    """The sandbox --backend/--image name; None when neither is given."""
    if backend == "bwrap":
        return BwrapConfig()
    if backend == "docker" or image:
        return DockerConfig(**({"image": image} if image else {}))
    return None


def run(
    backend: str, image: str | None, workspace: Path, timeout: float, argv: tuple[str, ...]
) -> ExecResult:
    """Run ``argv`` in a fresh sandbox holding the files git tracks in ``workspace``."""
    chosen = spec(backend, image) or DockerConfig()
    line = " ".join(shlex.quote(part) for part in argv)
    with open_sandbox(chosen, workspace) as box:
        return box.run(line, timeout=timeout)


def run_and_show(**kw: Any) -> int:
    """:func:`run`, with the command's output on stdout and stderr; its exit code."""
    result = run(**kw)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if result.timed_out:
        say(f"astraforge: command timed out after {kw['timeout']:g}s")
    elif result.oom_killed:
        say("astraforge: command was killed: out of memory")
    return result.exit_code if result.exit_code >= 0 else 1


def gc(older_than: float) -> list[str]:
    """Remove leftover sandbox containers and volumes of dead runners."""
    from astraforge.sandbox.daemon import gc as docker_gc

    return docker_gc(older_than=older_than)


# -- the command line ------------------------------------------------------------------


@click.group("sandbox")
def group() -> None:
    """Run commands in the hardened sandbox."""


@group.command("run", context_settings={"ignore_unknown_options": True})
@click.option("--backend", type=BACKENDS, default="docker", show_default=True)
@click.option("--image", help="Sandbox image (docker backend).")
@click.option("--workspace", type=EXISTING, default=Path("."), show_default=True)
@click.option("--timeout", type=float, default=600.0, show_default=True)
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
def sandbox_run(**kw: Any) -> None:
    """Run ARGV in a fresh sandbox holding the files git tracks; exit with its code."""
    sys.exit(run_and_show(**kw))


@group.command("gc")
@click.option("--older-than", type=float, default=6 * 3600, show_default=True)
def sandbox_gc(older_than: float) -> None:
    """Remove leftover sandboxes: at once for dead runners on this host, else when older."""
    removed = gc(older_than)
    click.echo("".join(f"removed {name}\n" for name in removed) + f"{len(removed)} removed")
