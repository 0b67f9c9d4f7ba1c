"""The scripted upstream's side of an engine test: it reads the tools each request offers,
picks the engine's shell tool by its schema, runs the known fix through it, then answers
with a final message. An engine without tools (aider) gets the fixed file in its edit
format instead."""

from __future__ import annotations

import json
from typing import Any

from tests.servers.llm import Step, reply

from astraforge.sandbox.config import WORKSPACE

FINAL = (
    "Summary: mean() divided by one less than the number of values; it divides by the "
    "count now.\nRoot cause: an off-by-one in the divisor.\nTests: python3 -m unittest passes."
)
SHELL_NAMES = ("command", "cmd")


def shell_tool(tools: list[dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    """The name and JSON schema of the offered tool that runs a shell command: a tool with
    a ``command`` or ``cmd`` parameter (a string, or an argv array)."""
    found = []
    for tool in tools:
        function = tool.get("function") or tool
        schema = function.get("parameters") or {}
        properties = schema.get("properties") or {}
        if any(name in properties for name in SHELL_NAMES):
            name = str(function.get("name"))
            shell_like = any(word in name.lower() for word in ("bash", "shell", "exec"))
            found.append((not shell_like, len(schema.get("required") or []), name, schema))
    # named like a shell first, then the plainest (a tool that also needs an action or a
    # mode, like a background-process manager, is not the shell)
    return min(found, key=lambda f: f[:2])[2:] if found else None


def shell_arguments(schema: dict[str, Any], command: str) -> dict[str, Any]:
    """Arguments for that tool: the command in the form its schema asks for, and a plain
    value for every other required parameter."""
    properties = schema.get("properties") or {}
    name = next(n for n in SHELL_NAMES if n in properties)
    kind = properties[name].get("type")
    arguments: dict[str, Any] = {name: ["bash", "-lc", command] if kind == "array" else command}
    for required in schema.get("required") or []:
        if required in arguments:
            continue
        spec = properties.get(required) or {}
        if spec.get("enum"):
            arguments[required] = spec["enum"][0]
            continue
        arguments[required] = {"boolean": False, "integer": 0, "number": 0}.get(
            str(spec.get("type")), "apply the fix"
        )
    return arguments


READ_NAMES = ("file_path", "absolute_path", "path")


def read_tool(tools: list[dict[str, Any]]) -> tuple[str, str] | None:
    """The offered tool that reads a file (some engines edit only what they read): its
    name and path parameter."""
    for tool in tools:
        function = tool.get("function") or tool
        name = str(function.get("name"))
        properties = (function.get("parameters") or {}).get("properties") or {}
        path = next((p for p in READ_NAMES if p in properties), None)
        if path and "read" in name.lower() and "many" not in name.lower():
            return name, path
    return None


def tool_results(messages: list[dict[str, Any]]) -> int:
    return sum(1 for m in messages if m.get("role") == "tool")


class Fixer:
    """A script item: the fix through the shell tool, then the final message. It records
    the tool names each request offered and the calls it made."""

    def __init__(self, path: str, command: str, whole_file: tuple[str, str] | None = None) -> None:
        self.path = path
        self.command = command
        self.whole_file = whole_file
        self.offered: list[list[str]] = []
        self.called: list[str] = []

    def __call__(self, body: dict[str, Any]) -> Step:
        tools = body.get("tools") or []
        self.offered.append([str((t.get("function") or t).get("name")) for t in tools])
        done = tool_results(body.get("messages") or [])
        reader = read_tool(tools)
        if reader is not None and done == 0:
            self.called.append(reader[0])
            return reply((reader[0], json.dumps({reader[1]: f"{WORKSPACE}/{self.path}"})))
        if done >= (2 if reader is not None else 1):
            return reply(content=FINAL)
        found = shell_tool(tools)
        if found is not None:
            name, schema = found
            self.called.append(name)
            return reply((name, json.dumps(shell_arguments(schema, self.command))))
        if self.whole_file is not None and not tools:
            path, text = self.whole_file
            return reply(content=f"{path}\n```\n{text}```\n\n{FINAL}")
        return reply(content=FINAL)
