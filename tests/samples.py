"""Sample repositories with real bugs, and real crashes of them from a deployment path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Ada Lovelace",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada Lovelace",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
}

PY_FILES = {
    "shop/__init__.py": "",
    "shop/cart.py": (
        '"""Shopping cart arithmetic."""\n'
        "\n"
        "\n"
        "def average_price(items):\n"
        '    total = sum(item["price"] for item in items)\n'
        "    return total / len(items)\n"
    ),
    "shop/app.py": (
        "from shop.cart import average_price\n\n\ndef main():\n    return average_price([])\n"
    ),
    "tests/test_cart.py": (
        "from shop.cart import average_price\n"
        "\n"
        "\n"
        "def test_average():\n"
        '    assert average_price([{"price": 2}, {"price": 4}]) == 3\n'
    ),
    "AGENTS.md": "# Agent notes\n\nUse type hints. Keep functions small.\n",
    "pyproject.toml": "[tool.pytest.ini_options]\ntestpaths = ['tests']\n",
}

JS_FILES = {
    "package.json": json.dumps({"name": "cart", "scripts": {"test": "node --test"}}) + "\n",
    "src/cart.js": (
        "'use strict';\n"
        "\n"
        "function total(cart) {\n"
        "  return cart.items.reduce((sum, item) => sum + item.price, 0);\n"
        "}\n"
        "\n"
        "module.exports = { total };\n"
    ),
    "src/index.js": (
        "'use strict';\nconst { total } = require('./cart');\n\nconsole.log(total({}));\n"
    ),
}


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args], env=GIT_ENV, capture_output=True, text=True, check=True
    )
    return result.stdout


def make_repo(root: Path, files: dict[str, str], message: str = "Initial version") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)
    return root


def deploy(repo: Path, target: Path) -> Path:
    """A copy of the repository's files at a deployment path, as a server would run them."""
    shutil.copytree(repo, target, ignore=shutil.ignore_patterns(".git"))
    return target


SENTRY_CAPTURE = """
import json, sys
import sentry_sdk

def keep(event, hint):
    with open(sys.argv[1], "w") as handle:
        json.dump(event, handle, default=str)
    return None

sentry_sdk.init(dsn="http://public@127.0.0.1:9/1", before_send=keep, default_integrations=False,
                release="shop@1.0.0", environment="production")
sentry_sdk.add_breadcrumb(category="http", message="GET /cart/average", level="info")
from shop.app import main
try:
    main()
except Exception:
    sentry_sdk.capture_exception()
sentry_sdk.flush()
"""


def python_sentry_event(deployed: Path, out: Path) -> dict[str, Any]:
    """Run the deployed app; return the event sentry-sdk would have sent for its crash."""
    script = out.parent / "capture.py"
    script.write_text(SENTRY_CAPTURE)
    subprocess.run(
        [sys.executable, str(script), str(out)],
        cwd=deployed,
        env={**os.environ, "PYTHONPATH": str(deployed)},
        check=True,
    )
    event: dict[str, Any] = json.loads(out.read_text())
    return event


def python_traceback(deployed: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", "from shop.app import main; main()"],
        cwd=deployed,
        env={**os.environ, "PYTHONPATH": str(deployed)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    return result.stderr


def node_stack(deployed: Path) -> str:
    result = subprocess.run(
        ["node", "src/index.js"], cwd=deployed, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    return result.stderr


def event_alert(event: dict[str, Any]) -> dict[str, Any]:
    """A Sentry integration-platform `event_alert` webhook carrying ``event``."""
    event = {
        **event,
        "issue_id": "4242",
        "url": "https://sentry.io/api/0/projects/acme/shop/events/" + event["event_id"] + "/",
        "web_url": "https://acme.sentry.io/issues/4242/events/" + event["event_id"] + "/",
    }
    return {
        "action": "triggered",
        "installation": {"uuid": "7a485448-a9e2-4c85-8a3c-4f44175783c9"},
        "data": {"event": event, "triggered_rule": "Errors in production"},
        "actor": {"type": "application", "id": "sentry", "name": "Sentry"},
    }


def api_event(event: dict[str, Any]) -> dict[str, Any]:
    """The same event as Sentry's REST API returns it: interfaces under ``entries``."""
    entries = [
        {"type": "exception", "data": event["exception"]},
        {"type": "breadcrumbs", "data": event.get("breadcrumbs") or {"values": []}},
    ]
    rest = {k: v for k, v in event.items() if k not in ("exception", "breadcrumbs")}
    return {
        **rest,
        "id": event["event_id"],
        "eventID": event["event_id"],
        "groupID": "4242",
        "entries": entries,
        "tags": [{"key": "environment", "value": "production"}],
    }
