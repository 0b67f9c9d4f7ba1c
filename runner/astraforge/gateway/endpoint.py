"""The model endpoint: OpenAI chat completions and Responses, Anthropic Messages and the
Gemini API, for engines inside the sandbox holding only the run's token.

Every call is authenticated by the per-run token, admitted by the run's budget (with its
reply cap lowered to what is left), passed through or translated to the upstream with the
real key, metered from the upstream's usage (estimated when a stream omits it) and
recorded. A refused call gets an error in the engine's own protocol, so the engine shows it.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from astraforge.gateway import translate, usage
from astraforge.gateway.meter import Meter
from astraforge.gateway.replay import ReplayBook
from astraforge.gateway.upstream import Upstream
from astraforge.gateway.usage import CHAT, GEMINI, MESSAGES, RESPONSES

RECORD_LIMIT = 4 * 1024 * 1024  # bytes of a reply body kept (enough to replay it)
BODY_LIMIT = 32 * 1024 * 1024


@dataclass
class Call:
    """One model call through the gateway, as the trajectory records it."""

    protocol: str
    model: str
    status: int
    stream: bool
    prompt_tokens: int
    completion_tokens: int
    estimated: bool
    cost_usd: float
    seconds: float
    translated: bool
    request: dict[str, Any]
    reply: Any
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def error_body(protocol: str, status: int, message: str, kind: str) -> dict[str, Any]:
    """An error in the shape the engine's SDK reads."""
    if protocol == MESSAGES:
        return {"type": "error", "error": {"type": kind, "message": message}}
    if protocol == GEMINI:
        names = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 400: "INVALID_ARGUMENT"}
        return {
            "error": {
                "code": status,
                "message": message,
                "status": names.get(status, "UNAVAILABLE"),
            }
        }
    return {"error": {"message": message, "type": kind, "code": kind}}


def _token_of(request: web.Request) -> str:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    for name in ("x-api-key", "x-goog-api-key", "api-key"):
        if name in request.headers:
            return request.headers[name].strip()
    return request.query.get("key", "")


class ModelEndpoint:
    """The aiohttp application serving the model protocols."""

    def __init__(
        self,
        upstream: Upstream | None,
        token: str,
        meter: Meter,
        on_call: Callable[[Call], None],
        log: Callable[[str], None],
        replay: ReplayBook | None = None,
    ) -> None:
        self.upstream = upstream
        self.replay = replay
        self.token = token
        self.meter = meter
        self.on_call = on_call
        self.log = log
        self._session: ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=BODY_LIMIT)
        app.router.add_post("/v1/chat/completions", self._handler(CHAT))
        app.router.add_post("/v1/responses", self._handler(RESPONSES))
        app.router.add_post("/v1/messages", self._handler(MESSAGES))
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        app.router.add_post("/v1beta/models/{target}", self._handler(GEMINI))
        app.router.add_get("/v1/models", self._models)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    def _authorized(self, request: web.Request) -> bool:
        return hmac.compare_digest(_token_of(request).encode(), self.token.encode())

    def _refuse(self, protocol: str, status: int, message: str, kind: str) -> web.Response:
        return web.json_response(error_body(protocol, status, message, kind), status=status)

    async def _models(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._refuse(CHAT, 401, "AstraForge gateway: wrong or missing token", "auth")
        name = self.upstream.model if self.upstream else "none"
        return web.json_response({"object": "list", "data": [{"id": name, "object": "model"}]})

    async def _count_tokens(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._refuse(
                MESSAGES, 401, "AstraForge gateway: wrong or missing token", "authentication_error"
            )
        body = await request.json()
        return web.json_response({"input_tokens": usage.prompt_size(body)})

    def _handler(self, protocol: str) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._serve(protocol, request)

        return handle

    async def _serve(self, protocol: str, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            self.log(f"gateway: refused a {protocol} call with a wrong or missing token")
            return self._refuse(
                protocol, 401, "AstraForge gateway: wrong or missing token", "authentication_error"
            )
        try:
            body = await request.json()
            assert isinstance(body, dict)
        except (ValueError, AssertionError):
            return self._refuse(
                protocol, 400, "the request body is not a JSON object", "invalid_request_error"
            )
        if self.upstream is None and self.replay is None:
            return self._refuse(
                protocol, 403, "AstraForge gateway: no model is configured", "permission_error"
            )
        target = request.match_info.get("target", "")
        if protocol == GEMINI and not target.endswith(
            (":generateContent", ":streamGenerateContent")
        ):
            return self._refuse(protocol, 404, f"unknown method {target}", "not_found")
        stream = target.endswith(":streamGenerateContent") or bool(body.get("stream"))
        admitted = self.meter.admit(usage.prompt_size(body), usage.reply_cap(protocol, body))
        if isinstance(admitted, str):
            message = f"AstraForge gateway: the run's {admitted} budget is spent (budget_exhausted)"
            self.log(f"gateway: refused a {protocol} call: the {admitted} budget is spent")
            return self._refuse(protocol, 403, message, "budget_exhausted")
        usage.clamp(protocol, body, admitted)
        started = time.monotonic()
        if self.replay is not None:
            return self._replayed(protocol, body, stream, started)
        assert self.upstream is not None
        native = self.upstream.native(protocol)
        try:
            if native:
                return await self._pass(protocol, request, body, stream, started)
            reply = await translate.call(protocol, self.upstream, body, stream)
        except Exception as exc:  # LiteLLM's errors carry the upstream's status
            status = getattr(exc, "status_code", None)
            message = (
                f"the upstream is unreachable: {type(exc).__name__}"
                if isinstance(exc, ClientError)
                else self._clean(str(exc))
            )
            code = status if isinstance(status, int) else 502
            return self._failed(protocol, body, stream, native, started, code, message)
        if isinstance(reply, dict):
            self._record(protocol, body, stream, True, started, 200, [reply], reply)
            return web.json_response(reply)
        return await self._stream(protocol, request, body, started, reply, 200, "text/event-stream")

    def _clean(self, text: str) -> str:
        assert self.upstream is not None
        return text.replace(self.upstream.key, "[key]")[:500]

    def _failed(
        self,
        protocol: str,
        body: dict[str, Any],
        stream: bool,
        native: bool,
        started: float,
        status: int,
        message: str,
    ) -> web.Response:
        self.log(f"gateway: {protocol} call failed: {message[:200]}")
        self._record(protocol, body, stream, not native, started, status, [], None, error=message)
        return self._refuse(protocol, status, f"AstraForge gateway: {message}", "upstream_error")

    async def _pass(
        self,
        protocol: str,
        request: web.Request,
        body: dict[str, Any],
        stream: bool,
        started: float,
    ) -> web.StreamResponse:
        upstream = self.upstream
        assert upstream is not None
        body["model"] = upstream.model
        if protocol == CHAT and stream:
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        if self._session is None:
            self._session = ClientSession(
                timeout=ClientTimeout(total=None, sock_read=upstream.timeout)
            )
        headers = upstream.auth_headers({k.lower(): v for k, v in request.headers.items()})
        response = await self._session.post(
            upstream.url(protocol), json=body, headers=headers, allow_redirects=False
        )
        async with response:
            kind = response.headers.get("Content-Type", "application/json")
            if response.status in (401, 403) and "budget" not in kind:
                await response.read()
                return self._failed(
                    protocol,
                    body,
                    stream,
                    True,
                    started,
                    response.status,
                    f"the upstream refused the gateway's key (HTTP {response.status})",
                )
            if "text/event-stream" in kind:
                return await self._stream(
                    protocol,
                    request,
                    body,
                    started,
                    response.content.iter_any(),
                    response.status,
                    kind,
                )
            data = await response.read()
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = data.decode("utf-8", "replace")[:RECORD_LIMIT]
        objects = [parsed] if isinstance(parsed, dict) else []
        self._record(
            protocol,
            body,
            stream,
            False,
            started,
            response.status,
            objects,
            parsed,
        )
        return web.Response(
            body=self._clean_bytes(data), status=response.status, content_type=kind.split(";")[0]
        )

    def _clean_bytes(self, data: bytes) -> bytes:
        assert self.upstream is not None
        return data.replace(self.upstream.key.encode(), b"[key]")

    async def _stream(
        self,
        protocol: str,
        request: web.Request,
        body: dict[str, Any],
        started: float,
        chunks: AsyncIterator[bytes],
        status: int,
        kind: str,
    ) -> web.StreamResponse:
        out = web.StreamResponse(
            status=status, headers={"Content-Type": kind, "Cache-Control": "no-cache"}
        )
        await out.prepare(request)
        seen = bytearray()
        async for chunk in chunks:
            seen += chunk
            await out.write(self._clean_bytes(chunk))
        assert self.upstream is not None
        translated = not self.upstream.native(protocol)
        text = bytes(seen[:RECORD_LIMIT]).decode("utf-8", "replace")
        # Recorded (and metered) before the stream ends: a caller that has read the whole
        # reply finds its call counted.
        self._record(
            protocol, body, True, translated, started, status, usage.events(bytes(seen)), text
        )
        await out.write_eof()
        return out

    def _replayed(
        self, protocol: str, body: dict[str, Any], stream: bool, started: float
    ) -> web.Response:
        """The next answer the replayed run got for a call in this protocol."""
        assert self.replay is not None
        found = self.replay.next(protocol, stream)
        if isinstance(found, str):
            self.log(f"gateway: replay: {found}")
            return self._refuse(protocol, 409, f"AstraForge gateway: {found}", "replay_mismatch")
        if stream:
            text = str(found.reply)
            self._record(
                protocol, body, True, False, started, 200, usage.events(text.encode()), text
            )
            return web.Response(text=text, content_type="text/event-stream")
        objects = [found.reply] if isinstance(found.reply, dict) else []
        self._record(protocol, body, False, False, started, 200, objects, found.reply)
        return web.json_response(found.reply)

    def _record(
        self,
        protocol: str,
        body: dict[str, Any],
        stream: bool,
        translated: bool,
        started: float,
        status: int,
        objects: list[dict[str, Any]],
        reply: Any,
        error: str | None = None,
    ) -> None:
        counted = (
            usage.count(protocol, body, objects) if status < 400 else usage.Counted(0, 0, False)
        )
        cost = self.meter.record(counted)
        self.on_call(
            Call(
                protocol=protocol,
                model=self.upstream.model if self.upstream else "replay",
                status=status,
                stream=stream,
                prompt_tokens=counted.prompt,
                completion_tokens=counted.completion,
                estimated=counted.estimated,
                cost_usd=round(cost, 6),
                seconds=round(time.monotonic() - started, 3),
                translated=translated,
                request=body,
                reply=reply,
                error=error,
            )
        )
