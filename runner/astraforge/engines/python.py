"""The engines from PyPI: aider. Installed as wheels into a folder put on ``PYTHONPATH``,
run with the sandbox's own ``python3`` (of the runner's Python version: the install checks)."""

from __future__ import annotations

import json
import re

from astraforge.engines.base import ENGINE_ROOT, SCRATCH, Engine, Settings, Transcript, json_lines
from astraforge.engines.run import PROMPT

APPLIED = re.compile(r"^Applied edit to (.+)$", re.M)


class Aider(Engine):
    """aider, in its one-message mode (``--message-file``), against the gateway's
    OpenAI-compatible endpoint. It has no tool calls: the model answers with whole files
    (``--edit-format whole``) and aider writes them; each applied edit is a trajectory
    event, and the reply is the final message."""

    name = "aider"
    protocol = "chat"
    command = "python3"
    inner_sandbox = (
        "--yes-always --no-auto-commits (it has no sandbox; it runs no commands by itself)"
    )

    def argv(self, settings: Settings) -> list[str]:
        return [
            "python3",
            "-m",
            "aider",
            "--model",
            f"openai/{settings.model}",
            "--edit-format",
            "whole",
            "--yes-always",
            "--no-git",
            "--no-auto-commits",
            "--no-check-update",
            "--no-analytics",
            "--no-show-model-warnings",
            "--no-pretty",
            "--no-stream",
            "--no-fancy-input",
            "--map-tokens",
            "0",  # no repository map: its cache would land in the workspace
            "--chat-history-file",
            f"{SCRATCH}/aider.chat.history.md",
            "--input-history-file",
            f"{SCRATCH}/aider.input.history",
            "--message-file",
            PROMPT,
        ]

    def environment(self, settings: Settings) -> dict[str, str]:
        return {
            "PYTHONPATH": f"{ENGINE_ROOT}/lib",
            "OPENAI_API_BASE": settings.openai_base,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "AIDER_CHECK_UPDATE": "false",
            "AIDER_ANALYTICS": "false",
            "NO_COLOR": "1",
        }

    def read(self, output: str) -> Transcript:
        transcript = Transcript()
        for path in APPLIED.findall(output):
            transcript.tool("edit_file", {"path": path.strip()}, "applied")
        text = APPLIED.sub("", output).strip()
        # its output echoes the reply: the files in fences, then the model's own words
        closing = text.rfind("```")
        final = text[closing + 3 :].strip() if closing != -1 else text
        if final:
            transcript.message("assistant", final[-4000:])
        return transcript


class Vibe(Engine):
    """Mistral Vibe (``vibe --prompt-file --output streaming``): its Rust front end and its
    Python app server, with the gateway as an OpenAI-style provider."""

    name = "vibe"
    protocol = "chat"
    command = "vibe"
    inner_sandbox = "--auto-approve --trust (it has no sandbox of its own)"

    def argv(self, settings: Settings) -> list[str]:
        return [
            self.command,
            "--prompt-file",
            PROMPT,
            "--output",
            "streaming",
            "--auto-approve",
            "--trust",
        ]

    def home_files(self, settings: Settings) -> dict[str, str]:
        model = json.dumps(settings.model)
        config = "\n".join(
            [
                f"active_model = {model}",
                "enable_telemetry = false",
                "enable_update_checks = false",
                "",
                "[[providers]]",
                'name = "astraforge"',
                f"api_base = {json.dumps(settings.openai_base)}",
                'api_key_env_var = "OPENAI_API_KEY"',
                'api_style = "openai"',
                'backend = "generic"',
                "",
                "[[models]]",
                f"name = {model}",
                'provider = "astraforge"',
                f"alias = {model}",
                "",
            ]
        )
        return {".vibe/config.toml": config}

    def environment(self, settings: Settings) -> dict[str, str]:
        return {"PYTHONPATH": f"{ENGINE_ROOT}/lib", "NO_COLOR": "1"}

    def read(self, output: str) -> Transcript:
        # session entries: "message" (role, text parts) and "effect" (a tool call, its state)
        transcript = Transcript()
        for entry in json_lines(output):
            if entry.get("type") == "message" and entry.get("role") == "assistant":
                parts = entry.get("content") or []
                text = "".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))
                transcript.message("assistant", text)
            elif entry.get("type") == "effect":
                detail, state = entry.get("detail") or {}, entry.get("state") or {}
                result = state.get("output") or state.get("outputText")
                if isinstance(result, dict):  # a command's: its combined output
                    result = result.get("output") or result.get("stdout") or result
                transcript.tool(str(detail.get("toolName")), detail.get("input"), result)
        return transcript
