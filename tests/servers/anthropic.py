"""A scripted Anthropic Messages server on loopback: ``POST /v1/messages`` with the
documented request, response and SSE event shapes (text and tool_use blocks, usage), the
key checked in ``x-api-key``; every request recorded."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Turn:
    text: str | None = None
    tool: tuple[str, dict[str, Any]] | None = None  # (name, input)
    usage: tuple[int, int] = (120, 30)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class ScriptedAnthropic:
    key: str
    then: Turn
    requests: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ScriptedAnthropic:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw or b"{}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.requests.append(Seen(self.path, headers, body))
                if headers.get("x-api-key") != server.key:
                    error = {
                        "type": "error",
                        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
                    }
                    return self._json(401, error)
                if self.path.split("?")[0] != "/v1/messages":
                    return self._json(404, {"type": "error", "error": {"type": "not_found_error"}})
                message = server._message(body)
                if body.get("stream"):
                    return self._stream(message)
                return self._json(200, message)

            def _json(self, status: int, data: dict[str, Any]) -> None:
                out = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def _stream(self, message: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                start = {
                    **message,
                    "content": [],
                    "stop_reason": None,
                    "usage": {"input_tokens": message["usage"]["input_tokens"], "output_tokens": 1},
                }
                events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
                for index, block in enumerate(message["content"]):
                    if block["type"] == "text":
                        events.append(
                            {
                                "type": "content_block_start",
                                "index": index,
                                "content_block": {"type": "text", "text": ""},
                            }
                        )
                        events.append(
                            {
                                "type": "content_block_delta",
                                "index": index,
                                "delta": {"type": "text_delta", "text": block["text"]},
                            }
                        )
                    else:
                        events.append(
                            {
                                "type": "content_block_start",
                                "index": index,
                                "content_block": {**block, "input": {}},
                            }
                        )
                        events.append(
                            {
                                "type": "content_block_delta",
                                "index": index,
                                "delta": {
                                    "type": "input_json_delta",
                                    "partial_json": json.dumps(block["input"]),
                                },
                            }
                        )
                    events.append({"type": "content_block_stop", "index": index})
                events.append(
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                        "usage": {"output_tokens": message["usage"]["output_tokens"]},
                    }
                )
                events.append({"type": "message_stop"})
                for event in events:
                    self.wfile.write(
                        f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
                    )

        return Handler

    def _message(self, body: dict[str, Any]) -> dict[str, Any]:
        turn = self.then
        content: list[dict[str, Any]] = []
        if turn.text:
            content.append({"type": "text", "text": turn.text})
        if turn.tool:
            content.append(
                {"type": "tool_use", "id": "toolu_01", "name": turn.tool[0], "input": turn.tool[1]}
            )
        return {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": content,
            "stop_reason": "tool_use" if turn.tool else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": turn.usage[0], "output_tokens": turn.usage[1]},
        }
