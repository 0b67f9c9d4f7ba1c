"""The agent's tools against real sandboxes: results, limits, and confinement of every file
tool (``..``, absolute paths, symlinks leading out)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.conftest import config_for

from astraforge.agent.tools import MAX_MATCHES, TOOLS, Toolbox, specs
from astraforge.sandbox import open_sandbox

FILE_TOOLS = ["read_file", "write_file", "edit_file", "search", "list_dir"]


@pytest.fixture(params=["docker", "bwrap"])
def toolbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Toolbox]:
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "calc.py").write_text("def add(a, b):\n    return a - b\n\n\nVALUE = 1\n")
    (repo / "dup.txt").write_text("same\nsame\n")
    (repo / "blob.bin").write_bytes(b"\0\1\2binary")
    os.symlink("/proc/self/environ", repo / "leak")
    os.symlink("/etc", repo / "etcdir")
    os.symlink("pkg/calc.py", repo / "alias.py")
    with open_sandbox(config_for(str(request.param)), repo) as box:
        yield Toolbox(box)


def run(toolbox: Toolbox, name: str, **arguments: object) -> tuple[bool, str]:
    result = toolbox.call(name, json.dumps(arguments))
    return result.ok, result.content


def arguments_for(tool: str, path: str) -> dict[str, object]:
    return {
        "read_file": {"path": path},
        "write_file": {"path": path, "content": "owned\n"},
        "edit_file": {"path": path, "old": "root", "new": "owned"},
        "search": {"pattern": "root", "path": path},
        "list_dir": {"path": path},
    }[tool]


@pytest.mark.parametrize("tool", FILE_TOOLS)
@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../../etc/passwd", "outside the repository"),
        ("pkg/../../etc", "outside the repository"),
        ("/etc/passwd", "outside the repository"),
        ("leak", "symlink leading outside"),
        ("etcdir/passwd", "symlink leading outside"),
    ],
)
def test_file_tools_are_confined(toolbox: Toolbox, tool: str, path: str, why: str) -> None:
    ok, content = run(toolbox, tool, **arguments_for(tool, path))
    assert not ok
    assert why in content
    assert "root:" not in content
    assert "PATH=" not in content


def test_absolute_paths_inside_the_workspace_and_inner_symlinks_work(toolbox: Toolbox) -> None:
    ok, content = run(toolbox, "read_file", path="/workspace/pkg/calc.py")
    assert ok
    assert "     2\t    return a - b" in content
    ok, content = run(toolbox, "read_file", path="alias.py")
    assert ok
    assert "def add" in content


def test_read_file_numbers_lines_and_takes_ranges(toolbox: Toolbox) -> None:
    ok, content = run(toolbox, "read_file", path="pkg/calc.py", start_line=2, end_line=2)
    assert ok
    assert content.splitlines() == ["pkg/calc.py: lines 2-2 of 5", "     2\t    return a - b"]
    ok, content = run(toolbox, "read_file", path="pkg/calc.py", start_line=9)
    assert not ok
    assert "has 5 lines" in content
    ok, content = run(toolbox, "read_file", path="blob.bin")
    assert not ok
    assert "binary file" in content
    ok, content = run(toolbox, "read_file", path="missing.py")
    assert not ok
    assert "no such file" in content


def test_edit_file_needs_exactly_one_match(toolbox: Toolbox) -> None:
    ok, content = run(toolbox, "edit_file", path="dup.txt", old="same", new="x")
    assert not ok
    assert "occurs 2 times" in content
    ok, content = run(toolbox, "edit_file", path="pkg/calc.py", old="a + b", new="x")
    assert not ok
    assert "was not found" in content
    ok, content = run(toolbox, "edit_file", path="pkg/calc.py", old="a - b", new="a + b")
    assert ok
    assert "line 2" in content
    assert toolbox.sandbox.read_file("pkg/calc.py").decode().splitlines()[1] == "    return a + b"


def test_write_file_creates_directories(toolbox: Toolbox) -> None:
    ok, content = run(toolbox, "write_file", path="new/dir/file.py", content="x = 1\n")
    assert ok
    assert "wrote 6 bytes" in content
    assert toolbox.sandbox.read_file("new/dir/file.py") == b"x = 1\n"
    changes = toolbox.sandbox.changes()
    assert changes.added == ["new/dir/file.py"]


def test_search_is_capped_and_reports_no_match(toolbox: Toolbox) -> None:
    lines = "".join(f"needle {i}\n" for i in range(MAX_MATCHES + 50))
    run(toolbox, "write_file", path="many.txt", content=lines)
    ok, content = run(toolbox, "search", pattern="needle [0-9]+", path="many.txt")
    assert ok
    assert len(content.splitlines()) == MAX_MATCHES + 1
    assert "more than 200 matches" in content
    ok, content = run(toolbox, "search", pattern="def (add|sub)")
    assert ok
    assert content.strip() == "./pkg/calc.py:1:def add(a, b):"
    ok, content = run(toolbox, "search", pattern="no such text anywhere")
    assert ok
    assert content.startswith("no matches")
    ok, content = run(toolbox, "search", pattern="(unclosed")
    assert not ok
    assert "search failed" in content


def test_list_dir_marks_kinds(toolbox: Toolbox) -> None:
    ok, content = run(toolbox, "list_dir", path=".")
    assert ok
    entries = set(content.splitlines())
    assert {"pkg/", "dup.txt", "leak@", "alias.py@"} <= entries


def test_shell_reports_exit_code_streams_and_timeouts(toolbox: Toolbox) -> None:
    result = toolbox.call("shell", json.dumps({"command": "echo out; echo err >&2; exit 3"}))
    assert not result.ok
    assert result.exit_code == 3
    assert result.content.splitlines()[1:] == ["--- stdout ---", "out", "--- stderr ---", "err"]
    result = toolbox.call("shell", json.dumps({"command": "sleep 30", "timeout": 1}))
    assert "timed out after 1s" in result.content


def test_shell_honours_a_command_check(toolbox: Toolbox) -> None:
    checked = Toolbox(toolbox.sandbox, check_command=lambda c: "no curl" if "curl" in c else None)
    result = checked.call("shell", json.dumps({"command": "curl http://127.0.0.1/"}))
    assert result.refused
    assert not result.ok
    assert result.content == "refused by policy: no curl"


def test_tool_specs_are_the_public_contract() -> None:
    by_name = {s["function"]["name"]: s["function"] for s in specs()}
    assert list(by_name) == list(TOOLS)
    contract = {
        name: (sorted(f["parameters"]["properties"]), sorted(f["parameters"].get("required", [])))
        for name, f in by_name.items()
    }
    assert contract == {
        "shell": (["command", "timeout"], ["command"]),
        "read_file": (["end_line", "path", "start_line"], ["path"]),
        "write_file": (["content", "path"], ["content", "path"]),
        "edit_file": (["new", "old", "path"], ["new", "old", "path"]),
        "search": (["path", "pattern"], ["pattern"]),
        "list_dir": (["path"], []),
        "finish": (["root_cause", "summary", "tests"], ["summary"]),
    }
    assert all(f["description"] for f in by_name.values())
