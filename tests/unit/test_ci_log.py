"""The CI log in each system's format, read back from the captured log and the files."""

from __future__ import annotations

import io
import re
from pathlib import Path

from astraforge.ci.log import GitHubActions, GitLabCI, Terminal, current
from astraforge.redact import Redactor

SECRET = "glpat-" + "S3cretValue" * 3


def read_github_outputs(path: Path) -> dict[str, str]:
    """Parse $GITHUB_OUTPUT the way the runner does (name<<DELIMITER ... DELIMITER)."""
    outputs: dict[str, str] = {}
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        name, _, delimiter = lines[i].partition("<<")
        end = lines.index(delimiter, i + 1)
        outputs[name] = "\n".join(lines[i + 1 : end])
        i = end + 1
    return outputs


def test_github_actions_log_summary_and_outputs(tmp_path: Path) -> None:
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }
    stream = io.StringIO()
    ci = GitHubActions(env, Redactor(), stream)
    ci.mask(SECRET)
    with ci.group("Agent"):
        ci.info(f"using token {SECRET}")
        ci.untrusted("::set-output name=pwned::1\n::error::fake")
    ci.annotate("error", "the patch touches .github/workflows\nline two")
    ci.annotate("warning", "budget 90% used")
    ci.set_output("conclusion", "fixed")
    ci.set_output("pr_url", "https://github.com/o/r/pull/7")
    ci.set_output("branch", "astraforge/github-1-x")
    ci.summary("## AstraForge\n\nfixed")
    log = stream.getvalue().splitlines()
    assert log[0] == f"::add-mask::{SECRET}"
    assert log[1] == "::group::Agent"
    assert log[2] == "using token [REDACTED]"
    start = re.fullmatch(r"::stop-commands::([0-9a-f]{32})", log[3])
    assert start is not None
    assert log[4:6] == ["\\::set-output name=pwned::1", "\\::error::fake"]  # fenced and escaped
    assert log[6] == f"::{start[1]}::"
    assert log[7] == "::endgroup::"
    assert log[8] == "::error::the patch touches .github/workflows%0Aline two"
    assert log[9] == "::warning::budget 90%25 used"  # escaped as the runner expects
    assert read_github_outputs(tmp_path / "output") == {
        "conclusion": "fixed",
        "pr_url": "https://github.com/o/r/pull/7",
        "branch": "astraforge/github-1-x",
    }
    assert (tmp_path / "summary.md").read_text() == "## AstraForge\n\nfixed\n"
    assert SECRET not in "".join(log[1:])


def test_gitlab_sections_and_dotenv(tmp_path: Path) -> None:
    stream = io.StringIO()
    ci = GitLabCI({"GITLAB_CI": "true"}, tmp_path / "astraforge.env", Redactor([SECRET]), stream)
    with ci.group("Publish the merge request"):
        ci.info(f"token {SECRET}")
    ci.set_output("conclusion", "no_change")
    ci.set_output("pr_url", "")
    text = stream.getvalue()
    start = re.search(
        r"\x1b\[0Ksection_start:(\d+):(astraforge_1_[a-z_]+)\[collapsed=false\]"
        r"\r\x1b\[0KPublish the merge request\n",
        text,
    )
    assert start is not None
    assert "\x1b[0Ksection_end:" in text
    assert f":{start[2]}\r\x1b[0K" in text
    assert text.index("section_start") < text.index("token [REDACTED]") < text.index("section_end")
    assert SECRET not in text
    assert (tmp_path / "astraforge.env").read_text() == (
        "ASTRAFORGE_CONCLUSION=no_change\nASTRAFORGE_PR_URL=\n"
    )


def test_terminal_is_plain(tmp_path: Path) -> None:
    stream = io.StringIO()
    ci = Terminal(Redactor(), stream)
    with ci.group("Sandbox"):
        ci.info("started")
    ci.set_output("conclusion", "fixed")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "==> Sandbox"
    assert lines[1] == "started"
    assert re.fullmatch(r" {4}\(Sandbox: \d+\.\ds\)", lines[2])
    assert len(lines) == 3  # outputs are for CI systems; the run's last line says where
    assert ci.outputs == {"conclusion": "fixed"}
    assert "\x1b" not in stream.getvalue()
    assert "::" not in stream.getvalue()


def test_current_picks_the_ci_from_the_environment(tmp_path: Path) -> None:
    assert isinstance(current({"GITHUB_ACTIONS": "true"}, Redactor(), tmp_path), GitHubActions)
    assert isinstance(current({"GITLAB_CI": "true"}, Redactor(), tmp_path), GitLabCI)
    assert type(current({}, Redactor(), tmp_path)) is Terminal
