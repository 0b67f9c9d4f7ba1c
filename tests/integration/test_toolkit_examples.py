"""The toolkit's examples run as written (the README shows the same files), use only its
public names, and ``__all__`` lists what the toolkit offers."""

from __future__ import annotations

import ast
import importlib
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage
from tests.integration.conftest import make_repo
from tests.integration.test_toolkit_deepagents import ScriptedModel, step

ROOT = Path(__file__).parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("toolkit_*.py"))
PUBLIC = {"astraforge.toolkit", "astraforge.toolkit.langchain", "astraforge.toolkit.deepagents"}


def test_there_are_three_examples_and_the_readme_shows_each() -> None:
    assert [p.name for p in EXAMPLES] == [
        "toolkit_deepagents.py",
        "toolkit_langchain.py",
        "toolkit_sandbox.py",
    ]
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    for path in EXAMPLES:
        assert path.read_text() in blocks, f"README does not show {path.name} as it is"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_import_only_the_public_toolkit(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("astraforge"):
            assert node.module in PUBLIC, f"{path.name} imports {node.module}"
            module = importlib.import_module(str(node.module))
            for alias in node.names:
                assert alias.name in module.__all__, f"{alias.name} is not public"


def test_every_public_name_exists() -> None:
    for name in PUBLIC:
        module = importlib.import_module(name)
        assert module.__all__
        for public in module.__all__:
            assert getattr(module, public).__doc__, f"{name}.{public} has no docstring"


def run_example(name: str, cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT / "runner") + os.pathsep + str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_sandbox_example_runs(tmp_path: Path) -> None:
    out = run_example("toolkit_sandbox.py", make_repo(tmp_path))
    assert out.startswith("hello from the sandbox\n")
    assert "'hello.py'" in out
    assert "+print('hello from the sandbox')" in out


def test_the_langchain_example_runs(tmp_path: Path) -> None:
    out = run_example("toolkit_langchain.py", make_repo(tmp_path))
    assert "exit code 0" in out
    assert "README.md" in out
    assert out.endswith("42\n")


def test_the_deepagents_example_runs_with_a_scripted_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(make_repo(tmp_path))
    test = "from pkg.calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"
    model = ScriptedModel(
        messages=iter(
            [
                step("write_file", file_path="/workspace/test_calc.py", content=test),
                AIMessage(content="added"),
            ]
        )
    )
    main = runpy.run_path(str(ROOT / "examples" / "toolkit_deepagents.py"))["main"]
    patch = main(model)
    assert "+++ b/test_calc.py" in patch
    assert not Path("test_calc.py").exists()  # on the host, the checkout is untouched
