"""A Deep Agents agent whose files and shell live in AstraForge's sandbox."""

import sys
from pathlib import Path

from deepagents import create_deep_agent
from langchain_core.language_models import BaseChatModel

from astraforge.toolkit import Sandbox
from astraforge.toolkit.deepagents import SandboxBackend


def main(model: str | BaseChatModel) -> str:  # "openai:gpt-4.1", or a chat model
    with Sandbox.open(Path.cwd(), backend="bwrap") as box:
        agent = create_deep_agent(model=model, backend=SandboxBackend(box))
        agent.invoke({"messages": [{"role": "user", "content": "Add a test for add()"}]})
        return box.changes()


if __name__ == "__main__":
    print(main(sys.argv[1]))
