"""The gateway of one run: its servers on a private event loop, and what the sandbox sees.

:class:`Gateway` serves the model endpoint and the egress proxy on unix sockets in a private
directory of the runner; a sandbox reaches them through the forwarder at
``127.100.0.1:48100`` (model) and ``127.100.0.1:48128`` (proxy), on its own loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from astraforge.agent.loop import Budget
from astraforge.errors import GatewayError
from astraforge.gateway.allow import AllowList
from astraforge.gateway.endpoint import Call, ModelEndpoint
from astraforge.gateway.meter import Meter
from astraforge.gateway.proxy import EgressProxy
from astraforge.gateway.replay import ReplayBook
from astraforge.gateway.tunnel import Tunnel
from astraforge.gateway.upstream import Upstream
from astraforge.sandbox.door import Channel

ADDRESS = "127.100.0.1"  # inside the sandbox: its own loopback, never the runner's
MODEL_PORT = 48100
PROXY_PORT = 48128
Network = Literal["none", "setup-only", "allowlist"]
START_TIMEOUT = 30.0


class Gateway:
    """One run's model endpoint and egress proxy."""

    def __init__(
        self,
        upstream: Upstream | None,
        budget: Budget,
        *,
        network: Network = "none",
        allow: AllowList | None = None,
        log: Callable[[str], None] = lambda _line: None,
        on_call: Callable[[Call], None] | None = None,
        replay: ReplayBook | None = None,
    ) -> None:
        self.upstream = upstream
        self.serves_model = upstream is not None or replay is not None
        self.network = network
        self.token = "af-run-" + secrets.token_urlsafe(32)
        self.meter = Meter(budget)
        self.calls: list[Call] = []
        self.log = log
        self._on_call = on_call
        self.proxy = EgressProxy(allow or AllowList([]), log)
        self.endpoint = ModelEndpoint(
            upstream, self.token, self.meter, self._record, log, replay=replay
        )
        self._dir: Path | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tunnels: list[Tunnel] = []
        self._stopping: asyncio.Event | None = None

    # -- what the sandbox sees ----------------------------------------------------------------
    @property
    def model_url(self) -> str:
        return f"http://{ADDRESS}:{MODEL_PORT}"

    def environment(self) -> dict[str, str]:
        """The sandbox's variables: the endpoint's base URLs with the per-run token, and the
        proxy when the network policy lets anything out."""
        env = {
            "ASTRAFORGE_GATEWAY": self.model_url,
            "OPENAI_BASE_URL": f"{self.model_url}/v1",
            "OPENAI_API_KEY": self.token,
            "ANTHROPIC_BASE_URL": self.model_url,
            "ANTHROPIC_API_KEY": self.token,
            "GOOGLE_GEMINI_BASE_URL": self.model_url,
            "GEMINI_API_KEY": self.token,
            "GOOGLE_API_KEY": self.token,
            "NO_PROXY": ADDRESS,
            "no_proxy": ADDRESS,
        }
        if self.network == "allowlist":
            proxy = f"http://{ADDRESS}:{PROXY_PORT}"
            for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
                env[name] = proxy
        return env

    def forwarder_args(self) -> list[str]:
        return [ADDRESS, str(MODEL_PORT), str(PROXY_PORT)]

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Serve on a thread of its own until :meth:`stop`."""
        self._dir = Path(tempfile.mkdtemp(prefix="astraforge-gateway-"))
        ready = threading.Event()
        failed: list[BaseException] = []

        def serve() -> None:
            try:
                asyncio.run(self._serve(ready))
            except BaseException as exc:
                failed.append(exc)
                ready.set()

        self._thread = threading.Thread(target=serve, name="gateway", daemon=True)
        self._thread.start()
        if not ready.wait(START_TIMEOUT) or failed:
            self.stop()
            raise GatewayError(f"the gateway did not start: {failed[0] if failed else 'timeout'}")

    async def _serve(self, ready: threading.Event) -> None:
        from aiohttp import web

        assert self._dir is not None
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        runner = web.AppRunner(self.endpoint.app(), access_log=None, handle_signals=False)
        await runner.setup()
        model, proxy_path = self.sockets
        await web.UnixSite(runner, model).start()
        proxy = await asyncio.start_unix_server(self.proxy.handle, proxy_path, limit=64 * 1024)
        ready.set()
        try:
            await self._stopping.wait()
        finally:
            proxy.close()
            await runner.cleanup()

    @property
    def sockets(self) -> list[str]:
        """The model endpoint's and the proxy's unix sockets on the runner."""
        assert self._dir is not None, "start the gateway first"
        return [str(self._dir / "model.sock"), str(self._dir / "proxy.sock")]

    def attach(self, channel: Channel) -> None:
        """Join a started forwarder's connections to the gateway's servers."""
        tunnel = Tunnel(channel, self.sockets, self.log)
        tunnel.start()
        self._tunnels.append(tunnel)

    def stop(self) -> None:
        for tunnel in self._tunnels:
            tunnel.close()
        self._tunnels.clear()
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> Gateway:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what it saw -----------------------------------------------------------------------------
    def _record(self, call: Call) -> None:
        self.calls.append(call)
        if self._on_call is not None:
            self._on_call(call)

    @property
    def exhausted(self) -> str | None:
        """The budget that refused a call, if one did."""
        return self.meter.exhausted

    def report(self) -> dict[str, Any]:
        """What report.json says of the gateway: calls, tokens, and every connection."""
        return {
            "network": self.network,
            "calls": len(self.calls),
            "prompt_tokens": sum(c.prompt_tokens for c in self.calls),
            "completion_tokens": sum(c.completion_tokens for c in self.calls),
            "refused_budget": self.exhausted,
            "connections": [c.to_json() for c in self.proxy.connections],
        }
