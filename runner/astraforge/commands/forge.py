"""`astraforge forge init|show`: the local forge, a directory standing in for GitHub or GitLab."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from astraforge.commands import common
from astraforge.commands.common import DIR, EXISTING
from astraforge.errors import UsageError
from astraforge.forges.local import LocalForge


def init(directory: Path, source: Path, name: str) -> str:
    """Create a local forge whose remote holds ``source``'s history; one line saying so."""
    if (directory / "remote.git").exists():
        raise UsageError(f"{directory} already holds a forge", "pick another directory")
    forge = LocalForge.init(directory, source, name)
    return f"local forge for {name} at {forge.root} (default branch {forge.repo().default_branch})"


def show(directory: Path) -> dict[str, Any]:
    """The forge's repository, pull requests and comments."""
    return LocalForge(directory).state()


# -- the command line ------------------------------------------------------------------


@click.group("forge")
def group() -> None:
    """The local forge: a directory standing in for GitHub or GitLab."""


@group.command("init")
@click.argument("directory", type=DIR)
@click.option("--from", "source", type=EXISTING, required=True, help="Repository to hold.")
@click.option("--name", default="local/repo", show_default=True, help="owner/name to report.")
def forge_init(directory: Path, source: Path, name: str) -> None:
    """Create a local forge: DIRECTORY/remote.git, pulls/ and comments/."""
    click.echo(init(directory, source, name))


@group.command("show")
@click.argument("directory", type=EXISTING)
def forge_show(directory: Path) -> None:
    """Print the forge's pull requests and comments as JSON."""
    common.print_json(show(directory))
