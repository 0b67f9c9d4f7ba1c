"""The `astraforge` command line: declarations only; each command calls one function of
:mod:`astraforge.commands` (imported when the command runs). Every AstraForgeError becomes
one line on stderr and its exit code; ``-v`` adds the traceback."""

from __future__ import annotations

import functools
import importlib
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from astraforge import __version__
from astraforge.ci.log import neutralize
from astraforge.commands import common
from astraforge.commands.common import (
    BACKENDS,
    DIR,
    ENGINE_NAMES,
    EXISTING,
    FILE,
    FORGES,
    NETWORKS,
    config_option,
    event_option,
    example_option,
    repo_option,
    task_option,
)
from astraforge.errors import AstraForgeError

AGENT_SETTINGS = {  # flag -> (dotted configuration field, help)
    "model": ("model.name", "Model name, or replay:TRAJECTORY.jsonl."),
    "base_url": ("model.base_url", "OpenAI-compatible API base URL (OPENAI_BASE_URL)."),
    "backend": ("sandbox.backend", "Sandbox backend: docker or bwrap."),
    "image": ("sandbox.image", "Sandbox image (docker backend)."),
    "network": ("sandbox.network", "Sandbox network: none, setup-only or allowlist."),
    "allow": ("sandbox.allow", "Host the sandbox may reach through the gateway (repeatable)."),
    "test_command": ("test_command", "The runner's own test command."),
    "engine": ("engine", "Engine: builtin, or a coding-agent CLI (astraforge engines list)."),
}


def command(name: str) -> Any:
    """The module of a command, imported only when it runs."""
    return importlib.import_module(f"astraforge.commands.{name}")


def agent_settings(function: Any) -> Any:
    """The agent's flags, handed to the command as ``overrides`` (dotted config fields)."""

    @functools.wraps(function)
    def wrapper(**kw: Any) -> None:
        overrides = {field: kw.pop(flag) for flag, (field, _) in AGENT_SETTINGS.items()}
        overrides["sandbox.allow"] = list(overrides["sandbox.allow"]) or None
        function(overrides=overrides, **kw)

    for flag, (_, text) in reversed(AGENT_SETTINGS.items()):
        kind = {"backend": BACKENDS, "network": NETWORKS, "engine": ENGINE_NAMES}.get(flag)
        name = f"--{flag.replace('_', '-')}"
        wrapper = click.option(name, help=text, type=kind, multiple=flag == "allow")(wrapper)
    return wrapper


GROUPS = (
    "event",
    "config",
    "sandbox",
    "policy",
    "relay",
    "forge",
    "engines",
)  # in commands/<name>.py


class Commands(click.Group):
    """The top-level group; the command groups are loaded from their modules on use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *GROUPS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in GROUPS:
            return command(name).group  # type: ignore[no-any-return]
        return super().get_command(ctx, name)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="astraforge")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and debug output.")
def cli(verbose: bool) -> None:
    """AstraForge: turn issues, requests and alerts into reviewed pull requests."""


@cli.command("run")
@event_option
@repo_option
@click.option("--forge", type=FORGES, help="Where to publish (default: the CI's).")
@click.option("--forge-dir", type=DIR, help="The local forge's directory (--forge local).")
@config_option
@click.option("--out", type=DIR, help="Artifacts (default: outside the checkout).")
@click.option("--dry-run/--no-dry-run", default=None, help="Write nothing to the forge.")
@click.option("--publish-from", type=EXISTING, help="Publish a --dry-run's artifacts.")
@agent_settings
def run_command(**kw: Any) -> None:
    """The whole flow: event, permission, sandboxed agent, policy, branch, PR, status."""
    finish(command("run").run(**kw))


@cli.command("demo")
@click.option("--dir", "directory", type=DIR, help="Where (default: a new temporary folder).")
@click.option("--backend", type=BACKENDS, help="Default: docker with the image, else bwrap.")
def demo_command(directory: Path | None, backend: str | None) -> None:
    """The whole flow offline: a real bug and alert, the sandbox, a replayed model."""
    finish(command("demo").run_demo(directory, common.say, backend))


@cli.command("init")
@repo_option
@click.option("--platform", type=click.Choice(["github", "gitlab"]), help="Default: detected.")
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
def init_command(repo: Path, platform: str | None, force: bool) -> None:
    """Write the workflows (or the GitLab include) and a commented .astraforge.yml."""
    click.echo("\n".join(command("init").init(repo, platform, force)))


@cli.command("doctor")
@repo_option
@click.option("--forge", type=FORGES, help="Forge to check the token against.")
def doctor_command(repo: Path, forge: str | None) -> None:
    """Check what a run needs and say what to fix; exit 1 when something is missing."""
    doctor = command("doctor")
    findings = doctor.doctor(repo, os.environ, forge)
    click.echo("\n".join(doctor.line(f) for f in findings))
    sys.exit(0 if all(f.ok for f in findings) else 1)


@cli.command("agent")
@click.option("--repo", type=EXISTING, required=True, help="Checkout to work on.")
@task_option
@event_option
@config_option
@click.option("--out", type=DIR, required=True, help="Where the artifacts go.")
@agent_settings
def agent_command(**kw: Any) -> None:
    """Run only the agent on a local checkout (no forge, no push); artifacts in --out."""
    result = command("agent").agent(os.environ, **kw)
    if result.error is not None:
        raise result.error


@cli.command("prompt")
@event_option
@task_option
@example_option
@repo_option
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the messages as JSON.")
def prompt_command(**kw: Any) -> None:
    """Print the messages a run would send to the model, with their token count."""
    click.echo(command("prompt").prompt(os.environ, **kw))


@cli.command("replay")
@click.argument("trajectory", type=FILE)
@click.option("--repo", type=EXISTING, required=True, help="Checkout of the run's commit.")
@click.option("--backend", type=BACKENDS, help="Default: as recorded.")
@click.option("--image", help="Sandbox image (docker backend).")
def replay_command(**kw: Any) -> None:
    """Re-execute a run's tool calls without a model; exit 0 only for an identical diff."""
    sys.exit(command("agent").replay_and_show(**kw))


def finish(result: Any) -> None:
    """Exit with a pipeline result's code (the run has said its error already)."""
    sys.exit(result.exit_code)


def main(argv: list[str] | None = None) -> None:
    """The console script: run a command; an AstraForgeError is one line and its code."""
    from astraforge import telemetry

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # every `with sandbox:` block cleans up

    signal.signal(signal.SIGTERM, terminate)
    telemetry.init(os.environ)
    args = sys.argv[1:] if argv is None else argv
    try:
        code = cli.main(args=args, prog_name="astraforge", standalone_mode=False)
    except AstraForgeError as exc:
        if common.verbose(args):
            traceback.print_exc()
        click.echo(f"error: {neutralize(exc.one_line())}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:
        telemetry.report_crash(exc)
        raise
    sys.exit(code if isinstance(code, int) else 0)
