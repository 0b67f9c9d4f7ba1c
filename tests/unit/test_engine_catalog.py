"""The engine catalogue: names, pins, command lines, configuration and output reading."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import get_args

import pytest

from astraforge.config.model import EngineName
from astraforge.engines import ENGINES, NAMES, get
from astraforge.engines.base import Settings, sections
from astraforge.engines.install import folder
from astraforge.engines.pins import NODE, PINS
from astraforge.engines.run import command_line
from astraforge.errors import UsageError

TOKEN = "af-run-token"
SETTINGS = Settings(
    model="some-model",
    env={"OPENAI_BASE_URL": "http://127.100.0.1:48100/v1", "OPENAI_API_KEY": TOKEN},
)


def test_the_config_accepts_exactly_the_engines_there_are() -> None:
    assert tuple(get_args(EngineName)) == NAMES
    assert set(ENGINES) <= set(PINS)


def test_an_unknown_engine_names_the_known_ones() -> None:
    with pytest.raises(UsageError) as caught:
        get("cursor")
    assert "codex" in caught.value.one_line()


@pytest.mark.parametrize("name", list(ENGINES))
def test_no_engine_writes_the_token_into_a_file_or_its_command_line(name: str) -> None:
    engine = ENGINES[name]
    files = json.dumps(engine.home_files(SETTINGS))
    assert TOKEN not in files
    assert TOKEN not in command_line(engine, SETTINGS)
    assert "some-model" in files + command_line(engine, SETTINGS)


def test_each_pin_has_its_own_install_folder() -> None:
    folders = {folder(engine) for engine in ENGINES.values()}
    assert len(folders) == len(ENGINES)
    assert all(engine.package.version in str(folder(engine)) for engine in ENGINES.values())
    assert NODE.name.startswith("node-linux-")


def test_the_final_message_splits_into_summary_root_cause_and_tests() -> None:
    parts = sections("**Summary:** guard the empty cart\nRoot cause: division by zero\nTests: ok")
    assert parts == {
        "summary": "guard the empty cart",
        "root cause": "division by zero",
        "tests": "ok",
    }
    assert sections("just words") == {"summary": "just words"}


def test_codex_events_read_as_messages_and_tool_calls() -> None:
    output = "\n".join(
        json.dumps(e)
        for e in [
            {"type": "thread.started", "thread_id": "t"},
            {
                "type": "item.completed",
                "item": {
                    "type": "command_execution",
                    "command": "ls",
                    "aggregated_output": "a\n",
                    "exit_code": 0,
                },
            },
            {"type": "item.completed", "item": {"type": "agent_message", "text": "Summary: done"}},
        ]
    )
    transcript = ENGINES["codex"].read("a banner line\n" + output)
    assert transcript.tool_calls == ["shell"]
    assert transcript.final == "Summary: done"
    failed = ENGINES["codex"].read(json.dumps({"type": "turn.failed", "error": {"message": "429"}}))
    assert failed.error == "429"


def test_engines_list_shows_every_engine_with_its_pin() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "astraforge", "engines", "list"],
        capture_output=True,
        text=True,
        check=True,
    )
    for engine in ENGINES.values():
        assert engine.package.spec in result.stdout
    assert result.stdout.startswith("builtin")


def test_the_action_and_the_gitlab_component_offer_every_engine() -> None:
    from pathlib import Path

    import yaml

    root = Path(__file__).parents[2]
    action = yaml.safe_load((root / "action.yml").read_text())
    description = action["inputs"]["engine"]["description"]
    component = next(yaml.safe_load_all((root / "templates" / "astraforge.yml").read_text()))
    assert component["spec"]["inputs"]["engine"]["options"] == list(NAMES)
    assert all(name in description for name in NAMES)
