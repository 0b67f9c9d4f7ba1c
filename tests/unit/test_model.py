"""The model layer: the real openai client against the scripted server on loopback."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest
from tests.servers.llm import Step, call, error, reply, scripted

from astraforge.agent.model import (
    DeadlineReached,
    OpenAIModel,
    Reply,
    _retry_after,
    make_model,
)
from astraforge.agent.replay import ReplayModel
from astraforge.config import ModelConfig
from astraforge.errors import ModelError

MESSAGES = [{"role": "user", "content": "hello"}]


def model(url: str, **fields: object) -> OpenAIModel:
    config = ModelConfig.model_validate({"name": "m", "base_url": url, **fields})
    made = make_model(config, {"OPENAI_API_KEY": "sk-unit-test-key-0000000000"})
    assert isinstance(made, OpenAIModel)
    return made


def complete(m: OpenAIModel, deadline: float = 60.0) -> Reply:
    return m.complete(MESSAGES, [], max_output=500, deadline=time.monotonic() + deadline)


def test_reply_carries_tool_calls_usage_and_the_request_shape() -> None:
    with scripted([reply(call("read_file", path="a.py"), usage=(12, 7))]) as llm:
        got = complete(model(llm.url, temperature=0.2, extra_headers={"X-Team": "core"}))
    assert got.tool_calls[0].name == "read_file"
    assert got.tool_calls[0].arguments == '{"path": "a.py"}'
    assert (got.usage.prompt_tokens, got.usage.completion_tokens) == (12, 7)
    body = llm.requests[0].body
    assert body["model"] == "m"
    assert body["temperature"] == 0.2
    assert body["max_completion_tokens"] == 500
    assert llm.requests[0].headers["x-team"] == "core"
    assert got.message()["tool_calls"][0]["function"]["name"] == "read_file"


def test_max_tokens_param_for_older_servers() -> None:
    with scripted([reply(content="hi")]) as llm:
        complete(model(llm.url, max_tokens_param="max_tokens", temperature=None))
    assert llm.requests[0].body["max_tokens"] == 500
    assert "temperature" not in llm.requests[0].body


def test_missing_usage_is_estimated() -> None:
    with scripted([reply(content="hi", omit_usage=True)]) as llm:
        got = complete(model(llm.url))
    assert got.usage.estimated
    assert got.usage.prompt_tokens > 0


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (401, "rejected the API key (HTTP 401) (fix: check the key in OPENAI_API_KEY)"),
        (404, "model 'm' or its endpoint was not found"),
        (400, "refused the request (HTTP 400): bad things"),
    ],
)
def test_client_errors_are_not_retried(status: int, text: str) -> None:
    with (
        scripted([error(status, message="bad things")]) as llm,
        pytest.raises(ModelError) as raised,
    ):
        complete(model(llm.url))
    assert text in raised.value.one_line()
    assert llm.calls == 1


def test_server_errors_are_retried_with_backoff_then_fail_clearly() -> None:
    seen: list[tuple[int, str, float]] = []
    with scripted([], then=error(503)) as llm:
        m = model(llm.url, max_retries=2)
        m.on_retry = lambda n, what, wait: seen.append((n, what, wait))
        with pytest.raises(ModelError, match="HTTP 503\\) after 3 attempts"):
            complete(m)
    assert llm.calls == 3
    assert [n for n, _, _ in seen] == [1, 2]
    assert 0.375 <= seen[0][2] <= 0.5
    assert 0.75 <= seen[1][2] <= 1.0


def test_a_slow_reply_is_retried_after_its_timeout() -> None:
    with scripted([reply(content="late", delay=1.5), reply(content="on time")]) as llm:
        got = complete(model(llm.url, timeout_seconds=0.5, max_retries=1))
    assert got.content == "on time"


def test_the_deadline_stops_waiting() -> None:
    with scripted([reply(content="late", delay=2.0)]) as llm:
        started = time.monotonic()
        with pytest.raises(DeadlineReached):
            complete(model(llm.url), deadline=0.5)
    assert time.monotonic() - started < 1.5


def test_a_retry_after_past_the_deadline_is_not_waited_for() -> None:
    with scripted([error(429, retry_after="30")]) as llm, pytest.raises(DeadlineReached):
        complete(model(llm.url), deadline=5)
    assert llm.calls == 1


def test_retry_after_forms() -> None:
    assert _retry_after({"retry-after": "3"}) == 3.0
    assert _retry_after({"retry-after-ms": "250"}) == 0.25
    assert _retry_after({"retry-after": "9999"}) == 120.0
    date = _retry_after({"retry-after": formatdate(time.time() + 10, usegmt=True)})
    assert date is not None
    assert 8 <= date <= 10
    assert _retry_after({"retry-after": "soon"}) is None
    assert _retry_after({}) is None


def test_missing_key_is_one_clear_error() -> None:
    with pytest.raises(ModelError, match="OPENAI_API_KEY is not set"):
        make_model(ModelConfig(), {})
    with pytest.raises(ModelError, match="MY_KEY is not set"):
        make_model(ModelConfig(api_key_env="MY_KEY"), {"OPENAI_API_KEY": "x" * 20})
    local = make_model(ModelConfig(base_url="http://127.0.0.1:1/v1"), {})  # Ollama, vLLM
    assert isinstance(local, OpenAIModel)


def test_azure_uses_the_deployment_path_and_api_version() -> None:
    with scripted([reply(content="hi")]) as llm:
        base = llm.url.removesuffix("/v1")
        config = ModelConfig(name="my-deployment", api="azure", base_url=base)
        m = make_model(config, {"OPENAI_API_KEY": "azure-key-000000000"})
        assert isinstance(m, OpenAIModel)
        complete(m)
    request = llm.requests[0]
    assert request.path.startswith("/openai/deployments/my-deployment/chat/completions")
    assert "api-version=2024-10-21" in request.path
    assert request.headers["api-key"] == "azure-key-000000000"


def test_replay_model_replays_in_order_then_refuses(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "t.jsonl"
    path.write_text(
        '{"type": "start", "version": 1}\n'
        '{"type": "response", "reply": {"content": "one", "tool_calls": [], "usage": {}}}\n'
    )
    replayed = make_model(ModelConfig(name=f"replay:{path}"), {})
    assert isinstance(replayed, ReplayModel)
    assert complete(replayed).content == "one"  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="only 1 replies"):
        complete(replayed)  # type: ignore[arg-type]


def test_step_default_is_a_stop_reply() -> None:
    assert Step().status == 200


def test_a_malformed_completion_is_a_clear_error() -> None:
    body = '{"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": 7}]}'
    with scripted([Step(raw_body=body)]) as llm, pytest.raises(ModelError, match="malformed"):
        complete(model(llm.url))
