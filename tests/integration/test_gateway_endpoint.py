"""The model endpoint on its unix socket, without a sandbox: the Gemini API translated to
a chat upstream, token checks, the key kept out of error replies, and the call records."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.servers.llm import ScriptedLLM, Step, call, reply

from astraforge.agent.loop import Budget
from astraforge.config import Budgets
from astraforge.gateway.service import Gateway
from astraforge.gateway.upstream import Upstream

CANARY = "sk-canary-0b8e61f2c4d94a7f"


class _Unix(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("gateway", timeout=60)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.socket_path)


def post(
    gateway: Gateway, path: str, body: dict[str, Any], headers: dict[str, str]
) -> tuple[int, bytes]:
    conn = _Unix(gateway.sockets[0])
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json", **headers})
    response = conn.getresponse()
    return response.status, response.read()


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM([], then=reply(call("read_file", path="pkg/calc.py"))) as server:
        yield server


@pytest.fixture
def gateway(llm: ScriptedLLM) -> Iterator[Gateway]:
    with Gateway(Upstream("openai", llm.url, CANARY, "m"), Budget(Budgets(), None)) as running:
        yield running


GEMINI = {
    "contents": [{"role": "user", "parts": [{"text": "fix the bug"}]}],
    "tools": [
        {
            "functionDeclarations": [
                {
                    "name": "read_file",
                    "description": "read",
                    "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
                }
            ]
        }
    ],
}


def test_gemini_generate_content_is_translated_with_tools(
    gateway: Gateway, llm: ScriptedLLM
) -> None:
    status, data = post(
        gateway,
        "/v1beta/models/gemini-x:generateContent",
        GEMINI,
        {"x-goog-api-key": gateway.token},
    )
    assert status == 200, data
    parts = json.loads(data)["candidates"][0]["content"]["parts"]
    assert [p["functionCall"] for p in parts if "functionCall" in p] == [
        {"name": "read_file", "args": {"path": "pkg/calc.py"}}
    ]
    sent = llm.requests[-1].body
    assert sent["tools"][0]["function"]["name"] == "read_file"
    assert llm.requests[-1].headers["authorization"] == f"Bearer {CANARY}"


def test_gemini_stream_is_server_sent_events(gateway: Gateway) -> None:
    status, data = post(
        gateway,
        "/v1beta/models/gemini-x:streamGenerateContent?alt=sse",
        GEMINI,
        {"x-goog-api-key": gateway.token},
    )
    assert status == 200
    events = [
        json.loads(line[5:]) for line in data.decode().splitlines() if line.startswith("data:")
    ]
    calls = [
        p["functionCall"]
        for e in events
        for c in e.get("candidates", [])
        for p in c["content"]["parts"]
        if "functionCall" in p
    ]
    assert calls
    assert calls[0]["name"] == "read_file"
    assert gateway.calls[-1].protocol == "gemini"
    assert gateway.calls[-1].translated


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer af-run-wrong"}, {"x-api-key": CANARY}]
)
def test_calls_without_the_run_token_are_refused(
    gateway: Gateway, llm: ScriptedLLM, headers: dict[str, str]
) -> None:
    status, data = post(
        gateway, "/v1/messages", {"model": "x", "max_tokens": 10, "messages": []}, headers
    )
    assert status == 401
    assert json.loads(data)["error"]["type"] == "authentication_error"
    assert llm.requests == []
    assert gateway.calls == []


def test_an_upstream_refusing_the_key_does_not_echo_it_to_the_sandbox() -> None:
    echo = Step(
        status=401,
        raw_body=json.dumps({"error": {"message": f"Incorrect API key provided: {CANARY}"}}),
    )
    with (
        ScriptedLLM([echo]) as llm,
        Gateway(Upstream("openai", llm.url, CANARY, "m"), Budget(Budgets(), None)) as gateway,
    ):
        status, data = post(
            gateway,
            "/v1/chat/completions",
            {"model": "m", "messages": [{"role": "user", "content": "x"}]},
            {"Authorization": f"Bearer {gateway.token}"},
        )
    assert status == 401
    assert CANARY not in data.decode()
    assert b"refused the gateway's key" in data
    assert CANARY not in json.dumps([c.to_json() for c in gateway.calls])


def test_each_call_is_recorded_with_usage_and_bodies(gateway: Gateway) -> None:
    body = {
        "model": "engine-model",
        "messages": [{"role": "user", "content": "fix"}],
        "max_tokens": 100,
    }
    status, _ = post(
        gateway, "/v1/chat/completions", body, {"Authorization": f"Bearer {gateway.token}"}
    )
    assert status == 200
    (record,) = gateway.calls
    assert record.protocol == "chat"
    assert record.model == "m"
    assert not record.translated
    assert record.prompt_tokens > 0
    assert record.completion_tokens > 0
    assert not record.estimated
    assert record.request["messages"][0]["content"] == "fix"
    assert record.reply["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "read_file"
    assert gateway.meter.budget.total_tokens == record.prompt_tokens + record.completion_tokens


ANTHROPIC_KEY = "sk-ant-canary-5e0b2d7c"


@pytest.fixture
def claude() -> Iterator[Gateway]:
    from tests.servers.anthropic import ScriptedAnthropic, Turn

    turn = Turn(text="looking", tool=("read_file", {"path": "pkg/calc.py"}), usage=(321, 45))
    with ScriptedAnthropic(ANTHROPIC_KEY, turn) as server:
        upstream = Upstream("anthropic", server.url, ANTHROPIC_KEY, "claude-upstream")
        with Gateway(upstream, Budget(Budgets(), None)) as running:
            running.test_server = server  # type: ignore[attr-defined]
            yield running


MESSAGES = {
    "model": "claude-engine",
    "max_tokens": 300,
    "messages": [{"role": "user", "content": "fix"}],
}


@pytest.mark.parametrize("stream", [False, True])
def test_messages_pass_through_to_a_native_anthropic_upstream(
    claude: Gateway, stream: bool
) -> None:
    status, data = post(
        claude,
        "/v1/messages",
        {**MESSAGES, "stream": stream},
        {"x-api-key": claude.token, "anthropic-version": "2023-06-01"},
    )
    assert status == 200
    assert b"read_file" in data
    seen = claude.test_server.requests[-1]  # type: ignore[attr-defined]
    assert seen.headers["x-api-key"] == ANTHROPIC_KEY
    assert seen.body["model"] == "claude-upstream"
    assert seen.headers["anthropic-version"] == "2023-06-01"
    (record,) = claude.calls
    assert not record.translated
    assert (record.prompt_tokens, record.completion_tokens) == (321, 45)


@pytest.mark.parametrize("stream", [False, True])
def test_chat_completions_are_translated_to_an_anthropic_upstream(
    claude: Gateway, stream: bool
) -> None:
    body = {
        "model": "gpt-engine",
        "messages": [{"role": "user", "content": "fix"}],
        "stream": stream,
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "read_file",
                    "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
                },
            }
        ],
    }
    status, data = post(
        claude, "/v1/chat/completions", body, {"Authorization": f"Bearer {claude.token}"}
    )
    assert status == 200, data[:500]
    text = data.decode()
    assert "read_file" in text
    assert "pkg/calc.py" in text.replace('\\"', '"')
    seen = claude.test_server.requests[-1]  # type: ignore[attr-defined]
    assert seen.path == "/v1/messages"
    assert seen.headers["x-api-key"] == ANTHROPIC_KEY
    (record,) = claude.calls
    assert record.translated
    assert record.prompt_tokens == 321


def test_recorded_calls_replay_offline_stream_and_not(tmp_path: Path) -> None:
    from astraforge.agent.trajectory import Trajectory
    from astraforge.gateway.replay import ReplayBook
    from astraforge.redact import Redactor

    trajectory = Trajectory(tmp_path / "trajectory.jsonl", Redactor([CANARY]))
    trajectory.write("start", run_id="r")
    chat = {"model": "m", "messages": [{"role": "user", "content": "fix"}]}
    with ScriptedLLM([], then=reply(call("read_file", path="a.py"))) as llm:
        upstream = Upstream("openai", llm.url, CANARY, "m")
        record = Budget(Budgets(), None)
        with Gateway(
            upstream, record, on_call=lambda c: trajectory.write("gateway", **c.to_json())
        ) as gateway:
            auth = {"Authorization": f"Bearer {gateway.token}"}
            first = post(gateway, "/v1/chat/completions", chat, auth)
            streamed = post(gateway, "/v1/chat/completions", {**chat, "stream": True}, auth)
    trajectory.close()
    book = ReplayBook(tmp_path / "trajectory.jsonl")
    with Gateway(None, Budget(Budgets(), None), replay=book) as replaying:  # no upstream at all
        auth = {"Authorization": f"Bearer {replaying.token}"}
        again = post(replaying, "/v1/chat/completions", chat, auth)
        mismatch = post(replaying, "/v1/responses", {"model": "m", "input": "x"}, auth)
        stream_again = post(replaying, "/v1/chat/completions", {**chat, "stream": True}, auth)
        spent = replaying.meter.budget.total_tokens
    assert json.loads(again[1]) == json.loads(first[1])
    assert stream_again == streamed
    assert mismatch[0] == 409
    assert b"no more responses calls" in mismatch[1]
    assert spent == record.total_tokens  # the replayed usage counts as before
