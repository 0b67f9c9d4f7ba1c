"""The engines on Node.js: Codex, Claude Code, Gemini CLI, opencode, Kilo and Qwen Code.

Each one is told the model and the gateway's base URL in its own configuration format, reads
the task on stdin, and prints JSON events; its own approval prompts, update checks and
telemetry are off, and so is its inner sandbox (the AstraForge sandbox is the boundary, and
the inner ones need kernel features, like user namespaces or Landlock, that ours takes away).
"""

from __future__ import annotations

import json
from typing import Any

from astraforge.engines.base import Engine, Settings, Transcript, json_lines
from astraforge.engines.pins import ARCH
from astraforge.sandbox.config import HOME

QUIET = {  # update checks, telemetry and crash reports of the Node engines
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "NO_UPDATE_NOTIFIER": "1",
    "NO_COLOR": "1",
}


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


class Codex(Engine):
    """OpenAI's Codex CLI (``codex exec --json``), on the Responses API."""

    name = "codex"
    protocol = "responses"
    command = "codex"
    inner_sandbox = "--dangerously-bypass-approvals-and-sandbox (its Landlock/seccomp sandbox)"

    def argv(self, settings: Settings) -> list[str]:
        return [
            self.command,
            "exec",
            "--skip-git-repo-check",
            "--dangerously-bypass-approvals-and-sandbox",
            "--json",
            "-",
        ]

    def home_files(self, settings: Settings) -> dict[str, str]:
        config = "\n".join(
            [
                f"model = {_toml(settings.model)}",
                'model_provider = "astraforge"',
                'approval_policy = "never"',
                'sandbox_mode = "danger-full-access"',
                "check_for_update_on_startup = false",
                "",
                "[model_providers.astraforge]",
                'name = "AstraForge gateway"',
                f"base_url = {_toml(settings.openai_base)}",
                'env_key = "OPENAI_API_KEY"',
                'wire_api = "responses"',
                "",
                "[analytics]",
                "enabled = false",
                "",
            ]
        )
        return {".codex/config.toml": config}

    def environment(self, settings: Settings) -> dict[str, str]:
        return {**QUIET, "CODEX_HOME": f"{HOME}/.codex"}

    def read(self, output: str) -> Transcript:
        transcript = Transcript()
        for event in json_lines(output):
            kind = event.get("type", "")
            item = event.get("item") or {}
            if kind == "item.completed":
                what = item.get("type")
                if what == "agent_message":
                    transcript.message("assistant", str(item.get("text", "")))
                elif what == "command_execution":
                    transcript.tool(
                        "shell",
                        {"command": item.get("command")},
                        item.get("aggregated_output"),
                        exit_code=item.get("exit_code"),
                    )
                elif what == "file_change":
                    transcript.tool(
                        "apply_patch", {"changes": item.get("changes")}, item.get("status")
                    )
                elif what in ("mcp_tool_call", "web_search"):
                    transcript.tool(str(what), item, None)
                # an "error" item is a warning (unknown model metadata, say): the turn goes on
            elif kind in ("turn.failed", "error"):
                error = event.get("error") or {}
                message = error.get("message") if isinstance(error, dict) else None
                transcript.error = str(message or event.get("message") or kind)
        return transcript


class Claude(Engine):
    """Anthropic's Claude Code (``claude -p --output-format stream-json``)."""

    name = "claude"
    protocol = "anthropic"
    command = "claude"
    instructions = "CLAUDE.md"
    inner_sandbox = "--dangerously-skip-permissions (no approval prompts; no sandbox by default)"

    def links(self) -> dict[str, str]:
        package = "node_modules/@anthropic-ai"
        return {
            f"{package}/claude-code/bin/claude.exe": f"{package}/claude-code-linux-{ARCH}/claude"
        }

    def argv(self, settings: Settings) -> list[str]:
        return [
            self.command,
            "-p",
            "--dangerously-skip-permissions",
            "--output-format",
            "stream-json",
            "--verbose",
            "--model",
            settings.model,
        ]

    def home_files(self, settings: Settings) -> dict[str, str]:
        # The repository's AGENTS.md as Claude Code's user memory: it reads CLAUDE.md only.
        return {
            ".claude/settings.json": json.dumps(
                {"autoUpdates": False, "includeCoAuthoredBy": False}
            )
        }

    def environment(self, settings: Settings) -> dict[str, str]:
        return {**QUIET, "IS_SANDBOX": "1"}

    def read(self, output: str) -> Transcript:
        return read_stream_json(output)


def read_stream_json(output: str) -> Transcript:
    """Claude Code's ``stream-json`` events (Qwen Code prints the same): assistant text and
    tool uses, the user turns carrying their results, and the result line."""
    transcript = Transcript()
    calls: dict[str, tuple[str, Any]] = {}
    for event in json_lines(output):
        kind = event.get("type")
        content = (event.get("message") or {}).get("content")
        if kind == "assistant" and isinstance(content, list):
            for block in content:
                if block.get("type") == "text":
                    transcript.message("assistant", str(block.get("text", "")))
                elif block.get("type") == "tool_use":
                    calls[str(block.get("id"))] = (str(block.get("name")), block.get("input"))
        elif kind == "user" and isinstance(content, list):
            for block in content:
                if block.get("type") == "tool_result" and block.get("tool_use_id") in calls:
                    name, arguments = calls.pop(str(block.get("tool_use_id")))
                    transcript.tool(name, arguments, _text(block.get("content")))
        elif kind == "result":
            if event.get("is_error"):
                transcript.error = str(event.get("result") or event.get("subtype"))
            elif event.get("result"):
                transcript.final = str(event["result"])
    for name, arguments in calls.values():
        transcript.tool(name, arguments, None)
    return transcript


class Gemini(Engine):
    """Google's Gemini CLI (``gemini --output-format stream-json``)."""

    name = "gemini"
    protocol = "gemini"
    command = "gemini"
    instructions = "GEMINI.md"
    inner_sandbox = "--yolo without --sandbox (its sandbox is a container of its own)"

    def argv(self, settings: Settings) -> list[str]:
        return [
            self.command,
            "--yolo",
            "-m",
            settings.model,
            "--output-format",
            "stream-json",
            "-p",
            "Do the task given above.",
        ]

    def home_files(self, settings: Settings) -> dict[str, str]:
        config = {
            "security": {"auth": {"selectedType": "gemini-api-key"}},
            "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
            "privacy": {"usageStatisticsEnabled": False},
            "telemetry": {"enabled": False},
            "context": {"fileName": ["GEMINI.md", "AGENTS.md"]},
        }
        return {".gemini/settings.json": json.dumps(config)}

    def environment(self, settings: Settings) -> dict[str, str]:
        return {**QUIET, "GEMINI_CLI_TRUST_WORKSPACE": "true"}

    def read(self, output: str) -> Transcript:
        transcript = Transcript()
        calls: dict[str, tuple[str, Any]] = {}
        text: list[str] = []
        for event in json_lines(output):
            kind = event.get("type")
            if kind == "message" and event.get("role") == "assistant":
                text.append(str(event.get("content", "")))
                continue
            if text:
                transcript.message("assistant", "".join(text))
                text = []
            if kind == "tool_use":
                calls[str(event.get("tool_id"))] = (
                    str(event.get("tool_name")),
                    event.get("parameters"),
                )
            elif kind == "tool_result" and str(event.get("tool_id")) in calls:
                name, arguments = calls.pop(str(event.get("tool_id")))
                result = event.get("output") or event.get("error")
                transcript.tool(name, arguments, result, status=event.get("status"))
            elif kind == "error":
                transcript.error = str(event.get("message"))
            elif kind == "result" and event.get("status") == "error":
                error = event.get("error") or {}
                transcript.error = str(error.get("message") if isinstance(error, dict) else error)
        if text:
            transcript.message("assistant", "".join(text))
        return transcript


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
    return "" if content is None else str(content)


class OpenCode(Engine):
    """opencode (``opencode run --format json``), with the gateway as an OpenAI-compatible
    provider."""

    name = "opencode"
    protocol = "chat"
    command = "opencode"
    inner_sandbox = "permission: allow for every tool (it has no sandbox of its own)"
    provider = "astraforge"

    def links(self) -> dict[str, str]:
        source = f"node_modules/opencode-linux-{ARCH}/bin/opencode"
        return {"node_modules/opencode-ai/bin/opencode.exe": source}

    def argv(self, settings: Settings) -> list[str]:
        return [
            self.command,
            "run",
            "--format",
            "json",
            "--model",
            f"{self.provider}/{settings.model}",
        ]

    def home_files(self, settings: Settings) -> dict[str, str]:
        config = {
            "autoupdate": False,
            "share": "disabled",
            "permission": {"edit": "allow", "bash": "allow", "webfetch": "deny"},
            "provider": {
                self.provider: {
                    "npm": "@ai-sdk/openai-compatible",
                    "name": "AstraForge gateway",
                    "options": {"baseURL": settings.openai_base, "apiKey": "{env:OPENAI_API_KEY}"},
                    "models": {settings.model: {"name": settings.model}},
                }
            },
            "model": f"{self.provider}/{settings.model}",
        }
        return {".config/opencode/opencode.json": json.dumps(config)}

    def environment(self, settings: Settings) -> dict[str, str]:
        return {**QUIET, "OPENCODE_DISABLE_AUTOUPDATE": "1", "OPENCODE_DISABLE_SHARE": "1"}

    def read(self, output: str) -> Transcript:
        transcript = Transcript()
        for event in json_lines(output):
            kind = event.get("type")
            part = event.get("part") or {}
            if kind == "text":
                transcript.message("assistant", str(part.get("text", "")))
            elif kind == "tool_use":
                state = part.get("state") or {}
                transcript.tool(
                    str(part.get("tool")),
                    state.get("input"),
                    state.get("output") or state.get("error"),
                )
            elif kind == "error":
                error = event.get("error") or {}
                data = error.get("data") if isinstance(error, dict) else None
                transcript.error = str((data or {}).get("message") or error)
        return transcript


class Qwen(Gemini):
    """Qwen Code (``qwen --output-format stream-json``), a Gemini CLI fork speaking the
    OpenAI-compatible API."""

    name = "qwen"
    protocol = "chat"
    command = "qwen"
    instructions = "QWEN.md"
    inner_sandbox = "--yolo without --sandbox (its sandbox is a container of its own)"

    def home_files(self, settings: Settings) -> dict[str, str]:
        config = {
            "security": {"auth": {"selectedType": "openai"}},
            "model": {"name": settings.model},
            "privacy": {"usageStatisticsEnabled": False},
            "telemetry": {"enabled": False},
            "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
            "context": {"fileName": ["QWEN.md", "AGENTS.md"]},
        }
        return {".qwen/settings.json": json.dumps(config)}

    def environment(self, settings: Settings) -> dict[str, str]:
        return {**QUIET, "OPENAI_MODEL": settings.model, "QWEN_CODE_TRUST_WORKSPACE": "true"}

    def read(self, output: str) -> Transcript:
        return read_stream_json(output)  # Claude Code's format, not Gemini CLI's


class Kilo(OpenCode):
    """Kilo Code's CLI (``kilo run --format json``), an opencode fork with the same events."""

    name = "kilo"
    command = "kilo"
    inner_sandbox = "permission: allow for every tool; its bubblewrap sandbox is not used"

    def links(self) -> dict[str, str]:
        source = f"node_modules/@kilocode/cli-linux-{ARCH}/bin/kilo"
        return {"node_modules/@kilocode/cli/bin/.kilo": source}

    def home_files(self, settings: Settings) -> dict[str, str]:
        (config,) = super().home_files(settings).values()
        return {".config/kilo/kilo.json": config}

    def environment(self, settings: Settings) -> dict[str, str]:
        return {
            **QUIET,
            "KILO_DISABLE_AUTOUPDATE": "1",
            "KILO_DISABLE_SHARE": "1",
            "KILO_DISABLE_MODELS_FETCH": "1",
            "KILO_DISABLE_LSP_DOWNLOAD": "1",
            "KILO_DISABLE_SESSION_INGEST": "1",
        }
