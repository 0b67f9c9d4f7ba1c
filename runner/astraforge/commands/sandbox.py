"""`astraforge sandbox run|gc`: a command in a fresh sandbox, and cleaning up after runners."""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from astraforge.commands.common import BACKENDS, EXISTING, say
from astraforge.errors import UsageError
from astraforge.sandbox import BwrapConfig, DockerConfig, ExecResult, SandboxSpec, open_sandbox

if TYPE_CHECKING:
    from astraforge.gateway.service import Gateway


def spec(backend: str | None, image: str | None) -> SandboxSpec | None:
    """The sandbox --backend/--image name; None when neither is given."""
    if backend == "bwrap":
        return BwrapConfig()
    if backend == "docker" or image:
        return DockerConfig(**({"image": image} if image else {}))
    return None


def run(
    backend: str,
    image: str | None,
    workspace: Path,
    timeout: float,
    argv: tuple[str, ...],
    network: str = "none",
    allow: tuple[str, ...] = (),
    allow_private: tuple[str, ...] = (),
) -> ExecResult:
    """Run ``argv`` in a fresh sandbox holding the files git tracks in ``workspace``; with
    the gateway when the runner has a model configured or the network is an allow list."""
    chosen = spec(backend, image) or DockerConfig()
    line = " ".join(shlex.quote(part) for part in argv)
    with contextlib.ExitStack() as stack:
        box = open_sandbox(chosen, workspace)
        box.door = gateway(network, list(allow), list(allow_private), stack)
        with box:
            return box.run(line, timeout=timeout)
    raise AssertionError("unreachable")


def gateway(
    network: str, allow: list[str], private: list[str], stack: contextlib.ExitStack
) -> Gateway | None:
    """The gateway of a one-command sandbox, from the runner's model settings (for
    example OPENAI_BASE_URL and OPENAI_API_KEY); None when there is nothing to serve."""
    from astraforge.agent.loop import Budget
    from astraforge.config import load
    from astraforge.gateway.allow import AllowList
    from astraforge.gateway.run import start_gateway
    from astraforge.gateway.service import Network

    if network != "allowlist" and allow:
        raise UsageError("--allow needs --network allowlist", "add --network allowlist")
    config = load(env=os.environ)
    budget = Budget(config.budgets, config.model.price())
    hosts = AllowList.of([*config.sandbox.allow, *allow], [*config.sandbox.allow_private, *private])
    chosen: Network = "allowlist" if network == "allowlist" else "none"
    served = start_gateway(config.model, chosen, hosts, os.environ, budget, say)
    if served is None:
        return None
    stack.callback(lambda: _summary(served))
    stack.callback(served.stop)
    return served


def _summary(served: Gateway) -> None:
    report = served.report()
    allowed = sum(c["decision"] == "allowed" for c in report["connections"])
    denied = len(report["connections"]) - allowed
    say(
        f"astraforge: gateway served {report['calls']} model call(s), "
        f"{report['prompt_tokens'] + report['completion_tokens']} tokens; "
        f"{allowed} connection(s) allowed, {denied} denied"
    )


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
@click.option(
    "--network", type=click.Choice(["none", "allowlist"]), default="none", show_default=True
)
@click.option("--allow", multiple=True, help="HOST, HOST:PORT or *.DOMAIN (repeatable).")
@click.option("--allow-private", multiple=True, help="A private address an allowed name may use.")
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
