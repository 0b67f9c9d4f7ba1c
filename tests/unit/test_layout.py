"""The shape a reader relies on: small modules, a docstring on every public name, a pure
policy, and no private name imported across packages."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "runner" / "astraforge"
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))
MAX_LINES = 400


def name(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


@pytest.mark.parametrize("path", MODULES, ids=name)
def test_modules_stay_small(path: Path) -> None:
    lines = path.read_text().count("\n")
    assert lines < MAX_LINES, f"{name(path)} has {lines} lines; split it"


@pytest.mark.parametrize("path", MODULES, ids=name)
def test_public_names_say_what_they_are_for(path: Path) -> None:
    tree = ast.parse(path.read_text())
    assert ast.get_docstring(tree), f"{name(path)} has no module docstring"
    missing = [
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and not node.name.startswith("_")
        and not ast.get_docstring(node)
    ]
    assert not missing, f"{name(path)}: no docstring on {', '.join(missing)}"


def imports(path: Path) -> list[tuple[str, list[str]]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
    return found


def test_policy_is_pure() -> None:
    for path in (PACKAGE / "policy").rglob("*.py"):
        for module, _ in imports(path):
            assert not module.startswith(("astraforge.forges", "astraforge.git")), (
                f"{name(path)} imports {module}"
            )


def test_no_private_name_is_imported_across_packages() -> None:
    for path in MODULES:
        package = path.relative_to(PACKAGE).parts[0]
        for module, names in imports(path):
            if not module.startswith("astraforge."):
                continue
            other = module.split(".")[1]
            private = [n for n in names if n.startswith("_") and n != "__version__"]
            assert other == package or not private, f"{name(path)} imports {private} from {module}"
