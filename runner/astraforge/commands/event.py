"""`astraforge event show|examples`: what a payload becomes, and whether it asks for a run."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from astraforge import config as config_mod
from astraforge.commands import common
from astraforge.commands.common import DIR, config_option, example_option, load_config, task_from
from astraforge.task import Source
from astraforge.trigger import decide


def show(
    env: Mapping[str, str],
    *,
    file: Path | None,
    source: str | None,
    event_name: str | None,
    example: str | None,
    repo: Path | None,
    config_file: Path | None,
) -> dict[str, Any]:
    """``{"task", "decision"}`` for a payload (or the CI job's own event)."""
    cfg = load_config(repo, env, file=config_file)
    task = task_from(
        cfg.trigger.syntax(),
        env,
        event_file=file,
        example_name=example,
        source=source,
        event_name=event_name,
        need_one=False,
    )
    rules = config_mod.load_policy(repo, cfg, env)
    decision = decide(task, cfg.trigger, rules.triggers)
    return {"task": task.public_dict(), "decision": decision.as_dict()}


# -- the command line ------------------------------------------------------------------


@click.group("event")
def group() -> None:
    """Inspect event payloads."""


@group.command("show")
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.option("--source", type=click.Choice([s.value for s in Source]), help="Sender platform.")
@click.option("--event-name", help="GitHub's X-GitHub-Event or Sentry's Sentry-Hook-Resource.")
@example_option
@click.option("--repo", type=DIR, help="Repository whose .astraforge.yml decides the trigger.")
@config_option
def event_show(**kw: Any) -> None:
    """Print the Task a payload (in CI: the job's own event) becomes, and the decision."""
    common.print_json(show(os.environ, **kw))


@group.command("examples")
def event_examples() -> None:
    """List the bundled real payloads usable with `event show --example NAME`."""
    click.echo("\n".join(common.examples()))
