"""Every place that names the release version agrees, and scripts/release.py keeps it so."""

from __future__ import annotations

import datetime
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "release.py"
FILES = [
    "templates/astraforge.yml",
    "gitlab-ci/astraforge.gitlab-ci.yml",
    "action.yml",
    "README.md",
    "CHANGELOG.md",
]


def release(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(root), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def newest_changelog_version() -> str:
    entry = re.search(r"^## (\d+\.\d+\.\d+\S*)", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert entry, "CHANGELOG.md has no release entry"
    return entry[1]


def test_the_pins_the_image_and_the_changelog_name_one_version() -> None:
    version = newest_changelog_version()
    assert f"default: astraforge=={version}\n" in (ROOT / "templates/astraforge.yml").read_text()
    assert f"ghcr.io/astraforge/astraforge-sandbox:{version}\n" in (ROOT / "action.yml").read_text()
    result = release(ROOT, "check", f"v{version}")
    # Before `bump` dates the entry, the only complaint allowed is "unreleased".
    problems = [line for line in result.stderr.splitlines() if "as unreleased" not in line]
    assert problems == [], result.stderr


def test_constraints_pin_every_dependency_within_its_declared_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for line in (ROOT / "action" / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.lower().replace("_", "-")] = version
    assert "astraforge" not in pins  # the runner itself is the action's own checkout
    for text in project["dependencies"]:
        requirement = Requirement(text)
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"action/constraints.txt does not pin {name}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"action/constraints.txt pins {name}=={pins[name]}, pyproject.toml asks {text}"
        )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    for name in FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)
    return tmp_path


def test_bump_dates_the_open_entry_and_names_the_version_everywhere(copy: Path) -> None:
    today = datetime.date.today().isoformat()
    version = newest_changelog_version()
    assert release(copy, "bump", version).returncode == 0  # the open entry gets its date
    assert release(copy, "check", f"v{version}").returncode == 0
    assert f"## {version} - {today}\n" in (copy / "CHANGELOG.md").read_text()
    bumped = release(copy, "bump", "0.2.0")  # after a release: a new entry on top
    assert bumped.returncode == 0, bumped.stderr
    assert release(copy, "check", "v0.2.0").returncode == 0
    assert release(copy, "check", f"v{version}").returncode == 1
    changelog = (copy / "CHANGELOG.md").read_text()
    assert changelog.index(f"## 0.2.0 - {today}\n") < changelog.index(f"## {version} - {today}")
    for name in FILES[:4]:
        assert "0.2.0" in (copy / name).read_text(), name
        assert f"=={version}" not in (copy / name).read_text(), name


@pytest.mark.parametrize(
    ("tag", "says"),
    [
        ("v9.9.9", "templates/astraforge.yml (pin) names "),
        ("v1", "is not vMAJOR.MINOR.PATCH"),
        ("1.0.0", "is not vMAJOR.MINOR.PATCH"),
    ],
)
def test_a_tag_the_files_do_not_name_is_refused_with_the_fix(
    copy: Path, tag: str, says: str
) -> None:
    result = release(copy, "check", tag)
    assert result.returncode == 1
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: ")
    assert says in first
    if tag == "v9.9.9":
        assert "run `python scripts/release.py bump 9.9.9`" in first
        # the two pins, their two include lines, the image, README's include line, the entry
        assert len(result.stderr.splitlines()) == 7


def test_an_undated_entry_is_not_released(copy: Path) -> None:
    version = newest_changelog_version()
    text = (copy / "CHANGELOG.md").read_text()
    text = re.sub(
        rf"^## {re.escape(version)}.*$", f"## {version} (unreleased)", text, count=1, flags=re.M
    )
    (copy / "CHANGELOG.md").write_text(text)
    result = release(copy, "check", f"v{version}")
    assert result.returncode == 1
    assert "as unreleased" in result.stderr


@pytest.mark.parametrize("matches", [True, False])
def test_the_gitlab_release_job_refuses_a_tag_the_component_does_not_pin(matches: bool) -> None:
    import yaml

    job = yaml.safe_load((ROOT / ".gitlab-ci.yml").read_text())["release"]
    tag = f"v{newest_changelog_version()}" if matches else "v9.9.9"
    result = subprocess.run(
        ["sh", "-ec", job["script"][0]],
        cwd=ROOT,
        env={"CI_COMMIT_TAG": tag, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode == 0) is matches, result.stdout + result.stderr
    if not matches:
        assert "does not pin astraforge==9.9.9: run scripts/release.py bump" in result.stdout
