"""Every engine's package and version, in one place. A new version is one line here; the
install cache is keyed on it, so the next run installs the new one beside the old."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Literal

# npm's name for the runner's CPU, as platform packages spell it
ARCH = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(
    platform.machine().lower(), platform.machine().lower()
)


@dataclass(frozen=True)
class Package:
    """A package pinned to one version of a public registry."""

    registry: Literal["npm", "pypi"]
    name: str
    version: str

    @property
    def spec(self) -> str:
        """How the registry's installer names it: ``name@version`` or ``name==version``."""
        return (
            f"{self.name}@{self.version}"
            if self.registry == "npm"
            else f"{self.name}=={self.version}"
        )


# Node.js itself, from the npm registry (the official linux-x64 build as a package), installed
# beside every npm engine: the sandbox image needs no Node of its own, and gets the version
# the engines ask for (Claude Code and Qwen Code need Node 22).
NODE = Package("npm", f"node-linux-{ARCH}", "22.23.5")

PINS: dict[str, Package] = {
    "codex": Package("npm", "@openai/codex", "0.171.0"),
    "claude": Package("npm", "@anthropic-ai/claude-code", "2.1.332"),
    "gemini": Package("npm", "@google/gemini-cli", "0.61.0"),
    "opencode": Package("npm", "opencode-ai", "1.18.33"),
    # 7.8.1 names a platform package the registry lacks (@kilocode/cli-linux-x64@7.8.1: 404)
    "kilo": Package("npm", "@kilocode/cli", "7.7.7"),
    "qwen": Package("npm", "@qwen-code/qwen-code", "0.24.4"),
    # 3.0.3 pins certifi==2026.10.19, which the registry has only as 2026.10.19.post1
    "vibe": Package("pypi", "mistral-vibe", "3.0.2"),
    "aider": Package("pypi", "aider-chat", "0.86.2"),
    "deepagents": Package("pypi", "deepagents-code", "0.2.2"),
    "kimi": Package("pypi", "kimi-cli", "1.52.0"),
}

# Not an engine: the toolkit's page tool runs it in the sandbox with Debian's chromium.
PLAYWRIGHT = Package("pypi", "playwright", "1.65.2")
