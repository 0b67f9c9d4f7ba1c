"""`astraforge relay serve|forward`: Sentry and GlitchTip alerts to repository_dispatch or
GitLab pipeline triggers."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from astraforge.commands import common
from astraforge.commands.common import FILE
from astraforge.errors import UsageError
from astraforge.relay import config as relay_config


def serve(config_file: Path, host: str, port: int, workers: int, env: Mapping[str, str]) -> None:
    """Run the relay's HTTP service until SIGTERM."""
    from astraforge.relay.server import serve as serve_http

    serve_http(relay_config.load(config_file), host, port, env, workers)


def forward(
    payload: Path, config_file: Path, kind: str, resource: str | None, env: Mapping[str, str]
) -> tuple[int, dict[str, Any]]:
    """Forward one saved webhook body with the same dedupe and limits; (status, decision)."""
    from astraforge.relay.core import Relay
    from astraforge.relay.server import json_log
    from astraforge.relay.state import open_store

    try:
        body = payload.read_bytes()
    except OSError as exc:
        raise UsageError(f"{payload}: cannot read it ({exc.strerror})") from None
    cfg = relay_config.load(config_file)
    store = open_store(cfg.state.backend, cfg.state.path, cfg.state.redis_url)
    try:
        relay = Relay(cfg, store, env, json_log)
        headers = {"Sentry-Hook-Resource": resource} if resource else {}
        verdict = relay.receive(f"/hooks/{kind}", headers, body, verify=False)
        relay.drain()
    finally:
        store.close()
    return verdict.status, verdict.body()


# -- the command line ------------------------------------------------------------------


@click.group("relay")
def group() -> None:
    """Forward Sentry and GlitchTip alerts to repository_dispatch or GitLab triggers."""


@group.command("serve")
@click.option("--config", "config_file", type=FILE, required=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8787, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=min(4, os.cpu_count() or 1))
def relay_serve(config_file: Path, host: str, port: int, workers: int) -> None:
    """Run the relay's HTTP service (webhooks, /healthz, /metrics)."""
    serve(config_file, host, port, workers, os.environ)


@group.command("forward")
@click.argument("payload", type=FILE)
@click.option("--config", "config_file", type=FILE, required=True)
@click.option(
    "--kind", type=click.Choice(["sentry", "sentry-legacy", "glitchtip"]), default="sentry"
)
@click.option("--resource", help="Sentry-Hook-Resource (event_alert, issue, ...).")
def relay_forward(payload: Path, config_file: Path, kind: str, resource: str | None) -> None:
    """Forward one saved webhook body with the same dedupe and limits; print the decision."""
    status, body = forward(payload, config_file, kind, resource, os.environ)
    common.print_json(body)
    sys.exit(4 if status >= 400 else 0)
