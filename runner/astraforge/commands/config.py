"""`astraforge config schema|show`."""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from astraforge.commands import common
from astraforge.commands.common import config_option, load_config, repo_option


def show(repo: Path, config_file: Path | None, env: Mapping[str, str]) -> dict[str, Any]:
    """The effective configuration: defaults, the repository's file, the environment."""
    return load_config(repo, env, file=config_file).model_dump(mode="json")


# -- the command line ------------------------------------------------------------------


@click.group("config")
def group() -> None:
    """Inspect the configuration."""


@group.command("schema")
def config_schema() -> None:
    """Print the JSON schema of .astraforge.yml."""
    click.echo(importlib.import_module("astraforge.config").json_schema(), nl=False)


@group.command("show")
@repo_option
@config_option
def config_show(repo: Path, config_file: Path | None) -> None:
    """Print the effective configuration (defaults, file, settings, environment)."""
    common.print_json(show(repo, config_file, os.environ))
