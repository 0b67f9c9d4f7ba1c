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
    write(
        tmp_path, "trigger:\n  label: from-file\n  command: /fix\nbudgets:\n  max_cost_usd: 1.5\n"
    )
    env = {"ASTRAFORGE_MODEL": "from-env", "ASTRAFORGE_TRIGGER_LABEL": "from-env"}
    cfg = config.load(tmp_path, env=env, cli={"model.name": "from-cli", "sandbox.image": None})
    assert cfg.model.name == "from-cli"  # flag beats environment
    assert cfg.trigger.label == "from-env"  # environment beats file
    assert cfg.trigger.command == "/fix"  # file beats default
    assert cfg.budgets.max_cost_usd == 1.5  # file lowers a budget
    assert cfg.budgets.timeout_minutes == 30  # default
    assert cfg.sandbox.image == "python:3.12-slim"  # a None flag changes nothing


def test_the_actions_default_image_yields_to_any_other_setting(tmp_path: Path) -> None:
    release = {"ASTRAFORGE_DEFAULT_SANDBOX_IMAGE": "ghcr.io/astraforge/astraforge-sandbox:0.1.0"}
    assert config.load(tmp_path, env=release).sandbox.image.endswith("astraforge-sandbox:0.1.0")
    write(tmp_path, "sandbox:\n  image: node:22-bookworm\n")
    assert config.load(tmp_path, env=release).sandbox.image == "node:22-bookworm"  # the repo's
    chosen = {**release, "ASTRAFORGE_SANDBOX_IMAGE": "python:3.13-slim"}  # the input
    assert config.load(tmp_path, env=chosen).sandbox.image == "python:3.13-slim"


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
    with pytest.raises(
        ConfigError, match=r"environment \(ASTRAFORGE_MAX_TURNS\): budgets.max_turns"
    ):
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


# -- trust: what a repository's own file may set ---------------------------------------------


def git_repo(path: Path, files: dict[str, str]) -> Path:
    import subprocess

    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git = ["git", "-C", str(path), "-c", "user.name=T", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    return path


@pytest.mark.parametrize(
    ("text", "key", "where"),
    [
        ("model:\n  base_url: http://127.0.0.1:9/v1\n", "model.base_url", "OPENAI_BASE_URL"),
        ("model:\n  api_key_env: GITHUB_TOKEN\n", "model.api_key_env", "MODEL_API_KEY_ENV"),
        ("model:\n  api: azure\n", "model.api", "ASTRAFORGE_MODEL_API"),
        ("model:\n  extra_headers: {X-A: b}\n", "model.extra_headers", "SETTINGS_FILE"),
        ("model:\n  prices: {m: {input: 0, output: 0}}\n", "model.prices", "SETTINGS_FILE"),
        ("context:\n  sentry_url: http://127.0.0.1:9\n", "context.sentry_url", "SENTRY_URL"),
        ("context:\n  sentry_token_env: GITHUB_TOKEN\n", "context.sentry_token_env", "TOKEN_ENV"),
        ("context:\n  personal_data: [email]\n", "context.personal_data", "PERSONAL_DATA"),
        ("sandbox:\n  include: [.env]\n", "sandbox.include", "SANDBOX_INCLUDE"),
        ("base_policy: loose.yml\n", "base_policy", "ASTRAFORGE_POLICY_FILE"),
    ],
)
def test_a_repository_cannot_set_trusted_keys(
    tmp_path: Path, text: str, key: str, where: str
) -> None:
    write(tmp_path, text)
    cfg = config.load(tmp_path, env={})
    default = config.Config()
    assert cfg.model_dump() == default.model_dump()  # ignored, every one of them
    assert len(cfg.warnings) == 1
    assert f"{key} is a trusted setting" in cfg.warnings[0]
    assert where in cfg.warnings[0]


def test_the_workflow_side_sets_trusted_keys(tmp_path: Path) -> None:
    env = {
        "OPENAI_BASE_URL": "http://127.0.0.1:1/v1",
        "ASTRAFORGE_MODEL_API_KEY_ENV": "MY_KEY",
        "SENTRY_URL": "https://sentry.example.com",
        "ASTRAFORGE_PERSONAL_DATA": "email, user_agent",
        "ASTRAFORGE_SANDBOX_INCLUDE": "generated/",
    }
    cfg = config.load(tmp_path, env=env)
    assert cfg.model.base_url == "http://127.0.0.1:1/v1"
    assert cfg.model.api_key_env == "MY_KEY"
    assert cfg.context.sentry_url == "https://sentry.example.com"
    assert cfg.context.personal_data == ["email", "user_agent"]
    assert cfg.sandbox.include == ["generated/"]
    assert cfg.warnings == []


def test_settings_file_is_trusted(tmp_path: Path) -> None:
    settings = tmp_path / "settings.yml"
    settings.write_text("model:\n  extra_headers: {X-Org: acme}\n  allowed: [small]\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    write(repo, "model:\n  name: small\n")
    cfg = config.load(repo, env={"ASTRAFORGE_SETTINGS_FILE": str(settings)})
    assert cfg.model.extra_headers == {"X-Org": "acme"}
    assert cfg.model.name == "small"  # on the workflow's allow list
    assert cfg.warnings == []


def test_model_name_only_from_the_allow_list(tmp_path: Path) -> None:
    write(tmp_path, "model:\n  name: o1-pro\n")
    cfg = config.load(tmp_path, env={})
    assert cfg.model.name == "gpt-4.1"
    assert "not on the workflow's list of allowed models" in cfg.warnings[0]
    allowed = config.load(tmp_path, env={"ASTRAFORGE_ALLOWED_MODELS": "gpt-4.1-mini,o1-pro"})
    assert allowed.model.name == "o1-pro"
    assert allowed.warnings == []


def test_a_repository_may_only_lower_budgets(tmp_path: Path) -> None:
    write(tmp_path, "budgets:\n  max_turns: 500\n  max_cost_usd: 1.0\n")
    cfg = config.load(tmp_path, env={"ASTRAFORGE_MAX_TURNS": "20"})
    assert cfg.budgets.max_turns == 20
    assert cfg.budgets.max_cost_usd == 1.0
    assert any("budgets.max_turns 500 is above the workflow's 20" in w for w in cfg.warnings)
    lower = config.load(tmp_path, env={"ASTRAFORGE_MAX_COST_USD": "3"})
    assert lower.budgets.max_cost_usd == 1.0  # lowering wins over the workflow's value


def test_the_file_is_read_from_the_base_commit_not_the_working_tree(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "r", {".astraforge.yml": "trigger:\n  label: committed\n"})
    write(repo, "trigger:\n  label: working-tree\nmodel:\n  base_url: http://127.0.0.1:9\n")
    cfg = config.load(repo, env={})
    assert cfg.trigger.label == "committed"
    assert cfg.model.base_url is None
    assert cfg.warnings == []


def test_the_default_branch_wins_over_a_checked_out_head(tmp_path: Path) -> None:
    import subprocess

    origin = git_repo(tmp_path / "origin", {".astraforge.yml": "trigger:\n  label: main\n"})
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
    git = ["git", "-C", str(clone), "-c", "user.name=T", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "checkout", "-qb", "attacker"], check=True)
    write(clone, "trigger:\n  label: attacker\n")
    subprocess.run([*git, "commit", "-qam", "head of a PR"], check=True)
    cfg = config.load(clone, env={})
    assert cfg.trigger.label == "main"  # origin/HEAD, not the PR head


def test_a_missing_named_file_in_the_base_commit(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "r", {"README.md": "x\n"})
    write(repo, "trigger:\n  label: uncommitted\n", "ci.yml")
    with pytest.raises(ConfigError, match=r"ci.yml: configuration file not found"):
        config.load(repo, env={"ASTRAFORGE_CONFIG_FILE": "ci.yml"})


def test_repository_policy_only_tightens(tmp_path: Path) -> None:
    policy_text = (
        "version: 1\n"
        "triggers:\n  permission: maintain\n  allowed_bots: ['renovate[bot]']\n"
        "sandbox:\n  network: setup-only\n  memory_mb: 512\n"
        "paths:\n  protected: [src/secure/**]\n"
        "diff:\n  max_files: 500\n  allow_binary: true\n"
        "secrets:\n  scan: false\n"
    )
    repo = git_repo(
        tmp_path / "r", {".astraforge.yml": "policy: policy.yml\n", "policy.yml": policy_text}
    )
    cfg = config.load(repo, env={})
    rules = config.load_policy(repo, cfg, {})
    base = config.load_policy(None, config.Config(), {})
    assert rules.triggers.permission == "maintain"  # tightened
    assert rules.sandbox.memory_mb == 512  # lowered
    assert "src/secure/**" in rules.paths.protected
    assert set(base.paths.protected) <= set(rules.paths.protected)
    assert rules.triggers.allowed_bots == []  # not added
    assert rules.sandbox.network == "none"
    assert rules.diff.max_files == base.diff.max_files
    assert rules.diff.allow_binary is False
    assert rules.secrets.scan is True
    refused = " ".join(cfg.warnings)
    for what in ("allowed_bots", "sandbox.network", "diff.max_files", "allow_binary", "scan"):
        assert what in refused
    assert all("may only tighten" in w for w in cfg.warnings)


def test_cli_prints_one_warning_line_per_ignored_key(tmp_path: Path, clean_env: None) -> None:
    write(tmp_path, "model:\n  base_url: http://127.0.0.1:9/v1\n  api_key_env: GITHUB_TOKEN\n")
    result = run_cli("config", "show", "--repo", str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(lines) == 2
    assert json.loads(result.stdout)["model"]["api_key_env"] == "OPENAI_API_KEY"


def test_the_network_and_allow_list_are_trusted_and_a_repository_may_only_narrow_them(
    tmp_path: Path,
) -> None:
    policy_text = (
        "version: 1\n"
        "sandbox:\n  network: allowlist\n"
        "  allow: [pypi.org, evil.test, 'docs.example.com:443']\n"
    )
    files = {
        ".astraforge.yml": "policy: policy.yml\nsandbox:\n  network: allowlist\n"
        "  allow: [evil.test]\n  allow_private: [10.0.0.1]\n",
        "policy.yml": policy_text,
    }
    repo = git_repo(tmp_path / "r", files)
    env = {"ASTRAFORGE_NETWORK": "allowlist", "ASTRAFORGE_ALLOW": "pypi.org, *.example.com"}
    cfg = config.load(repo, env=env)
    assert cfg.sandbox.allow == ["pypi.org", "*.example.com"]
    assert cfg.sandbox.allow_private == []  # the repository's file cannot set it
    rules = config.load_policy(repo, cfg, env)
    assert rules.sandbox.network == "allowlist"
    assert rules.sandbox.allow == ["pypi.org", "docs.example.com:443"]
    refused = " ".join(cfg.warnings)
    assert "'evil.test'" in refused
    assert "sandbox.allow_private" in refused
    assert "sandbox.network" in refused


def test_a_repository_cannot_trade_setup_network_for_an_allow_list(tmp_path: Path) -> None:
    policy_text = "version: 1\nsandbox:\n  network: allowlist\n  allow: [pypi.org]\n"
    repo = git_repo(
        tmp_path / "r", {".astraforge.yml": "policy: policy.yml\n", "policy.yml": policy_text}
    )
    env = {"ASTRAFORGE_NETWORK": "setup-only"}
    cfg = config.load(repo, env=env)
    rules = config.load_policy(repo, cfg, env)
    assert rules.sandbox.network == "setup-only"
    assert rules.sandbox.allow == []  # nothing trusted to narrow
    assert any("looser than the trusted 'setup-only'" in w for w in cfg.warnings)


def test_a_bad_allow_entry_names_the_entry_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"allow-list entry 'pypi\.org:http' has a bad port") as e:
        config.load(None, env={"ASTRAFORGE_ALLOW": "pypi.org:http"})
    assert "ASTRAFORGE_ALLOW" in str(e.value) or "sandbox.allow" in str(e.value)
