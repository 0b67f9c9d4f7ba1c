"""The engines from PyPI: aider. Installed as wheels into a folder put on ``PYTHONPATH``,
run with the sandbox's own ``python3`` (of the runner's Python version: the install checks)."""

from __future__ import annotations

import re

from astraforge.engines.base import ENGINE_ROOT, SCRATCH, Engine, Settings, Transcript
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
