"""Protocol translation through LiteLLM's adapters, for calls the upstream cannot take as
they are (an Anthropic Messages engine in front of an OpenAI-compatible API, say).

LiteLLM is large (hundreds of MB with its dependencies) and slow to import, so it is an
optional extra (``astraforge[translate]``), pinned, and imported only when a call needs it.
It is told to use its bundled price map instead of fetching one, and to send nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from typing import Any

from astraforge.errors import GatewayError
from astraforge.gateway.upstream import Upstream
from astraforge.gateway.usage import CHAT, GEMINI, MESSAGES, RESPONSES

Reply = dict[str, Any] | AsyncIterator[bytes]


def _litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
    try:
        import litellm
    except ImportError:
        raise GatewayError(
            "this engine's protocol differs from the upstream's and LiteLLM is not installed",
            'pip install "astraforge[translate]", or point the model at an upstream that '
            "speaks the engine's protocol",
        ) from None
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    litellm.drop_params = True
    return litellm


def _common(upstream: Upstream) -> dict[str, Any]:
    common: dict[str, Any] = {
        "model": upstream.litellm_model(),
        "api_key": upstream.key,
        "api_base": upstream.base_url,
        "timeout": upstream.timeout,
    }
    if upstream.api == "azure":
        common["api_version"] = upstream.api_version
    if upstream.headers:
        common["extra_headers"] = dict(upstream.headers)
    return common


def _dump(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    dumped = value.model_dump(mode="json", exclude_none=True)
    assert isinstance(dumped, dict)
    return dumped


async def _sse_objects(stream: Any, named: bool) -> AsyncIterator[bytes]:
    """SSE frames of a stream of pydantic events (Responses) or chunks (chat)."""
    async for event in stream:
        data = _dump(event)
        head = f"event: {data.get('type')}\n" if named and data.get("type") else ""
        yield f"{head}data: {json.dumps(data)}\n\n".encode()
    if not named:
        yield b"data: [DONE]\n\n"


async def _sse_bytes(stream: Any) -> AsyncIterator[bytes]:
    async for chunk in stream:
        yield chunk if isinstance(chunk, bytes) else str(chunk).encode()


async def call(protocol: str, upstream: Upstream, body: dict[str, Any], stream: bool) -> Reply:
    """Make one call in ``protocol`` to an upstream that speaks another."""
    litellm = _litellm()
    common = _common(upstream)
    args = {k: v for k, v in body.items() if k not in ("model", "stream")}
    if protocol == MESSAGES:
        reply = await litellm.anthropic.messages.acreate(**common, **args, stream=stream)
        return _sse_bytes(reply) if stream else _dump(reply)
    if protocol == RESPONSES:
        args.pop("stream_options", None)
        reply = await litellm.aresponses(**common, **args, stream=stream)
        return _sse_objects(reply, named=True) if stream else _dump(reply)
    if protocol == CHAT:
        if stream:
            args["stream_options"] = {"include_usage": True}
        reply = await litellm.acompletion(**common, **args, stream=stream)
        return _sse_objects(reply, named=False) if stream else _dump(reply)
    if protocol == GEMINI:
        from litellm import google_genai

        gemini: dict[str, Any] = {"contents": body.get("contents") or []}
        if body.get("tools"):
            gemini["tools"] = body["tools"]
        config = dict(body.get("generationConfig") or {})
        if body.get("systemInstruction"):
            config["system_instruction"] = body["systemInstruction"]
        if body.get("toolConfig"):
            config["tool_config"] = body["toolConfig"]
        if stream:
            reply = await google_genai.agenerate_content_stream(**common, **gemini, config=config)
            return _sse_bytes(reply)
        return _dump(await google_genai.agenerate_content(**common, **gemini, config=config))
    raise GatewayError(f"unknown protocol {protocol}")
