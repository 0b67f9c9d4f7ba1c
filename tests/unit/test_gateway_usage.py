"""Usage as each protocol reports it, in JSON replies and SSE streams (documented shapes)."""

from __future__ import annotations

import json
from typing import Any

from astraforge.gateway import usage
from astraforge.gateway.usage import CHAT, GEMINI, MESSAGES, RESPONSES


def sse(*objects: dict[str, Any], named: bool = False) -> bytes:
    out = b""
    for obj in objects:
        head = f"event: {obj.get('type')}\n" if named else ""
        out += f"{head}data: {json.dumps(obj)}\n\n".encode()
    return out + b"data: [DONE]\n\n"


def test_chat_usage_from_the_final_stream_chunk() -> None:
    stream = sse(
        {"choices": [{"index": 0, "delta": {"content": "hi"}}]},
        {"choices": [], "usage": {"prompt_tokens": 120, "completion_tokens": 7}},
    )
    assert usage.reported(CHAT, usage.events(stream)) == (120, 7)


def test_responses_usage_from_response_completed() -> None:
    stream = sse(
        {"type": "response.created", "response": {"usage": None}},
        {
            "type": "response.completed",
            "response": {"usage": {"input_tokens": 50, "output_tokens": 9}},
        },
        named=True,
    )
    assert usage.reported(RESPONSES, usage.events(stream)) == (50, 9)
    assert usage.reported(RESPONSES, [{"usage": {"input_tokens": 3, "output_tokens": 4}}]) == (3, 4)


def test_messages_usage_adds_cache_tokens_and_takes_output_from_message_delta() -> None:
    stream = sse(
        {
            "type": "message_start",
            "message": {
                "usage": {"input_tokens": 10, "cache_read_input_tokens": 90, "output_tokens": 1}
            },
        },
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "x"}},
        {"type": "message_delta", "usage": {"output_tokens": 33}},
        named=True,
    )
    assert usage.reported(MESSAGES, usage.events(stream)) == (100, 33)


def test_gemini_usage_metadata_counts_thoughts_as_output() -> None:
    objects = [
        {
            "usageMetadata": {
                "promptTokenCount": 40,
                "candidatesTokenCount": 5,
                "thoughtsTokenCount": 10,
            }
        }
    ]
    assert usage.reported(GEMINI, objects) == (40, 15)


def test_a_stream_without_usage_is_estimated_from_its_texts() -> None:
    request = {"messages": [{"role": "user", "content": "word " * 400}]}
    counted = usage.count(
        CHAT, request, usage.events(sse({"choices": [{"delta": {"content": "ok " * 50}}]}))
    )
    assert counted.estimated
    assert counted.prompt > 300
    assert counted.completion > 10


def test_the_reply_cap_is_lowered_to_what_the_budget_admits() -> None:
    body: dict[str, Any] = {"max_tokens": 4096}
    usage.clamp(MESSAGES, body, 1000)
    assert body["max_tokens"] == 1000
    chat: dict[str, Any] = {}
    usage.clamp(CHAT, chat, 10)
    assert chat == {}  # older servers know only one of the two names: none is added
    gemini: dict[str, Any] = {"generationConfig": {"maxOutputTokens": 50}}
    usage.clamp(GEMINI, gemini, 500)
    assert gemini["generationConfig"]["maxOutputTokens"] == 50
    responses: dict[str, Any] = {}
    usage.clamp(RESPONSES, responses, 700)
    assert responses == {"max_output_tokens": 700}
