"""Run inside a sandbox: the real openai and anthropic SDKs against the gateway, with the
per-run token from the environment; prints what each protocol answered, as JSON."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

import anthropic
import openai

SCHEMA = {"type": "object", "properties": {"command": {"type": "string"}}}
ASK = [{"role": "user", "content": "fix"}]


def chat(client: openai.OpenAI, out: dict[str, Any]) -> None:
    tools: Any = [{"type": "function", "function": {"name": "bash", "parameters": SCHEMA}}]
    reply = client.chat.completions.create(model="engine-picks", messages=ASK, tools=tools)
    call: Any = (reply.choices[0].message.tool_calls or [])[0]
    out["chat"] = [call.function.name, call.function.arguments]
    stream = client.chat.completions.create(model="m", messages=ASK, tools=tools, stream=True)
    out["chat_stream"] = "".join(
        tool.function.arguments or ""
        for chunk in stream
        if chunk.choices
        for tool in chunk.choices[0].delta.tool_calls or []
        if tool.function
    )


def responses(client: openai.OpenAI, out: dict[str, Any]) -> None:
    tools: Any = [{"type": "function", "name": "bash", "parameters": SCHEMA, "strict": False}]
    reply = client.responses.create(model="m", input="fix", tools=tools)
    calls: Any = [item for item in reply.output if item.type == "function_call"]
    out["responses"] = [calls[0].name, calls[0].arguments]
    events: Any = client.responses.create(model="m", input="fix", tools=tools, stream=True)
    done = [e for e in events if e.type == "response.completed"]
    output = done[0].response.output
    out["responses_stream"] = [i.arguments for i in output if i.type == "function_call"]


def messages(client: anthropic.Anthropic, out: dict[str, Any]) -> None:
    tools: Any = [{"name": "bash", "description": "run", "input_schema": SCHEMA}]
    reply = client.messages.create(model="claude-x", max_tokens=500, messages=ASK, tools=tools)  # type: ignore[arg-type]
    out["messages"] = [[b.name, b.input] for b in reply.content if b.type == "tool_use"]
    with client.messages.stream(
        model="claude-x",
        max_tokens=500,
        messages=ASK,
        tools=tools,  # type: ignore[arg-type]
    ) as stream:
        final = stream.get_final_message()
    out["messages_stream"] = [[b.name, b.input] for b in final.content if b.type == "tool_use"]


def refused(out: dict[str, Any]) -> None:
    try:
        openai.OpenAI(api_key="af-run-guess", max_retries=0).models.list()
        out["wrong_token"] = "answered"
    except openai.AuthenticationError as exc:
        out["wrong_token"] = exc.status_code
    bare = urllib.request.Request(  # noqa: S310 - the gateway's address from the environment
        os.environ["OPENAI_BASE_URL"] + "/chat/completions",
        data=b"{}",
        headers={"Content-Type": "application/json"},
    )
    try:
        urllib.request.urlopen(bare)  # noqa: S310
        out["no_token"] = "answered"
    except urllib.error.HTTPError as exc:
        out["no_token"] = exc.code


def main() -> None:
    out: dict[str, Any] = {}
    chat(openai.OpenAI(max_retries=0), out)
    responses(openai.OpenAI(max_retries=0), out)
    messages(anthropic.Anthropic(max_retries=0), out)
    refused(out)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
