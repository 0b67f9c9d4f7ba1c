"""The release workflow's build job, run by `act` on a tag push of a copy of this repository:
the wheel it builds carries the tag's version, installs into a fresh venv and runs the demo.
The publishing jobs need GitHub's OIDC and registries; here they are checked statically."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.ci.conftest import ROOT, WHEELHOUSE, act, git

WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"


def version() -> str:
    """The version the repository's files name (CHANGELOG.md's newest entry)."""
    text = (ROOT / "CHANGELOG.md").read_text()
    return text.split("\n## ", 1)[1].split()[0]


def tagged_copy(dest: Path, tag: str) -> Path:
    """This repository's files (tracked and new) in a fresh repository, tagged ``tag`` and its
    major version, with the CHANGELOG entry dated, as `scripts/release.py bump` leaves it."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    subprocess.run(
        [sys.executable, "scripts/release.py", "bump", tag.removeprefix("v")],
        cwd=dest,
        check=True,
        capture_output=True,
    )
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", f"Release {tag}")
    git(dest, "tag", tag)
    git(dest, "tag", tag.split(".")[0])  # the major tag, moved by an earlier release
    return dest


def run_build(tmp_path: Path, ws: Path, tag: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    event = {"ref": f"refs/tags/{tag}", "ref_name": tag, "created": True}
    result, artifacts = act(tmp_path, ws, "push", event, "release.yml", "-j", "build")
    return result, artifacts / "dist"


def test_the_build_job_makes_the_tags_wheel_which_installs_and_runs_the_demo(
    tmp_path: Path,
) -> None:
    tag = f"v{version()}"
    ws = tagged_copy(tmp_path / "ws", tag)
    result, dist = run_build(tmp_path, ws, tag)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "every pin, the image reference and CHANGELOG.md agree" in result.stdout
    assert "Checking dist/" in result.stdout  # twine check
    assert "PASSED" in result.stdout
    wheel = dist / f"astraforge-{version()}-py3-none-any.whl"
    sdist = dist / f"astraforge-{version()}.tar.gz"
    assert sorted(p.name for p in dist.iterdir()) == sorted([wheel.name, sdist.name])
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(f"astraforge-{version()}.dist-info/METADATA").decode()
    assert f"Version: {version()}\n" in metadata
    assert "Metadata-Version: 2.4\n" in metadata
    assert "astraforge/_data/prompts/engine.md.j2" in names
    assert "astraforge/_data/gitlab/astraforge.gitlab-ci.yml" in names
    with tarfile.open(sdist) as archive:
        assert f"astraforge-{version()}/CHANGELOG.md" in archive.getnames()

    # A user's install: a fresh venv, the wheel, its dependencies (from the wheelhouse .ci/run
    # fills, so nothing goes over the network here), then the README's first command.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-index",
         "--find-links", str(WHEELHOUSE), "--constraint", str(ROOT / "action" / "constraints.txt"),
         str(wheel)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    shown = subprocess.run(
        [str(venv / "bin" / "astraforge"), "--version"], capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip() == f"astraforge, version {version()}"
    demo = subprocess.run(
        [str(venv / "bin" / "astraforge"), "demo", "--dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        timeout=600,
        check=False,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    pull = json.loads((tmp_path / "demo" / "forge" / "pulls" / "1.json").read_text())
    assert pull["title"]
    assert (tmp_path / "demo" / "artifacts" / "report.html").is_file()


def test_a_tag_the_files_do_not_name_fails_the_build_before_anything_is_built(
    tmp_path: Path,
) -> None:
    ws = tagged_copy(tmp_path / "ws", f"v{version()}")
    git(ws, "tag", "v9.9.9")
    result, dist = run_build(tmp_path, ws, "v9.9.9")
    assert result.returncode != 0
    assert "templates/astraforge.yml (pin) names" in result.stdout + result.stderr
    assert "run `python scripts/release.py bump 9.9.9`" in result.stdout + result.stderr
    assert not dist.exists()


def jobs() -> dict[str, Any]:
    workflow: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return dict(workflow["jobs"])


def test_the_workflow_holds_no_token_and_grants_each_job_only_what_it_needs() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow["permissions"] == {}
    granted = {name: job["permissions"] for name, job in jobs().items()}
    assert granted == {
        "build": {"contents": "read"},
        "pypi": {"id-token": "write"},
        "images": {"contents": "read", "packages": "write"},
        "major-tag": {"contents": "write"},
    }
    text = WORKFLOW.read_text()
    assert "password:" not in jobs()["pypi"]["steps"][-1].get("with", {})  # OIDC, no token
    assert "secrets." not in text.replace("secrets.GITHUB_TOKEN", "")
    for job in jobs().values():
        for step in job["steps"]:
            uses = str(step.get("uses", ""))
            if uses:
                assert len(uses.split("@")[1].split()[0]) == 40, uses  # pinned by SHA
            if uses.startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False
            assert "${{" not in str(step.get("run", ""))  # expressions only through env:


@pytest.mark.parametrize(
    "image", ["images/sandbox.Dockerfile", "runner/astraforge/relay/Dockerfile"]
)
def test_each_released_image_is_built_with_provenance(image: str) -> None:
    images = jobs()["images"]
    assert image in [entry["file"] for entry in images["strategy"]["matrix"]["include"]]
    build = next(s for s in images["steps"] if "build-push-action" in str(s.get("uses")))
    assert build["with"]["provenance"] == "mode=max"
    assert build["with"]["sbom"] is True
    assert build["with"]["push"] == "${{ github.event_name == 'push' }}"  # dispatch: a dry run
    assert (ROOT / image).is_file()


def test_the_sandbox_image_installs_what_the_test_image_has() -> None:
    packages = (ROOT / "images" / "sandbox-packages.txt").read_text()
    assert packages.split() == ["python3", "git", "ca-certificates", "nodejs"]
    assert "images/sandbox-packages.txt" in (ROOT / "images" / "sandbox.Dockerfile").read_text()
    assert "images/sandbox-packages.txt" in (ROOT / "scripts" / "ci-setup").read_text()
