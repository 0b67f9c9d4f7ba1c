"""The GitLab CI include template, run for real by gitlab-ci-local on a project that includes
it, against the local GitLab API server, the scripted model and the Docker sandbox."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.ci.conftest import FLOOR, ROOT, offline_install, project_copy, tool
from tests.ci.test_action import FIX
from tests.conftest import load_fixture
from tests.servers.gitlab import FakeGitLab
from tests.servers.llm import ScriptedLLM, scripted

TOKEN = "glpat-" + "CiLocalToken" * 2
API_REQUEST = {
    "CI_PIPELINE_SOURCE": "api",
    "ASTRAFORGE_REQUEST": "Return 0 for an empty cart",
    "GITLAB_USER_LOGIN": "root",
}
# The component, included the way GitLab's component projects test their own: by this
# project's path at this commit (gitlab-ci-local reads templates/astraforge.yml from the work
# tree for such a "local component").
INCLUDE = """include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/astraforge@$CI_COMMIT_SHA
    inputs:
      runner_package: .
      docker_host: unix:///var/run/docker.sock
      services: []
"""
# What `include: remote:` users get: the same file, by a local include here.
REMOTE_INCLUDE = INCLUDE.replace(
    "component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/astraforge@$CI_COMMIT_SHA",
    "local: gitlab-ci/astraforge.gitlab-ci.yml",
)


def run_pipeline(
    tmp_path: Path, variables: dict[str, str], llm: ScriptedLLM, server: FakeGitLab, project: Path
) -> subprocess.CompletedProcess[str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    command = [tool("gitlab-ci-local"), "--force-shell-executor", "--home", str(tmp_path / "home")]
    base = {
        "GITLAB_CI": "true",  # gitlab-ci-local says "false"; the runner must see GitLab
        "CI_COMMIT_REF_PROTECTED": "true",  # the job runs on protected refs only
        "CI_SERVER_URL": server.url,
        "GITLAB_TOKEN": TOKEN,
        "OPENAI_BASE_URL": llm.url,
        "OPENAI_API_KEY": "sk-test-" + "GlLlmKey00" * 3,
    }
    for key, value in {**base, **offline_install(), **variables}.items():
        command += ["--variable", f"{key}={value}"]
    result = subprocess.run(
        command, cwd=project, capture_output=True, text=True, timeout=900, check=False
    )
    (tmp_path / "gitlab-ci-local.log").write_text(result.stdout + result.stderr)
    return result


def dotenv(project: Path) -> dict[str, str]:
    text = (project / "astraforge-artifacts" / "astraforge.env").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def setup(tmp_path: Path, include: str = INCLUDE) -> tuple[Path, FakeGitLab]:
    project = project_copy(
        tmp_path / "shop", {".gitlab-ci.yml": include}, "https://gitlab.example.com/acme/shop.git"
    )
    server = FakeGitLab(tmp_path / "gl", TOKEN, "acme/shop")
    server.seed(project)
    server.add_member("root", 40)
    return project, server


def assert_mr(
    result: subprocess.CompletedProcess[str], project: Path, server: FakeGitLab, llm: ScriptedLLM
) -> dict[str, Any]:
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert llm.calls == 4
    assert len(server.mrs) == 1
    mr = server.mrs[1]
    assert "| `shop/cart.py` | modified | +1 −1 |" in mr["description"]
    assert mr["labels"] == ["astraforge"]
    values = dotenv(project)
    assert values["ASTRAFORGE_CONCLUSION"] == "fixed"
    assert values["ASTRAFORGE_PR_NUMBER"] == "1"
    assert values["ASTRAFORGE_PR_URL"].endswith("/acme/shop/-/merge_requests/1")
    assert values["ASTRAFORGE_BRANCH"] == mr["source_branch"]
    assert "section_start:" in log
    assert "AstraForge: agent in the sandbox" in log
    assert TOKEN not in log
    return values


def test_issue_webhook_through_a_pipeline_trigger(tmp_path: Path) -> None:
    project, server = setup(tmp_path)
    hook = load_fixture("gitlab/issue_hook.issue.open.json")
    hook["object_attributes"]["title"] = "Average of an empty cart crashes"
    hook["labels"] = [{"title": "astraforge"}]
    hook["object_attributes"]["labels"] = [{"title": "astraforge"}]
    hook["changes"]["labels"] = {"previous": [], "current": [{"title": "astraforge"}]}
    hook["project"]["path_with_namespace"] = "acme/shop"
    hook["user"]["username"] = "root"
    payload_file = tmp_path / "trigger-payload.json"
    payload_file.write_text(json.dumps(hook))
    with server, scripted(list(FIX)) as llm:
        result = run_pipeline(
            tmp_path,
            {"CI_PIPELINE_SOURCE": "trigger", "TRIGGER_PAYLOAD": str(payload_file)},
            llm,
            server,
            project,
        )
    assert_mr(result, project, server, llm)
    issue = hook["object_attributes"]["iid"]
    assert len(server.notes[issue]) == 1
    assert "proposes a fix" in server.notes[issue][0]["body"]


def test_a_failed_pipeline_webhook_continues_the_merge_request(tmp_path: Path) -> None:
    project, server = setup(tmp_path)
    hook = load_fixture("gitlab/pipeline_hook.json")
    hook["project"]["path_with_namespace"] = "acme/shop"
    with server:
        with scripted(list(FIX)) as llm:
            first = run_pipeline(
                tmp_path / "one",
                API_REQUEST,
                llm,
                server,
                project,
            )
        assert_mr(first, project, server, llm)
        branch = server.mrs[1]["source_branch"]
        hook["object_attributes"].update({"id": 31, "status": "failed", "ref": branch})
        hook["merge_request"].update(
            {"iid": 1, "source_branch": branch, "source_project_id": 42, "target_project_id": 42}
        )
        server.pipelines[31] = [
            {
                "id": 378,
                "name": "unit-tests",
                "status": "failed",
                "trace": "FAILED tests/test_cart.py::test_negative - AssertionError: -1 != 0\n",
            }
        ]
        payload_file = tmp_path / "pipeline-payload.json"
        payload_file.write_text(json.dumps(hook))
        with scripted(list(FLOOR)) as llm:
            result = run_pipeline(
                tmp_path / "two",
                {"CI_PIPELINE_SOURCE": "trigger", "TRIGGER_PAYLOAD": str(payload_file)},
                llm,
                server,
                project,
            )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert llm.calls == 2
    assert dotenv(project)["ASTRAFORGE_CONCLUSION"] == "fixed"
    assert len(server.mrs) == 1
    assert "CI: Pipeline for branch: master failed (unit-tests)" in server.mrs[1]["description"]
    assert server.push_options()[-1] == ["ci.skip"]
    assert TOKEN not in log


@pytest.mark.parametrize("include", [INCLUDE, REMOTE_INCLUDE], ids=["component", "remote"])
def test_plain_request_from_an_api_pipeline(tmp_path: Path, include: str) -> None:
    project, server = setup(tmp_path, include)
    with server, scripted(list(FIX)) as llm:
        result = run_pipeline(
            tmp_path,
            API_REQUEST,
            llm,
            server,
            project,
        )
    assert_mr(result, project, server, llm)


def test_push_pipelines_do_not_run_the_job(tmp_path: Path) -> None:
    project, server = setup(tmp_path)
    with server, scripted([]) as llm:
        result = run_pipeline(tmp_path, {}, llm, server, project)
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]  # the include resolved
    assert llm.calls == 0
    assert "astraforge starting" not in result.stdout


def test_unprotected_refs_do_not_run_the_job(tmp_path: Path) -> None:
    project, server = setup(tmp_path)
    with server, scripted([]) as llm:
        result = run_pipeline(
            tmp_path,
            {
                "CI_PIPELINE_SOURCE": "api",
                "ASTRAFORGE_REQUEST": "Return 0 for an empty cart",
                "CI_COMMIT_REF_PROTECTED": "false",
            },
            llm,
            server,
            project,
        )
    assert llm.calls == 0
    assert "astraforge starting" not in result.stdout


def test_the_component_and_the_remote_include_are_one_file() -> None:
    component = (ROOT / "templates" / "astraforge.yml").read_text()
    assert (ROOT / "gitlab-ci" / "astraforge.gitlab-ci.yml").read_text() == component, (
        "run: cp templates/astraforge.yml gitlab-ci/astraforge.gitlab-ci.yml"
    )


def test_every_input_is_described_typed_and_named_like_the_actions() -> None:
    import yaml

    spec = next(yaml.safe_load_all((ROOT / "templates" / "astraforge.yml").read_text()))
    inputs = spec["spec"]["inputs"]
    action = yaml.safe_load((ROOT / "action.yml").read_text())["inputs"]
    gitlab_only = {"stage", "image", "runner_package", "docker_host", "services"}
    assert set(inputs) - gitlab_only <= set(action)
    assert {"model", "max_turns", "draft", "network", "allow", "ci_max_rounds"} <= set(inputs)
    for name, field in inputs.items():
        assert field.get("description"), f"input {name} has no description"
        kind = field.get("type", "string")
        default = field["default"]
        expected = {"string": str, "number": (int, float), "boolean": bool, "array": list}[kind]
        assert isinstance(default, expected), f"input {name}: {default!r} is not a {kind}"
        if "options" in field:
            assert default in field["options"]
    assert inputs["draft"]["type"] == "boolean"
    assert inputs["max_cost_usd"]["type"] == "number"
