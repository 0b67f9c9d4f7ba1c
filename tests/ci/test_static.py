"""Static checks of the action, the example workflows and the GitLab template."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.ci.conftest import ROOT, tool

WORKFLOWS = sorted((ROOT / "action" / "workflows").glob("*.yml"))
OWN = sorted((ROOT / ".github" / "workflows").glob("*.yml"))  # release.yml, ci.yml


@pytest.mark.parametrize("path", [ROOT / "action.yml", *WORKFLOWS, *OWN], ids=lambda p: p.name)
def test_zizmor_finds_nothing(path: Path) -> None:
    result = subprocess.run(
        [tool("zizmor"), "--offline", "--config", str(ROOT / "action" / "zizmor.yml"), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


def test_actionlint_finds_nothing() -> None:
    result = subprocess.run(
        [tool("actionlint"), *map(str, [*WORKFLOWS, *OWN])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_example_workflows_follow_the_rules(path: Path) -> None:
    text = path.read_text()
    workflow: dict[Any, Any] = yaml.safe_load(text)
    assert workflow["permissions"] == {}
    assert "pull_request_target" not in text
    assert workflow["concurrency"]["cancel-in-progress"] is False
    for job in workflow["jobs"].values():
        assert job["timeout-minutes"] <= 60
        assert "permissions" in job
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False
            assert "${{" not in str(step.get("run", ""))  # expressions only through env:


def test_action_passes_inputs_through_env_only() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    inputs = set(action["inputs"])
    assert {
        "trigger_label",
        "trigger_phrase",
        "model",
        "openai_api_key",
        "openai_base_url",
        "github_token",
        "config_file",
        "sandbox_image",
        "max_turns",
        "max_cost_usd",
        "timeout_minutes",
        "draft",
        "dry_run",
    } <= inputs
    assert set(action["outputs"]) == {
        "conclusion",
        "pr_url",
        "pr_number",
        "branch",
        "trajectory_file",
        "report_file",
        "cost_usd",
        "input_tokens",
        "output_tokens",
        "turns",
        "duration_seconds",
        "version",
    }
    for step in action["runs"]["steps"]:
        assert "${{" not in step.get("run", "")
        assert "inputs." not in str(step.get("with", ""))  # the cache steps take no input
    run_env = next(s for s in action["runs"]["steps"] if s.get("id") == "run")["env"]
    used = {m for v in run_env.values() for m in re.findall(r"inputs\.(\w+)", v)}
    assert used == inputs


def interpolate(template: Path, inputs: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The template's two documents, with `$[[ inputs.x ]]` replaced as GitLab would."""
    header, body = template.read_text().split("\n---\n")
    spec = yaml.safe_load(header)["spec"]["inputs"]
    values = {name: (inputs or {}).get(name, item.get("default")) for name, item in spec.items()}

    def replace(match: re.Match[str]) -> str:
        value = values[match[1]]
        return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()

    return [
        yaml.safe_load(header),
        yaml.safe_load(re.sub(r"\$\[\[ inputs\.(\w+) \]\]", replace, body)),
    ]


def test_gitlab_template_validates_against_gitlab_ci_schema(tmp_path: Path) -> None:
    template = ROOT / "gitlab-ci" / "astraforge.gitlab-ci.yml"
    header, job = interpolate(template)
    files = []
    for name, document in (("header.yml", header), ("job.yml", job)):
        path = tmp_path / name
        path.write_text(yaml.safe_dump(document))
        files.append(str(path))
    for example in sorted((ROOT / "gitlab-ci" / "examples").glob("*.yml")):
        files.append(str(example))
    files.append(str(ROOT / ".gitlab-ci.yml"))  # the component project's own pipeline
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert job["astraforge"]["services"][0]["name"] == "docker:27-dind"
    assert job["astraforge"]["artifacts"]["reports"]["dotenv"].endswith("astraforge.env")
    rules = [r["if"] for r in job["astraforge"]["rules"]]
    assert '$CI_PIPELINE_SOURCE == "trigger"' in rules


def test_the_gitlab_component_installs_with_uv_from_a_kept_cache() -> None:
    body = (ROOT / "templates" / "astraforge.yml").read_text().split("\n---\n")[1]
    job = yaml.safe_load(body)["astraforge"]
    assert job["cache"]["paths"] == [".astraforge-cache/"]
    assert job["cache"]["when"] == "always"
    script = "\n".join(job["script"])
    assert 'UV_CACHE_DIR="$CI_PROJECT_DIR/.astraforge-cache/uv"' in script
    assert "uv==0.13.9" in script
    assert "uv_version=0.13.9" in (ROOT / "action" / "install.sh").read_text()
