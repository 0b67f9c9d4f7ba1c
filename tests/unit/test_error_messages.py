"""Errors that name the real fix: each message a user met while trying AstraForge, exactly."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests import samples
from tests.conftest import run_cli

BASE = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI"))}


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_an_unrecognizable_github_payload_names_the_real_flag(tmp_path: Path) -> None:
    payload = tmp_path / "p.json"
    payload.write_text(json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}))
    result = run_cli("event", "show", str(payload), "--source", "github", env=BASE)
    assert result.returncode == 4
    assert "--event-name" in result.stderr
    assert "--github-event" not in result.stderr
    assert "--source" not in result.stderr


def test_doctor_without_a_repository_says_how_to_name_one(tmp_path: Path) -> None:
    repo = samples.make_repo(tmp_path / "r", {".astraforge.yml": "sandbox:\n  backend: bwrap\n"})
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GITHUB_TOKEN": "ghp_" + "x" * 36}
    result = run_cli("doctor", "--repo", str(repo), "--forge", "github", env=env)
    assert (
        "FAIL  no github repository to check the token against (fix: set "
        "ASTRAFORGE_REPOSITORY=owner/name, or run doctor in a checkout whose origin remote is "
        "on github)"
    ) in result.stdout
    assert "--event" not in result.stdout


def test_doctor_checks_that_the_image_is_there_or_pullable(tmp_path: Path) -> None:
    absent = "127.0.0.1:9/astraforge-absent:1"  # a registry on loopback that does not answer
    repo = samples.make_repo(
        tmp_path / "r", {".astraforge.yml": f"sandbox:\n  backend: docker\n  image: {absent}\n"}
    )
    result = run_cli("doctor", "--repo", str(repo), "--forge", "local", env=BASE)
    found = [line for line in result.stdout.splitlines() if "sandbox image" in line]
    assert len(found) == 1
    assert found[0].startswith(
        f"FAIL  sandbox image {absent} is not on the Docker daemon and cannot be pulled ("
    )
    assert found[0].endswith(
        "(fix: build or load the image, or set sandbox.image to one the daemon has or use "
        "sandbox.backend: bwrap (bubblewrap works here))"
    )


def test_demo_with_docker_names_what_is_missing(tmp_path: Path) -> None:
    absent = "127.0.0.1:9/astraforge-absent:1"
    no_image = run_cli(
        "demo",
        "--dir",
        str(tmp_path / "a"),
        "--backend",
        "docker",
        env={**BASE, "ASTRAFORGE_DEMO_IMAGE": absent},
    )
    assert no_image.returncode == 6
    assert lines(no_image.stderr)[-1] == (
        f"error: the Docker daemon does not have the demo's image {absent} (Debian with node "
        "and git), and it cannot be pulled offline (fix: load or build an image named "
        f"{absent} with node and git, or run `astraforge demo --backend bwrap`)"
    )
    no_daemon = run_cli(
        "demo",
        "--dir",
        str(tmp_path / "b"),
        "--backend",
        "docker",
        env={**BASE, "DOCKER_HOST": "tcp://127.0.0.1:9"},
    )
    assert lines(no_daemon.stderr)[-1] == (
        "error: no Docker daemon is reachable (fix: start dockerd or set DOCKER_HOST, or run "
        "`astraforge demo --backend bwrap`)"
    )
    assert "scripts/ci-setup" not in no_image.stderr + no_daemon.stderr


def test_demo_into_a_non_empty_directory_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    result = run_cli("demo", "--dir", str(tmp_path / "busy"), env=BASE)
    assert result.returncode == 2
    assert lines(result.stderr)[-1] == (
        f"error: {tmp_path / 'busy'} is not empty (fix: pass an empty or new --dir)"
    )


def test_a_missing_event_file_is_said_once(tmp_path: Path) -> None:
    repo = samples.make_repo(tmp_path / "r", {"a.py": "x = 1\n"})
    missing = tmp_path / "nope.json"
    result = run_cli(
        "run",
        "--repo",
        str(repo),
        "--event",
        str(missing),
        "--forge",
        "local",
        "--forge-dir",
        str(tmp_path / "f"),
        "--out",
        str(tmp_path / "out"),
        env=BASE,
    )
    assert result.returncode == 2
    assert result.stderr.count(str(missing)) == 1
    assert lines(result.stderr) == [line for line in lines(result.stderr) if "nope.json" in line]
    assert "pr_url:" not in result.stdout
    assert "branch:" not in result.stdout


def test_configuration_errors_name_the_cause(tmp_path: Path) -> None:
    (tmp_path / ".astraforge.yml").write_text("trigger:\n  label: [unclosed\n")
    bad_yaml = run_cli("config", "show", "--repo", str(tmp_path), env=BASE)
    assert bad_yaml.returncode == 3
    assert "invalid YAML at line 3, column 1: " in bad_yaml.stderr
    assert "expected ',' or ']'" in bad_yaml.stderr
    (tmp_path / ".astraforge.yml").write_text("modle:\n  name: x\n")
    typo = run_cli("config", "show", "--repo", str(tmp_path), env=BASE)
    assert "modle: Extra inputs are not permitted (did you mean 'model'?)" in typo.stderr
    (tmp_path / ".astraforge.yml").write_text("")
    variable = run_cli(
        "config", "show", "--repo", str(tmp_path), env={**BASE, "ASTRAFORGE_MAX_TURNS": "abc"}
    )
    assert variable.returncode == 3
    assert "environment (ASTRAFORGE_MAX_TURNS): budgets.max_turns" in variable.stderr


def test_init_outside_a_repository_and_across_platforms(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    outside = run_cli("init", "--repo", str(plain), env=BASE)
    assert outside.returncode == 2
    assert f"error: {plain} is not a git repository (fix: " in outside.stderr
    repo = samples.make_repo(tmp_path / "r", {"a.py": "x = 1\n"})
    assert run_cli("init", "--repo", str(repo), env=BASE).returncode == 0
    config = (repo / ".astraforge.yml").read_text()
    gitlab = run_cli("init", "--repo", str(repo), "--platform", "gitlab", env=BASE)
    assert gitlab.returncode == 0, gitlab.stderr
    assert (repo / ".astraforge.yml").read_text() == config  # kept, not refused
    assert (repo / ".gitlab-ci.yml").exists()
    assert "astraforge-artifacts/" in (repo / ".gitignore").read_text().splitlines()


def test_a_local_request_names_its_real_source(tmp_path: Path) -> None:
    from astraforge import policy
    from astraforge.events import manual

    task = manual.parse({"request": "fix the thing"})
    auth = policy.authorize(task, policy.default().triggers, None)
    assert auth.allowed
    assert auth.reason == "a request given to astraforge directly, not by an event"
