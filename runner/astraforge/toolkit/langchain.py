"""LangChain tools bound to one :class:`~astraforge.toolkit.Sandbox` (``langchain-core``).

- ``sandbox_shell``: a command in the sandbox's persistent shell;
- ``sandbox_python_repl``: Python whose variables, imports and definitions carry over
  between calls (see :mod:`astraforge.toolkit.repl` for how, in a sandbox where no process
  outlives a command);
- ``sandbox_view_image``: an image file of the sandbox as image content, for multimodal
  models;
- ``sandbox_open_url_with_playwright``: a page opened by headless Chromium inside the
  sandbox (the sandbox's loopback, or a host the allow list lets through), returned as its
  text and a screenshot. The sandbox must be opened with ``browser=True``, and its image
  (or, with bubblewrap, the host) must have Debian's ``chromium``.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import secrets
import shlex
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool

from astraforge.toolkit.repl import DRIVER, STATE_DIR
from astraforge.toolkit.sandbox import BROWSER_ROOT, CHROMIUM, Sandbox

__all__ = ["sandbox_tools"]

MAX_OUTPUT = 20_000
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
PAGE = r"""
import json, sys
from playwright.sync_api import sync_playwright
import time
url, shot, chromium = sys.argv[1:4]
with sync_playwright() as p:
    browser = p.chromium.launch(
        executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
    )
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    for attempt in range(60):  # a server started with the call may still be coming up
        try:
            response = page.goto(url, timeout=30000)
            break
        except Exception:
            if attempt == 59:
                raise
            time.sleep(0.25)
    text = page.inner_text("body")
    page.screenshot(path=shot)
    print(json.dumps({"status": response.status if response else None,
                      "title": page.title(), "text": text}))
    browser.close()
"""


def sandbox_tools(sandbox: Sandbox) -> list[BaseTool]:
    """The four tools, bound to ``sandbox``."""

    def shell(command: str, timeout: float = 120.0) -> str:
        """Run a shell command in the sandbox's workspace; the directory and variables
        carry over between calls. Returns the exit code and the output."""
        result = sandbox.run(command, timeout=timeout)
        note = " (timed out)" if result.timed_out else ""
        return f"exit code {result.exit_code}{note}\n{result.output[-MAX_OUTPUT:]}"

    def python_repl(code: str) -> str:
        """Run Python code in the sandbox. Variables, imports and functions are kept for
        the next call; the value of a last expression is printed."""
        cell = f"{STATE_DIR}/cell-{secrets.token_hex(4)}.py"
        sandbox.write_private(f"{STATE_DIR}/driver.py", DRIVER.encode())
        sandbox.write_private(cell, code.encode())
        result = sandbox.run(
            f"python3 {STATE_DIR}/driver.py {cell} {STATE_DIR}; rm -f {cell}", timeout=300
        )
        return result.output[-MAX_OUTPUT:] or "(no output)"

    def view_image(path: str) -> list[dict[str, Any]]:
        """Show an image file of the sandbox (PNG, JPEG, GIF or WebP) to the model."""
        kind = mimetypes.guess_type(path)[0] or ""
        if kind not in IMAGE_TYPES:
            return [{"type": "text", "text": f"{path} is not a PNG, JPEG, GIF or WebP file"}]
        data = sandbox.read_file(path)
        return [{"type": "image", "base64": base64.b64encode(data).decode(), "mime_type": kind}]

    def open_url(url: str, serve: str | None = None) -> list[dict[str, Any]]:
        """Open a URL in a headless browser inside the sandbox (the sandbox's own
        localhost, or an allowed host) and return the page's text and a screenshot.
        ``serve`` is a command started first and stopped after, such as
        `python3 -m http.server 8000` (nothing keeps running between calls)."""
        if not sandbox.has_browser:
            return [{"type": "text", "text": "the sandbox was opened without browser=True"}]
        shot = f"/tmp/.astraforge-page-{secrets.token_hex(4)}.png"  # noqa: S108
        sandbox.write_private("/tmp/.astraforge-page.py", PAGE.encode())  # noqa: S108
        start = f"({serve}) >/tmp/.astraforge-serve.log 2>&1 & " if serve else ""
        result = sandbox.run(
            f"{start}PYTHONPATH={BROWSER_ROOT}/lib python3 /tmp/.astraforge-page.py "
            f"{shlex.quote(url)} {shot} {CHROMIUM}",
            timeout=120,
        )
        lines = result.output.strip().splitlines()
        if not result.ok or not lines or not lines[-1].startswith("{"):
            return [{"type": "text", "text": f"the page did not open: {result.output[-2000:]}"}]
        page = json.loads(lines[-1])
        image = base64.b64encode(sandbox.read_private(shot)).decode()
        text = f"{page['title']} (HTTP {page['status']})\n\n{page['text'][:MAX_OUTPUT]}"
        return [
            {"type": "text", "text": text},
            {"type": "image", "base64": image, "mime_type": "image/png"},
        ]

    return [
        StructuredTool.from_function(shell, name="sandbox_shell"),
        StructuredTool.from_function(python_repl, name="sandbox_python_repl"),
        StructuredTool.from_function(view_image, name="sandbox_view_image"),
        StructuredTool.from_function(open_url, name="sandbox_open_url_with_playwright"),
    ]
