"""A scripted OpenAI-compatible chat-completions server on loopback.

It implements ``POST /v1/chat/completions`` (and the Azure deployment path) with the
documented request and response shapes, including tool calls, usage and error bodies, and
plays a script: each request gets the next step, which is a reply, an HTTP error (with
Retry-After), a slow reply, or a malformed body. Every request body and header is recorded.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Step:
    content: str | None = None
    tool_calls: list[tuple[str, str]] = field(default_factory=list)  # (name, raw arguments)
    usage: tuple[int, int] | None = None  # (prompt, completion); computed when None
    omit_usage: bool = False
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw_body: str | None = None


def call(name: str, **arguments: Any) -> tuple[str, str]:
    return (name, json.dumps(arguments))


def reply(*calls: tuple[str, str], content: str | None = None, **kw: Any) -> Step:
    return Step(content=content, tool_calls=list(calls), **kw)


def error(status: int, retry_after: str | None = None, message: str = "try again") -> Step:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    body = json.dumps({"error": {"message": message, "type": "server_error", "code": None}})
    return Step(status=status, headers=headers, raw_body=body)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: str
    usage: tuple[int, int] | None = None  # what the server reported for this request


ScriptItem = Step | Callable[[dict[str, Any]], Step]


class ScriptedLLM:
    def __init__(self, script: list[ScriptItem], then: ScriptItem | None = None) -> None:
        self.script = list(script)
        self.then = then  # what every request after the script gets (default: HTTP 400)
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def calls(self) -> int:
        return len([r for r in self.requests if r.path.endswith("/chat/completions")])

    def _next(self, body: dict[str, Any]) -> Step:
        with self._lock:
            item = self.script.pop(0) if self.script else self.then
        if item is None:
            return error(400, message="the test script has no more steps")
        return item(body) if callable(item) else item

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                body = json.loads(raw) if raw else {}
                headers = {k.lower(): v for k, v in self.headers.items()}
                seen = Seen(self.path, headers, body, raw)
                server.requests.append(seen)
                if not self.path.split("?")[0].endswith("/chat/completions"):
                    self._send(404, json.dumps({"error": {"message": "not found"}}), {})
                    return
                step = server._next(body)
                if step.delay:
                    time.sleep(step.delay)
                if step.raw_body is not None:
                    text = step.raw_body
                else:
                    text, seen.usage = completion(body, step)
                if body.get("stream") and step.status == 200 and step.raw_body is None:
                    self._stream(json.loads(text), body)
                    return
                self._send(step.status, text, step.headers)

            def _stream(self, whole: dict[str, Any], request: dict[str, Any]) -> None:
                """The reply as chat-completion chunks over SSE: the documented shape, with
                usage in a last chunk only when the client asked for it."""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for chunk in chunks(whole, request):
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")

            def _send(self, status: int, text: str, headers: dict[str, str]) -> None:
                data = text.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

        return Handler

    def __enter__(self) -> ScriptedLLM:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def completion(request: dict[str, Any], step: Step) -> tuple[str, tuple[int, int]]:
    calls = [
        {
            "id": f"call_{i}_{int(time.time() * 1000)}",
            "type": "function",
            "function": {"name": name, "arguments": args},
        }
        for i, (name, args) in enumerate(step.tool_calls)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": step.content}
    if calls:
        message["tool_calls"] = calls
    if step.usage is not None:
        prompt, completion_tokens = step.usage
    else:
        prompt = len(json.dumps(request.get("messages", []))) // 4
        completion_tokens = max(1, len(json.dumps(message)) // 4)
    cap = request.get("max_completion_tokens") or request.get("max_tokens")
    if cap is not None:
        completion_tokens = min(completion_tokens, int(cap))  # a server stops at the cap
    body: dict[str, Any] = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "test-model"),
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}
        ],
    }
    if not step.omit_usage:
        body["usage"] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
        }
    return json.dumps(body), (prompt, completion_tokens)


def chunks(whole: dict[str, Any], request: dict[str, Any]) -> list[dict[str, Any]]:
    """A chat completion as the stream of chunks a server sends for it."""
    base = {k: whole[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    choice = whole["choices"][0]
    message = choice["message"]
    out = []
    if message.get("content"):
        delta = {"role": "assistant", "content": message["content"]}
        out.append(base | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    for index, tool in enumerate(message.get("tool_calls") or []):
        head = {"index": index, "id": tool["id"], "type": "function"}
        head["function"] = {"name": tool["function"]["name"], "arguments": ""}
        args = tool["function"]["arguments"]
        for delta in (
            head,
            {"index": index, "function": {"arguments": args[: len(args) // 2]}},
            {"index": index, "function": {"arguments": args[len(args) // 2 :]}},
        ):
            part = {"index": 0, "delta": {"tool_calls": [delta]}, "finish_reason": None}
            out.append(base | {"choices": [part]})
    out.append(
        base | {"choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]}
    )
    if (request.get("stream_options") or {}).get("include_usage") and "usage" in whole:
        out.append(base | {"choices": [], "usage": whole["usage"]})
    return out


@contextmanager
def scripted(script: list[ScriptItem], then: ScriptItem | None = None) -> Iterator[ScriptedLLM]:
    with ScriptedLLM(script, then) as server:
        yield server
