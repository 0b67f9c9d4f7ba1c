"""No untrusted text issues a CI workflow command: a whole `astraforge run` inside a (simulated)
GitHub Actions job, fed an issue title, an agent file name, a check detail and a model summary
that each try to, and the log read back line by line as the runner reads it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import load_fixture
from tests.integration.test_pipeline import LLM_KEY, local, make_checkout, run
from tests.servers.llm import call, reply, scripted

from astraforge.ci.log import GitHubActions, GitLabCI, neutralize
from astraforge.redact import Redactor

TITLE = "Crash\n::add-mask::PWNED-TITLE\n::stop-commands::zzz\n::error::PWNED-AFTER-STOP"
FILE = ".github/workflows/bin\r::warning title=X::PWNED-FILE.yml"
SUMMARY = "Done.\r::set-output name=x::PWNED-SUMMARY\n\x1b[0Ksection_start:1:evil\r\x1b[0K"
OURS = re.compile(
    r"::(group::[^\n]*|endgroup::|add-mask::[^\n]*|(error|warning|notice)::[^\n]*"
    r"|stop-commands::[0-9a-f]{32}|[0-9a-f]{32}::)"
)


def commands(log: str) -> list[str]:
    """Every line the GitHub runner would read as a workflow command (v2 and v1 forms)."""
    return [
        line.strip()
        for line in log.replace("\r", "\n").split("\n")
        if line.lstrip().startswith("::") or "##[" in line
    ]


def test_a_whole_run_writes_no_command_it_did_not_mean_to(tmp_path: Path) -> None:
    checkout = make_checkout(tmp_path)
    forge = local(tmp_path, checkout)
    payload = load_fixture("github/issues.labeled.json")
    payload["label"]["name"] = "astraforge"
    payload["issue"]["title"] = TITLE
    payload["sender"]["login"] = "Codertocat"
    event = tmp_path / "event.json"
    event.write_text(json.dumps(payload))
    script = [
        reply(call("write_file", path=FILE, content="on: push\n")),
        reply(call("finish", summary=SUMMARY)),
    ]
    summary_file, output_file = tmp_path / "summary.md", tmp_path / "output"
    with scripted(script) as llm:
        result, report = run(
            tmp_path,
            llm,
            "--repo",
            str(checkout),
            "--forge",
            "local",
            "--forge-dir",
            str(forge.root),
            "--event",
            str(event),
            env={
                "GITHUB_ACTIONS": "true",
                "GITHUB_STEP_SUMMARY": str(summary_file),
                "GITHUB_OUTPUT": str(output_file),
                "OPENAI_API_KEY": LLM_KEY,
            },
        )
    assert report["conclusion"] == "blocked"  # the file is under .github/workflows
    log = result.stdout + result.stderr
    assert "PWNED-TITLE" in log  # the text is shown ...
    assert "PWNED-FILE" in log
    for line in commands(log):  # ... but every command is the runner's own
        assert OURS.fullmatch(line), line
        if not line.startswith("::add-mask::"):
            assert "PWNED" not in line.split("::", 2)[1], line
    assert "\x1b" not in log
    assert "\r" not in log


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_every_log_method_neutralizes_any_text(text: str) -> None:
    import io

    for make in (
        lambda s: GitHubActions({}, Redactor(), s),
        lambda s: GitLabCI({}, Path("/nonexistent/.env"), Redactor(), s),
    ):
        stream = io.StringIO()
        ci = make(stream)
        with ci.group(text):
            ci.info(text)
            ci.untrusted(text)
            ci.annotate("warning", text)
        log = stream.getvalue()
        for line in commands(log):
            assert OURS.fullmatch(line), line
        for line in log.split("\n"):
            section = r"\x1b\[0K(section_(start|end):\d+:astraforge_\w+(\[[^\]]*\])?)?"
            stripped = re.sub(section, "", line)
            stripped = re.sub(r"\x1b\[\d+m", "", stripped).replace("\r", "")
            assert "\x1b" not in stripped
    assert not any(c in neutralize(text) for c in "\r\x1b\x07")
