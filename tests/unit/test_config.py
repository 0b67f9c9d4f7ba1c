from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import run_cli

from astraforge import config
from astraforge.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write(repo: Path, text: str, name: str = ".astraforge.yml") -> Path:
    path = repo / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(tmp_path: Path) -> None:
    cfg = config.load(tmp_path, env={})
    assert cfg.trigger.label == "astraforge"
    assert cfg.publish.branch_prefix == "astraforge"
    assert cfg.model.api_key_env == "OPENAI_API_KEY"


def test_precedence_cli_over_env_over_file_over_defaults(tmp_path: Path) -> None:
    write(tmp_path, "model:\n  name: from-file\nbudgets:\n  max_turns: 7\n  max_cost_usd: 1.5\n")
    env = {"ASTRAFORGE_MODEL": "from-env", "ASTRAFORGE_MAX_TURNS": "9"}
    cfg = config.load(tmp_path, env=env, cli={"model.name": "from-cli", "sandbox.image": None})
    assert cfg.model.name == "from-cli"  # flag beats environment
    assert cfg.budgets.max_turns == 9  # environment beats file
    assert cfg.budgets.max_cost_usd == 1.5  # file beats default
    assert cfg.budgets.timeout_minutes == 30  # default
    assert cfg.sandbox.image == "python:3.12-slim"  # a None flag changes nothing


def test_empty_action_inputs_mean_unset(tmp_path: Path) -> None:
    write(tmp_path, "trigger:\n  label: fixme\n")
    cfg = config.load(tmp_path, env={"ASTRAFORGE_TRIGGER_LABEL": "", "ASTRAFORGE_DRAFT": " "})
    assert cfg.trigger.label == "fixme"
    assert cfg.publish.draft is False


def test_boolean_inputs(tmp_path: Path) -> None:
    cfg = config.load(tmp_path, env={"ASTRAFORGE_DRAFT": "true", "ASTRAFORGE_DRY_RUN": "false"})
    assert cfg.publish.draft is True
    assert cfg.dry_run is False


def test_config_file_from_environment(tmp_path: Path) -> None:
    (tmp_path / "ci").mkdir()
    write(tmp_path, "trigger:\n  label: from-env-file\n", "ci/astraforge.yml")
    cfg = config.load(tmp_path, env={"ASTRAFORGE_CONFIG_FILE": "ci/astraforge.yml"})
    assert cfg.trigger.label == "from-env-file"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("trigger:\n  lable: x\n", "trigger.lable: Extra inputs are not permitted"),
        ("budgets:\n  max_turns: many\n", "budgets.max_turns"),
        ("trigger: [1, 2\n", "invalid YAML at line"),
        ("- just\n- a list\n", "must be a mapping"),
        ("sandbox:\n  backend: vm\n", "sandbox.backend"),
    ],
)
def test_bad_files_name_the_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path, env={})
    assert str(path) in info.value.message
    assert message in info.value.message


def test_bad_environment_value_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"environment: budgets.max_turns"):
        config.load(tmp_path, env={"ASTRAFORGE_MAX_TURNS": "lots"})


def test_missing_named_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        config.load(tmp_path, file=Path("nope.yml"), env={})


def test_committed_schema_matches_the_model() -> None:
    committed = (ROOT / "docs" / "astraforge.schema.json").read_text(encoding="utf-8")
    assert committed == config.json_schema(), (
        "run: astraforge config schema > docs/astraforge.schema.json"
    )


def test_schema_documents_every_field() -> None:
    schema = json.loads(config.json_schema())
    trigger = schema["$defs"]["TriggerConfig"]["properties"]
    assert {"label", "command", "mention", "bot_logins", "alert_levels"} <= set(trigger)
    assert all("description" in spec for spec in trigger.values())
    assert schema["additionalProperties"] is False


def test_cli_config_schema_and_show(tmp_path: Path, clean_env: None) -> None:
    result = run_cli("config", "schema")
    assert result.returncode == 0
    assert json.loads(result.stdout)["title"].startswith("AstraForge configuration")
    write(tmp_path, "publish:\n  draft: true\n")
    shown = run_cli("config", "show", "--repo", str(tmp_path))
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["publish"]["draft"] is True


def test_cli_bad_config_is_one_line_exit_3(tmp_path: Path, clean_env: None) -> None:
    write(tmp_path, "unknown_key: 1\n")
    result = run_cli("config", "show", "--repo", str(tmp_path))
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1
    assert "unknown_key" in result.stderr
