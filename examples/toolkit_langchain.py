"""LangChain tools bound to one sandbox, called the way an agent calls them."""

from pathlib import Path

from astraforge.toolkit import Sandbox
from astraforge.toolkit.langchain import sandbox_tools

with Sandbox.open(Path.cwd(), backend="bwrap") as box:
    tools = {tool.name: tool for tool in sandbox_tools(box)}
    print(tools["sandbox_shell"].invoke({"command": "ls"}))
    tools["sandbox_python_repl"].invoke({"code": "answer = 6 * 7"})
    print(tools["sandbox_python_repl"].invoke({"code": "answer"}), end="")
