"""What several commands share: the configuration with its warnings, and a Task from flags."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

import click

from astraforge import config as config_mod
from astraforge import events, resources
from astraforge.ci import detect
from astraforge.ci.log import neutralize
from astraforge.config.model import EngineName
from astraforge.errors import UsageError
from astraforge.events import manual
from astraforge.events.commands import CommandSyntax
from astraforge.task import Task

# Click parameters the commands share.
FILE = click.Path(path_type=Path, dir_okay=False)
DIR = click.Path(path_type=Path, file_okay=False)
EXISTING = click.Path(path_type=Path, file_okay=False, exists=True)
BACKENDS = click.Choice(["docker", "bwrap"])
FORGES = click.Choice(["github", "gitlab", "local"])
NETWORKS = click.Choice(["none", "setup-only", "allowlist"])
ENGINE_NAMES = click.Choice(list(get_args(EngineName)))
repo_option = click.option("--repo", type=EXISTING, default=Path("."), show_default=True)
config_option = click.option("--config", "config_file", type=FILE, help="Configuration file.")
event_option = click.option("--event", "event_file", type=FILE, help="An event payload.")
task_option = click.option("--task", "text", help="A plain-language request instead.")
example_option = click.option("--example", help="A bundled payload (`event examples`).")


def say(line: str) -> None:
    """A diagnostic line on stderr, neutralized for CI logs."""
    sys.stderr.write(neutralize(line) + "\n")
    sys.stderr.flush()


def load_config(
    repo: Path | None,
    env: Mapping[str, str],
    *,
    file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> config_mod.Config:
    """The configuration; each ignored setting of the repository's file is a warning line."""
    cfg = config_mod.load(repo, file=file, env=env, cli=overrides)
    for warning in cfg.warnings:
        say(f"warning: {warning}")
    return cfg


def example(name: str) -> Path:
    """A bundled real payload, by the name `astraforge event examples` lists."""
    names = examples()
    if name not in names:
        raise UsageError(
            f"there is no bundled example named {name!r}",
            f"use one of: {', '.join(names)} (`astraforge event examples`)",
        )
    return Path(str(resources.resource("examples", f"payloads/{name}.json")))


def examples() -> list[str]:
    """The bundled real payloads' names."""
    return sorted(
        n.removesuffix(".json")
        for n in resources.list_names("examples", "payloads")
        if n.endswith(".json")
    )


def task_from(
    syntax: CommandSyntax,
    env: Mapping[str, str],
    *,
    event_file: Path | None = None,
    text: str | None = None,
    example_name: str | None = None,
    source: str | None = None,
    event_name: str | None = None,
    need_one: bool = True,
) -> Task:
    """The Task of --event FILE, --task TEXT or --example NAME (exactly one of them when
    ``need_one``; else, with none, the CI job's own event)."""
    given = [x for x in (event_file, text, example_name) if x is not None]
    if len(given) > 1 or (need_one and not given):
        raise UsageError("give exactly one of --event FILE, --task TEXT and --example NAME")
    if example_name is not None:
        event_file = example(example_name)
    if event_file is not None:
        return events.parse_file(event_file, source, event_name=event_name, syntax=syntax)
    if text is not None:
        return manual.parse({"request": text})
    return detect.task_from_ci(env, syntax)


def print_json(data: Any) -> None:
    """JSON on stdout, for people and for `jq`."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def verbose(args: list[str]) -> bool:
    """Whether -v/--verbose came before the command."""
    for arg in args:
        if not arg.startswith("-"):
            return False
        if arg in ("-v", "--verbose"):
            return True
    return False
