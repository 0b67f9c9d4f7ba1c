"""`astraforge engines list|install`: the engines, their pins, and installing them ahead."""

from __future__ import annotations

import click

from astraforge.commands.common import say
from astraforge.engines import BUILTIN, ENGINES, NAMES, PROTOCOLS, get
from astraforge.engines.install import ensure, folder, installed
from astraforge.progress import Progress


def rows() -> list[tuple[str, str, str, str]]:
    """Each engine: name, pinned package, protocol, and where it is (or will be)."""
    table = [
        (BUILTIN, "astraforge (this package)", "OpenAI chat completions or Responses", "built in")
    ]
    for engine in ENGINES.values():
        where = f"installed: {folder(engine)}" if installed(engine) else "installed on first use"
        table.append((engine.name, engine.package.spec, PROTOCOLS[engine.protocol], where))
    return table


def install(names: tuple[str, ...], python: str | None = None) -> list[str]:
    """Install ``names`` (every engine when empty) into the runner's cache; PyPI engines
    for the sandbox's Python ``python`` (default: the runner's)."""
    chosen = [get(n) for n in names] if names else list(ENGINES.values())
    return [str(ensure(engine, Progress(), python)) for engine in chosen]


# -- the command line ------------------------------------------------------------------


@click.group("engines")
def group() -> None:
    """The coding agents AstraForge can run in its sandbox."""


@group.command("list")
def engines_list() -> None:
    """Each engine, its pinned version, its protocol, and whether it is installed."""
    table = rows()
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + row[3]
        )


@group.command("install")
@click.argument("names", nargs=-1, type=click.Choice([n for n in NAMES if n != BUILTIN]))
@click.option(
    "--python",
    metavar="X.Y",
    help="The sandbox image's Python version, for PyPI engines (default: the runner's).",
)
def engines_install(names: tuple[str, ...], python: str | None) -> None:
    """Install engines ahead of a run (all of them without NAMES), e.g. in a cached CI step."""
    for path in install(names, python):
        say(f"ready: {path}")
