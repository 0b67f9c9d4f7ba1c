"""The model seam: ``complete(messages, tools) -> Reply``.

:class:`OpenAIModel` speaks chat completions with tools through the openai SDK, to OpenAI,
Azure OpenAI or any compatible server. It retries on its own instead of with the SDK's retry
loop, so that a retry never sleeps or waits past the run's wall-time budget and every retry
is recorded. ``replay:FILE`` answers with a trajectory's recorded replies
(:class:`astraforge.agent.replay.ReplayModel`).
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from astraforge import tokens
from astraforge.config import ModelConfig
from astraforge.errors import ModelError

Message = dict[str, Any]
REPLAY_PREFIX = "replay:"
OPENAI_URL = "https://api.openai.com/v1"
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0
MAX_RETRY_AFTER = 120.0


@dataclass(frozen=True)
class ToolCall:
    """One tool call as the model sent it."""

    id: str
    name: str
    arguments: str  # the JSON text exactly as the model sent it


@dataclass(frozen=True)
class Usage:
    """Tokens of one model call, as reported (or estimated when not)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False  # the server reported no usage

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Reply:
    """One model reply: text, tool calls and usage."""

    content: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None

    def message(self) -> Message:
        """The assistant message to append to the conversation."""
        message: Message = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in self.tool_calls
            ]
        return message

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reply:
        return cls(
            content=data.get("content"),
            tool_calls=[ToolCall(**c) for c in data.get("tool_calls") or []],
            usage=Usage(**(data.get("usage") or {})),
            finish_reason=data.get("finish_reason"),
        )


class DeadlineReached(Exception):
    """The wall-time budget ran out while waiting for the model."""


class Model(Protocol):
    """The model seam: a chat completion with tools, within a deadline."""

    name: str

    def complete(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]],
        *,
        max_output: int,
        deadline: float,
    ) -> Reply: ...


RetryHook = Callable[[int, str, float], None]  # attempt, what failed, seconds to wait


class OpenAIModel:
    """Chat completions with tools over the openai SDK."""

    def __init__(self, config: ModelConfig, api_key: str, on_retry: RetryHook | None = None):
        import openai

        self.config = config
        self.name = config.name
        self.on_retry = on_retry
        common: dict[str, Any] = {
            "api_key": api_key,
            "max_retries": 0,
            "timeout": config.timeout_seconds,
            "default_headers": config.extra_headers or None,
        }
        if config.api == "azure":
            if not config.base_url:
                raise ModelError(
                    "model.api is azure but no endpoint is set",
                    "set model.base_url to https://RESOURCE.openai.azure.com",
                )
            self._client: Any = openai.AzureOpenAI(
                azure_endpoint=config.base_url, api_version=config.api_version, **common
            )
        else:
            self._client = openai.OpenAI(base_url=config.base_url or OPENAI_URL, **common)

    def complete(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]],
        *,
        max_output: int,
        deadline: float,
    ) -> Reply:
        import openai

        request: dict[str, Any] = {
            "model": self.name,
            "messages": messages,
            "tools": tools,
            self.config.max_tokens_param: max_output,
        }
        if self.config.temperature is not None:
            request["temperature"] = self.config.temperature
        import tenacity

        retries = self.config.max_retries
        why: dict[str, str] = {}

        def stop(state: tenacity.RetryCallState) -> bool:
            """Stop after ``max_retries``, or when the next wait would pass the deadline."""
            if time.monotonic() + (state.upcoming_sleep or 0) >= deadline:
                why["stop"] = "deadline"
                return True
            if state.attempt_number > retries:
                why["stop"] = "attempts"
                return True
            return False

        def wait(state: tenacity.RetryCallState) -> float:
            """Retry-After when the server says, else exponential backoff with jitter."""
            failed = state.outcome.exception() if state.outcome else None
            response = getattr(failed, "response", None) if _is_status(failed) else None
            after = _retry_after(response.headers) if response is not None else None
            return _backoff(state.attempt_number - 1) if after is None else after

        def before_sleep(state: tenacity.RetryCallState) -> None:
            failed = state.outcome.exception() if state.outcome else None
            if self.on_retry and failed is not None:
                self.on_retry(state.attempt_number, self._failure(failed), state.upcoming_sleep)

        def attempt() -> Reply:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineReached
            response = self._client.chat.completions.create(
                **request, timeout=min(self.config.timeout_seconds, remaining)
            )
            return self._reply(response, messages)

        try:
            return tenacity.Retrying(
                stop=stop,
                wait=wait,
                retry=tenacity.retry_if_exception(_retryable),
                before_sleep=before_sleep,
                reraise=True,
            )(attempt)
        except (openai.APITimeoutError, openai.APIConnectionError, openai.APIStatusError) as exc:
            if why.get("stop") == "deadline" or time.monotonic() >= deadline:
                raise DeadlineReached from None
            if _is_status(exc) and not _retryable(exc):
                raise self._refused(exc) from None
            raise ModelError(
                f"the model API kept failing ({self._failure(exc)}) after {retries + 1} attempts",
                "try again later, or raise model.max_retries; the partial run is kept",
            ) from None

    def _failure(self, exc: BaseException) -> str:
        """What failed, in a few words, for the log and the error."""
        if _is_status(exc):
            return f"HTTP {exc.status_code}"  # type: ignore[attr-defined]
        return self._describe(exc)

    def check(self) -> None:
        """One tiny request, to see that the API, the key and the model answer."""
        import openai

        try:
            self._client.chat.completions.create(
                model=self.name,
                messages=[{"role": "user", "content": "Reply with OK."}],
                timeout=min(30.0, self.config.timeout_seconds),
                **{self.config.max_tokens_param: 16},
            )
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            raise ModelError(
                f"the model API does not answer ({self._describe(exc)})",
                "check model.base_url / OPENAI_BASE_URL and the network",
            ) from None
        except openai.APIStatusError as exc:
            raise self._refused(exc) from None

    def _describe(self, exc: BaseException) -> str:
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return f"no reply within {self.config.timeout_seconds:g}s"
        return f"cannot connect to {self.config.base_url or OPENAI_URL}"

    def _refused(self, exc: Any) -> ModelError:
        status = exc.status_code
        detail = _error_detail(exc)
        where = self.config.base_url or OPENAI_URL
        if status == 401:
            return ModelError(
                f"the model API at {where} rejected the API key (HTTP 401)",
                f"check the key in {self.config.api_key_env}",
            )
        if status == 403:
            return ModelError(f"the API key may not use model {self.name!r} (HTTP 403){detail}")
        if status == 404:
            return ModelError(
                f"model {self.name!r} or its endpoint was not found at {where} (HTTP 404)",
                "check model.name and model.base_url",
            )
        return ModelError(
            f"the model API refused the request (HTTP {status}){detail}",
            "check the model settings; the partial run is kept",
        )

    def _reply(self, response: Any, messages: list[Message]) -> Reply:
        try:
            return self._read_reply(response, messages)
        except (AttributeError, TypeError, IndexError, KeyError):
            raise ModelError(
                "the model API answered with a malformed chat completion",
                "check that model.base_url is an OpenAI-compatible API",
            ) from None

    def _read_reply(self, response: Any, messages: list[Message]) -> Reply:
        if not getattr(response, "choices", None):
            raise ModelError("the model API answered without any choice", "check model.base_url")
        choice = response.choices[0]
        message = choice.message
        calls = [
            ToolCall(
                id=c.id or f"call_{i}",
                name=c.function.name or "",
                arguments=c.function.arguments or "",
            )
            for i, c in enumerate(message.tool_calls or [])
            if getattr(c, "function", None) is not None
        ]
        if response.usage is not None:
            usage = Usage(response.usage.prompt_tokens or 0, response.usage.completion_tokens or 0)
        else:
            out = (message.content or "") + "".join(c.arguments for c in calls)
            usage = Usage(
                tokens.count_messages(messages, tokens.estimate_high),
                tokens.estimate_high(out),
                estimated=True,
            )
        return Reply(message.content, calls, usage, choice.finish_reason)


def _is_status(exc: BaseException | None) -> bool:
    import openai

    return isinstance(exc, openai.APIStatusError)


def _retryable(exc: BaseException) -> bool:
    """429, 5xx, timeouts and connection errors are worth another try; other refusals not."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError))


def _backoff(attempt: int) -> float:
    """Exponential backoff with up to 25% jitter."""
    delay: float = min(INITIAL_BACKOFF * 2.0**attempt, MAX_BACKOFF)
    return delay * (1 - 0.25 * random.random())  # noqa: S311


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if not value:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            parsed = email.utils.parsedate_tz(value) if scale == 1.0 else None
            if parsed is None:
                continue
            seconds = float(email.utils.mktime_tz(parsed) - time.time())
        return max(0.0, min(seconds, MAX_RETRY_AFTER))
    return None


def _error_detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        message = body.get("message") or (body.get("error") or {}).get("message")
        if message:
            return f": {str(message)[:300]}"
    return ""


def make_model(
    config: ModelConfig, env: Mapping[str, str], on_retry: RetryHook | None = None
) -> Model:
    """The model a configuration names; ``replay:FILE`` selects :class:`ReplayModel`."""
    if config.name.startswith(REPLAY_PREFIX):
        from astraforge.agent.replay import ReplayModel

        return ReplayModel(Path(config.name[len(REPLAY_PREFIX) :]))
    key = api_key(config, env, config.base_url or OPENAI_URL)
    if not key:
        if not config.base_url or config.api == "azure":
            raise ModelError(
                f"{config.api_key_env} is not set",
                f"export the model API key as {config.api_key_env}, or point model.base_url "
                "at a server that needs no key",
            )
        key = "unused"  # local servers (Ollama, vLLM) accept any key
    return OpenAIModel(config, key, on_retry)


def api_key(config: ModelConfig, env: Mapping[str, str], url: str) -> str:
    """The model's key from the runner's environment ("" when unset), checked to belong to
    the host of ``url``: a key is only ever sent to the host it is bound to."""
    key = env.get(config.api_key_env, "").strip()
    if key:
        from astraforge import credentials

        held = credentials.for_run(env, model=(config.base_url, config.api_key_env))
        held.check(url, key)
    return key


def describe(config: ModelConfig) -> dict[str, Any]:
    """What the trajectory and report say about the model (never the key)."""
    return {
        "name": config.name,
        "api": config.api,
        "base_url": config.base_url or (None if config.api == "azure" else OPENAI_URL),
    }
