"""Every engine's real CLI, installed from the registries, run headless in a real sandbox
with the gateway as its only door; the scripted upstream picks each engine's shell tool by
its schema and applies a known fix through it."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import IMAGE
from tests.integration.test_agent import FIXED, LLM_KEY, TEST_COMMAND, make_buggy_repo
from tests.servers.llm import ScriptedLLM
from tests.support.engine_driver import FINAL, Fixer

from astraforge.agent.outcome import Status
from astraforge.agent.run import AgentRun, run_agent
from astraforge.agent.trajectory import read_events
from astraforge.config import Config
from astraforge.engines import ENGINES
from astraforge.events import manual

ENGINE_NAMES = list(ENGINES)
# The fix, and a look for the real key anywhere the engine could read it: its environment,
# its configuration in $HOME, the sandbox's /tmp. "CANARY-llm" is a piece of the key.
# (Written so that the command's own text, which engines keep in their session logs, does
# not hold it: engines refuse command substitution, so no $(...).)
LOOK = 'P=CANARY; echo leaks; grep -rl "$P-llm" $HOME /tmp | wc -l; env | grep -c "$P-llm"'
LEAKS = re.compile(r"leaks\s+(\d+)\s+(\d+)")
FIX = f"sed -i 's/(len(values) - 1)/len(values)/' stats.py; {LOOK}"


def fixer() -> Fixer:
    return Fixer("stats.py", FIX, whole_file=("stats.py", FIXED))


# Engines whose Python (3.12+) is newer than the runner's: a Docker sandbox with Python 3.13.
TRIXIE = os.environ.get("ASTRAFORGE_TEST_TRIXIE_IMAGE", "astraforge-sandbox:trixie")
NEWER_PYTHON = {"vibe"}


def engine_config(llm: ScriptedLLM, engine: str, backend: str = "bwrap", **extra: Any) -> Config:
    image = TRIXIE if engine in NEWER_PYTHON else IMAGE
    backend = "docker" if engine in NEWER_PYTHON else backend
    return Config.model_validate(
        {
            "model": {"name": "test-model", "base_url": llm.url, "max_retries": 0},
            "engine": engine,
            "sandbox": {"backend": backend, "image": image},
            "test_command": TEST_COMMAND,
            **extra,
        }
    )


def run(tmp_path: Path, cfg: Config, name: str = "run") -> AgentRun:
    (tmp_path / name).mkdir()
    return run_agent(
        manual.parse({"request": "fix mean()"}),
        cfg,
        make_buggy_repo(tmp_path / name),
        tmp_path / name / "out",
        env={"OPENAI_API_KEY": LLM_KEY},
    )


def events(result: AgentRun) -> list[dict[str, Any]]:
    return list(read_events(result.out / "trajectory.jsonl"))


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_each_engine_fixes_the_bug_through_its_own_tools(tmp_path: Path, engine: str) -> None:
    script = fixer()
    with ScriptedLLM([], then=script) as llm:
        result = run(tmp_path, engine_config(llm, engine))
    assert result.error is None, result.outcome.reason
    assert result.outcome.status is Status.FIXED
    assert result.outcome.engine == engine
    patch = (result.out / "diff.patch").read_text()
    assert (
        "-    return sum(values) / (len(values) - 1)\n+    return sum(values) / len(values)\n"
        in patch
    )
    assert result.outcome.tests_after is not None
    assert result.outcome.tests_after.passed
    assert "divides by the count" in " ".join(str(result.outcome.summary).split())
    trail = events(result)
    tools = [e for e in trail if e["type"] == "tool" and e.get("engine") == engine]
    assert tools, "the engine's tool calls are in the trajectory"
    if engine != "aider":  # aider has no tools: it writes the files the model returns
        assert script.called  # it found the engine's shell tool by its schema
        shell = next(t for t in tools if LEAKS.search(t["result"]))
        assert LEAKS.search(shell["result"]).groups() == ("0", "0")  # type: ignore[union-attr]
    gateway = [e for e in trail if e["type"] == "gateway"]
    assert gateway
    # an engine may retry a call that failed under load (seen once with vibe on a busy
    # machine); the trajectory records that call too, and most calls were answered
    answered = [e for e in gateway if e["status"] == 200]
    assert len(answered) * 2 > len(gateway), [(e["status"], e.get("error")) for e in gateway]
    assert result.outcome.usage["turns"] == len(gateway)
    text = (result.out / "trajectory.jsonl").read_text() + json.dumps(
        result.outcome.model_dump(mode="json")
    )
    assert LLM_KEY not in text
    assert FINAL.splitlines()[0][9:40] in text


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_a_low_token_budget_stops_each_engine(tmp_path: Path, engine: str) -> None:
    with ScriptedLLM([], then=fixer()) as llm:
        result = run(tmp_path, engine_config(llm, engine, budgets={"max_tokens": 1000}))
        reached = llm.calls
    assert result.outcome.status is Status.BUDGET_EXHAUSTED, result.outcome.reason
    assert result.outcome.budget == "tokens"
    assert reached == 0  # the gateway refused before the upstream saw anything
    assert (result.out / "diff.patch").read_text() == ""


def test_an_engine_in_a_docker_sandbox_reads_its_install_from_a_volume(tmp_path: Path) -> None:
    with ScriptedLLM([], then=fixer()) as llm:
        result = run(tmp_path, engine_config(llm, "gemini", backend="docker"))
    assert result.outcome.status is Status.FIXED, result.outcome.reason
    assert "+    return sum(values) / len(values)" in (result.out / "diff.patch").read_text()


def test_an_engine_run_replays_offline_from_its_gateway_calls(tmp_path: Path) -> None:
    with ScriptedLLM([], then=fixer()) as llm:
        first = run(tmp_path, engine_config(llm, "codex"), "first")
    recorded = first.out / "trajectory.jsonl"
    offline = Config.model_validate(
        {
            "model": {"name": f"replay:{recorded}"},
            "engine": "codex",
            "sandbox": {"backend": "bwrap"},
            "test_command": TEST_COMMAND,
        }
    )
    second = run(tmp_path, offline, "second")
    assert second.outcome.status is Status.FIXED, second.outcome.reason
    assert second.outcome.diff_sha256 == first.outcome.diff_sha256
    assert [e["protocol"] for e in events(second) if e["type"] == "gateway"] == ["responses"] * 2


def test_an_engine_without_a_model_is_refused_with_the_fix(tmp_path: Path) -> None:
    cfg = Config.model_validate({"engine": "codex", "sandbox": {"backend": "bwrap"}})
    result = run_agent(
        manual.parse({"request": "fix"}), cfg, make_buggy_repo(tmp_path), tmp_path / "out", env={}
    )
    assert result.outcome.status is Status.ERROR
    assert "needs a model" in str(result.outcome.reason)
    assert (tmp_path / "out" / "trajectory.jsonl").is_file()


def test_run_publishes_an_engines_fix_on_the_local_forge(tmp_path: Path) -> None:
    from tests.integration.test_pipeline import local, make_checkout, run_local

    checkout = make_checkout(tmp_path)
    forge = local(tmp_path, checkout)
    fix = (
        "sed -i 's|    return total / len(items)$|    return total / len(items) if items else 0|' "
        "shop/cart.py"
    )
    with ScriptedLLM([], then=Fixer("shop/cart.py", fix)) as llm:
        result, report = run_local(tmp_path, llm, checkout, forge, "--engine", "claude")
    assert result.returncode == 0, result.stderr
    assert report["conclusion"] == "fixed"
    assert report["outcome"]["engine"] == "claude"
    pulls = forge.state()["pulls"]
    assert len(pulls) == 1
    assert "claude" in json.dumps(pulls[0]).lower()
    assert not any(name.startswith(".astraforge-engine") for name in os.listdir(checkout))


def test_the_tool_replay_refuses_an_engine_run_and_names_the_way_that_works(
    tmp_path: Path,
) -> None:
    from tests.integration.test_agent import cli

    with ScriptedLLM([], then=fixer()) as llm:
        first = run(tmp_path, engine_config(llm, "opencode"))
    trajectory = first.out / "trajectory.jsonl"
    result = cli("replay", str(trajectory), "--repo", str(tmp_path / "run" / "buggy"))
    assert result.returncode == 4
    assert "--engine opencode --model replay:" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_pypi_engine_in_an_image_without_its_python_is_refused_clearly(
    tmp_path: Path,
) -> None:
    from tests.integration.conftest import MINIMAL_IMAGE

    with ScriptedLLM([], then=fixer()) as llm:
        cfg = engine_config(llm, "aider", backend="docker")
        cfg.sandbox.image = MINIMAL_IMAGE
        result = run(tmp_path, cfg)
        reached = llm.calls
    assert result.outcome.status is Status.ERROR
    assert "the sandbox has none" in str(result.outcome.reason)
    assert "sandbox.image" in str(result.outcome.reason)
    assert reached == 0


@pytest.mark.parametrize("backend", ["bwrap", "docker"])
def test_the_installed_engine_is_read_only_to_whatever_runs_in_the_sandbox(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """A compromised engine (or the agent's command) cannot change the shared install that
    later runs reuse."""
    from tests.integration.conftest import config_for

    from astraforge.sandbox import open_sandbox
    from astraforge.sandbox.config import Mount
    from astraforge.sandbox.volumes import volume_name

    # (not under tmp_path: bubblewrap as root binds after dropping root, and pytest's
    # temporary folders are closed to others)
    install = Path(tempfile.mkdtemp(prefix="astraforge-engine-test-"))
    request.addfinalizer(lambda: shutil.rmtree(install, ignore_errors=True))
    (install / "bin").mkdir(parents=True)
    (install / "bin" / "tool").write_text("#!/bin/sh\necho original\n")
    (install / "bin" / "tool").chmod(0o755)
    install.chmod(0o755)
    workspace = make_buggy_repo(tmp_path)
    box = open_sandbox(config_for(backend), workspace)
    box.mounts = [Mount(install, "/opt/astraforge/engine", f"test-{os.getpid()}-{backend}")]
    with box:
        assert box.run("/opt/astraforge/engine/bin/tool").stdout == "original\n"
        tamper = box.run(
            "echo 'echo pwned' > /opt/astraforge/engine/bin/tool; "
            "touch /opt/astraforge/engine/new; rm -f /opt/astraforge/engine/bin/tool; "
            "/opt/astraforge/engine/bin/tool"
        )
        assert tamper.stdout == "original\n"
    assert (install / "bin" / "tool").read_text() == "#!/bin/sh\necho original\n"
    assert not (install / "new").exists()
    if backend == "docker":  # the volume later runs mount is unchanged too
        again = open_sandbox(config_for(backend), workspace)
        again.mounts = box.mounts
        with again:
            assert again.run("ls /opt/astraforge/engine").stdout == "bin\n"
        import docker

        docker.from_env().volumes.get(volume_name(box.mounts[0])).remove(force=True)
