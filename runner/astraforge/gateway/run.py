"""The gateway of an agent run: its upstream from the trusted model settings (or the
recorded calls of ``replay:FILE``), its network from the policy, its calls into the
trajectory and its progress lines into the CI log."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from astraforge.agent.loop import Budget
from astraforge.agent.model import OPENAI_URL, REPLAY_PREFIX, api_key
from astraforge.agent.trajectory import Trajectory
from astraforge.config import Config, ModelConfig
from astraforge.gateway.allow import AllowList
from astraforge.gateway.endpoint import Call
from astraforge.gateway.replay import ReplayBook
from astraforge.gateway.service import Gateway, Network
from astraforge.gateway.upstream import ANTHROPIC_URL, Upstream
from astraforge.policy.model import Policy
from astraforge.progress import Progress


def upstream_of(model: ModelConfig, env: Mapping[str, str]) -> Upstream | None:
    """The upstream the trusted model settings name, with its key; None without a model
    (a replayed run, or no key and no local server)."""
    if model.name.startswith(REPLAY_PREFIX):
        return None
    default = ANTHROPIC_URL if model.api == "anthropic" else OPENAI_URL
    base = model.base_url or (None if model.api == "azure" else default)
    if base is None:
        return None
    key = api_key(model, env, base)
    if not key and not model.base_url:
        return None
    responses = model.responses if model.responses is not None else base == OPENAI_URL
    return Upstream(
        api=model.api,
        base_url=base,
        key=key or "unused",
        model=model.name,
        api_version=model.api_version,
        responses=responses or model.api == "azure",
        headers=dict(model.extra_headers),
        timeout=model.timeout_seconds,
    )


def replay_of(model: ModelConfig) -> ReplayBook | None:
    """The recorded gateway calls ``replay:FILE`` names; None without any."""
    if not model.name.startswith(REPLAY_PREFIX):
        return None
    book = ReplayBook(Path(model.name[len(REPLAY_PREFIX) :]))
    return book if book else None


def start_gateway(
    model: ModelConfig,
    network: Network,
    allow: AllowList,
    env: Mapping[str, str],
    budget: Budget,
    log: Callable[[str], None],
    on_call: Callable[[Call], None] | None = None,
) -> Gateway | None:
    """Start a gateway for ``model`` (its upstream, or the recorded calls of
    ``replay:FILE``) and ``network``; None when it would serve nothing: no model to reach
    and no allow list."""
    upstream = upstream_of(model, env)
    replay = replay_of(model)
    if upstream is None and replay is None and network != "allowlist":
        return None
    gateway = Gateway(
        upstream, budget, network=network, allow=allow, log=log, on_call=on_call, replay=replay
    )
    gateway.start()
    return gateway


def open_gateway(
    config: Config,
    rules: Policy,
    env: Mapping[str, str],
    budget: Budget,
    trajectory: Trajectory,
    progress: Progress,
) -> Gateway | None:
    """Start the run's gateway (:func:`start_gateway`, with the policy's network); every
    call it serves goes into the trajectory."""

    def on_call(call: Call) -> None:
        trajectory.write("gateway", **call.to_json())
        progress.say(
            f"gateway: {call.protocol} call {call.status}, "
            f"{call.prompt_tokens}+{call.completion_tokens} tokens in {call.seconds:.1f}s"
        )

    allow = AllowList.of(rules.sandbox.allow, config.sandbox.allow_private)
    return start_gateway(
        config.model, rules.sandbox.network, allow, env, budget, progress.say, on_call
    )
