"""Token usage as each wire protocol reports it, in a JSON reply or an SSE stream, and
what a call asks for: its prompt's size and its reply cap."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from astraforge import tokens

CHAT, RESPONSES, MESSAGES, GEMINI = "chat", "responses", "messages", "gemini"
DEFAULT_REPLY_CAP = 8192


@dataclass(frozen=True)
class Counted:
    """A call's tokens, and whether they were estimated."""

    prompt: int
    completion: int
    estimated: bool


def events(stream: bytes) -> list[dict[str, Any]]:
    """The JSON objects of an SSE stream's ``data:`` lines."""
    found = []
    for line in stream.decode("utf-8", "replace").splitlines():
        if not line.startswith("data:"):
            continue
        text = line[5:].strip()
        if not text or text == "[DONE]":
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def reported(protocol: str, objects: list[dict[str, Any]]) -> tuple[int, int] | None:
    """(prompt, completion) tokens from the reply's objects, or None when none says."""
    prompt = completion = 0
    seen = False
    for obj in objects:
        if protocol == CHAT and isinstance(obj.get("usage"), dict):
            usage = obj["usage"]
            prompt, completion, seen = (
                _int(usage.get("prompt_tokens")),
                _int(usage.get("completion_tokens")),
                True,
            )
        elif protocol == RESPONSES:
            usage = obj.get("usage") or (obj.get("response") or {}).get("usage")
            if isinstance(usage, dict):
                prompt, completion = (
                    _int(usage.get("input_tokens")),
                    _int(usage.get("output_tokens")),
                )
                seen = True
        elif protocol == MESSAGES:
            usage = obj.get("usage") or (obj.get("message") or {}).get("usage")
            if isinstance(usage, dict):
                given = sum(
                    _int(usage.get(k))
                    for k in (
                        "input_tokens",
                        "cache_creation_input_tokens",
                        "cache_read_input_tokens",
                    )
                )
                prompt = max(prompt, given)
                completion = max(completion, _int(usage.get("output_tokens")))
                seen = seen or bool(given or usage.get("output_tokens"))
        elif protocol == GEMINI and isinstance(obj.get("usageMetadata"), dict):
            usage = obj["usageMetadata"]
            prompt = _int(usage.get("promptTokenCount"))
            completion = _int(usage.get("candidatesTokenCount")) + _int(
                usage.get("thoughtsTokenCount")
            )
            seen = True
    return (prompt, completion) if seen else None


def count(protocol: str, request: dict[str, Any], objects: list[dict[str, Any]]) -> Counted:
    """The call's tokens: as reported, or estimated from the texts when nothing was."""
    found = reported(protocol, objects)
    if found is not None:
        return Counted(found[0], found[1], False)
    return Counted(prompt_size(request), tokens.count(json.dumps(objects)), True)


def prompt_size(request: dict[str, Any]) -> int:
    """The estimated tokens of everything a call sends."""
    return tokens.count(json.dumps(request, ensure_ascii=False))


CAP_FIELDS = {
    CHAT: ("max_completion_tokens", "max_tokens"),
    RESPONSES: ("max_output_tokens",),
    MESSAGES: ("max_tokens",),
}


def reply_cap(protocol: str, request: dict[str, Any]) -> int:
    """The reply cap a call asks for (a default when it names none)."""
    if protocol == GEMINI:
        value = (request.get("generationConfig") or {}).get("maxOutputTokens")
        return value if isinstance(value, int) and value > 0 else DEFAULT_REPLY_CAP
    for name in CAP_FIELDS[protocol]:
        value = request.get(name)
        if isinstance(value, int) and value > 0:
            return value
    return DEFAULT_REPLY_CAP


def clamp(protocol: str, request: dict[str, Any], cap: int) -> None:
    """Lower the call's reply cap to what the budget admits."""
    if protocol == GEMINI:
        config = request.setdefault("generationConfig", {})
        config["maxOutputTokens"] = min(cap, reply_cap(protocol, request))
        return
    names = [n for n in CAP_FIELDS[protocol] if n in request]
    if not names and protocol != CHAT:  # older chat servers know only one of the two
        names = [CAP_FIELDS[protocol][0]]
    for name in names:
        request[name] = min(cap, reply_cap(protocol, request))
