"""A real Deep Agents agent, with a scripted chat model, whose file tools and shell run in
AstraForge's sandbox through :class:`~astraforge.toolkit.deepagents.SandboxBackend`."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from deepagents import create_deep_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage
from tests.integration.conftest import IMAGE, make_repo

from astraforge.toolkit import Sandbox
from astraforge.toolkit.deepagents import SandboxBackend


class ScriptedModel(GenericFakeChatModel):
    """LangChain's fake chat model, replying with tool calls in order."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedModel:
        return self


def git_status(repo: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def step(name: str, **args: Any) -> AIMessage:
    return AIMessage(
        content="", tool_calls=[{"name": name, "args": args, "id": name, "type": "tool_call"}]
    )


@pytest.mark.parametrize("backend", ["bwrap", "docker"])
def test_a_deep_agent_lists_writes_and_executes_inside_the_sandbox(
    tmp_path: Path, backend: str
) -> None:
    repo = make_repo(tmp_path)
    before = git_status(repo)
    script = iter(
        [
            step("ls", path="/workspace"),
            step(
                "write_file",
                file_path="/workspace/hello.py",
                content="print('hello from', __import__('os').getuid())\n",
            ),
            step(
                "execute",
                command="cd /workspace && python3 hello.py && hostname",
            ),
            step("write_file", file_path="/etc/escape.txt", content="no"),
            AIMessage(content="done"),
        ]
    )
    with Sandbox.open(repo, backend=backend, image=IMAGE) as box:
        agent = create_deep_agent(model=ScriptedModel(messages=script), backend=SandboxBackend(box))
        state = agent.invoke({"messages": [{"role": "user", "content": "say hello"}]})
        patch = box.changes()
    results = {m.name: str(m.content) for m in state["messages"] if isinstance(m, ToolMessage)}
    assert "README.md" in results["ls"]
    assert "hello from 1000" in results["execute"]
    assert socket.gethostname() not in results["execute"]  # the sandbox's hostname
    assert (
        "permission" in results["write_file"].lower() or "denied" in results["write_file"].lower()
    )
    assert "+print('hello from', __import__('os').getuid())" in patch
    assert "new file mode 100644" in patch
    # the host's checkout is as it was: the agent wrote inside the sandbox only
    after = git_status(repo)
    assert after == before
    assert not (repo / "hello.py").exists()
    assert not Path("/etc/escape.txt").exists()
