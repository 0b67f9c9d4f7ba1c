"""The one way to read files shipped with AstraForge (prompts, templates, policies, examples).

Installed, they live inside the wheel under ``astraforge/_data``; in a source checkout they
are the top-level folders of the repository. The Jinja templates (PR body, comments, report)
are part of the package, in ``astraforge/templates``; the top-level ``templates/`` is the
GitLab CI/CD component. Nothing is ever read from the current
directory, which is the user's repository.
"""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from astraforge.errors import AstraForgeError

KINDS = ("prompts", "templates", "policies", "examples", "workflows", "gitlab")
# Where each kind lives in a source checkout (installed: astraforge/_data/<kind>).
SOURCE_FOLDERS = {"workflows": "action/workflows", "gitlab": "gitlab-ci"}


def _root(kind: str) -> Traversable:
    if kind not in KINDS:
        raise ValueError(f"unknown resource kind {kind!r}")
    if kind == "templates":  # Jinja templates live inside the package itself
        return resources.files("astraforge").joinpath("templates")
    packaged = resources.files("astraforge").joinpath("_data", kind)
    if packaged.is_dir():
        return packaged
    # Source checkout (editable install): the folder beside runner/.
    return Path(__file__).resolve().parents[2] / SOURCE_FOLDERS.get(kind, kind)


def _find(kind: str, name: str) -> Traversable:
    node = _root(kind)
    for part in filter(None, name.split("/")):
        node = node.joinpath(part)
    return node


def _missing(kind: str, name: str, what: str) -> AstraForgeError:
    return AstraForgeError(
        f"bundled {what} {kind}/{name} is missing",
        "reinstall AstraForge; the package is incomplete",
    )


def resource(kind: str, name: str) -> Traversable:
    """A shipped file, e.g. ``resource("examples", "payloads/sentry-event-alert.json")``."""
    node = _find(kind, name)
    if not node.is_file():
        raise _missing(kind, name, "resource")
    return node


def resource_dir(kind: str, name: str) -> Traversable:
    """A shipped folder, e.g. ``resource_dir("examples", "demo/repo")``."""
    node = _find(kind, name)
    if not node.is_dir():
        raise _missing(kind, name, "folder")
    return node


def read_text(kind: str, name: str) -> str:
    """A shipped file's text."""
    return resource(kind, name).read_text(encoding="utf-8")


def list_names(kind: str, folder: str = "") -> list[str]:
    """The names in a shipped folder."""
    node = _find(kind, folder)
    if not node.is_dir():
        return []
    return sorted(child.name for child in node.iterdir() if child.is_file())
