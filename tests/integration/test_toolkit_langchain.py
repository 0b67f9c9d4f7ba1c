"""The LangChain tools, invoked through LangChain's tool interface on a real sandbox."""

from __future__ import annotations

import base64
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from tests.integration.conftest import IMAGE, make_repo

from astraforge.toolkit import Sandbox
from astraforge.toolkit.langchain import sandbox_tools


def call(tool: BaseTool, **args: Any) -> ToolMessage:
    message = tool.invoke({"name": tool.name, "args": args, "id": "call-1", "type": "tool_call"})
    assert isinstance(message, ToolMessage)
    return message


@pytest.fixture(params=["bwrap", "docker"])
def tools(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, BaseTool]]:
    with Sandbox.open(make_repo(tmp_path), backend=request.param, image=IMAGE) as box:
        yield {tool.name: tool for tool in sandbox_tools(box)}


def test_the_shell_tool_runs_in_the_sandbox(tools: dict[str, BaseTool]) -> None:
    out = call(tools["sandbox_shell"], command="cd pkg && id -u && cat calc.py")
    assert out.content == "exit code 0\n1000\ndef add(a, b):\n    return a - b\n"
    assert "pkg" in str(call(tools["sandbox_shell"], command="pwd").content)


def test_the_repl_keeps_variables_imports_and_functions(tools: dict[str, BaseTool]) -> None:
    repl = tools["sandbox_python_repl"]
    call(repl, code="import json\ntotal = 40\ndef double(x):\n    return 2 * x")
    assert call(repl, code="total += 2\ntotal").content == "42\n"
    assert call(repl, code="json.dumps({'d': double(total)})").content == "'{\"d\": 84}'\n"
    unpicklable = call(repl, code="handle = open('README.md')")
    assert "cannot be pickled: handle" in str(unpicklable.content)
    error = call(repl, code="1 / 0")
    assert "ZeroDivisionError" in str(error.content)
    assert call(repl, code="total").content == "42\n"


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_view_image_returns_a_png_made_in_the_sandbox(tools: dict[str, BaseTool]) -> None:
    code = f"open('dot.png', 'wb').write({png(3, 2, (255, 0, 0))!r})"
    call(tools["sandbox_python_repl"], code=code)
    out = call(tools["sandbox_view_image"], path="dot.png")
    (block,) = out.content
    assert isinstance(block, dict)
    assert block["type"] == "image"
    assert block["mime_type"] == "image/png"
    assert base64.b64decode(block["base64"]) == png(3, 2, (255, 0, 0))
    refused = call(tools["sandbox_view_image"], path="README.md")
    assert "not a PNG" in str(refused.content)


BROWSER_IMAGE = os.environ.get("ASTRAFORGE_TEST_BROWSER_IMAGE", "astraforge-sandbox:browser")


@pytest.mark.parametrize("backend", ["bwrap", "docker"])
def test_the_page_tool_opens_a_page_served_inside_the_sandbox(tmp_path: Path, backend: str) -> None:
    """Debian's chromium: the host's through bubblewrap, the image's with Docker."""
    repo = make_repo(tmp_path)
    (repo / "site").mkdir()
    (repo / "site" / "index.html").write_text(
        "<html><head><title>Shop</title></head>"
        "<body style='background:#0a6'><h1>Cart total: 42</h1></body></html>"
    )
    from tests.integration.conftest import commit

    commit(repo)
    with Sandbox.open(repo, backend=backend, image=BROWSER_IMAGE, browser=True) as box:
        tool = {t.name: t for t in sandbox_tools(box)}["sandbox_open_url_with_playwright"]
        out = call(
            tool,
            url="http://127.0.0.1:8765/index.html",
            serve="cd site && python3 -m http.server 8765 --bind 127.0.0.1",
        )
    text, image = out.content
    assert isinstance(text, dict)
    assert isinstance(image, dict)
    assert "Shop (HTTP 200)" in text["text"]
    assert "Cart total: 42" in text["text"]
    shot = base64.b64decode(image["base64"])
    assert shot.startswith(b"\x89PNG")
    assert len(set(shot[100:4000])) > 3  # not one flat colour: it drew something


def test_the_page_tool_needs_the_browser(tools: dict[str, BaseTool]) -> None:
    out = call(tools["sandbox_open_url_with_playwright"], url="http://127.0.0.1:1/")
    assert "browser=True" in str(out.content)
