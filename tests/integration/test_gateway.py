"""The gateway in real sandboxes on every backend: the real openai and anthropic SDKs inside
reach scripted replies with the per-run token only; the key stays outside; the budget holds;
the proxy lets out only what the allow list names, all on loopback."""

from __future__ import annotations

import json
import shlex
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import IMAGE, commit, config_for
from tests.servers.llm import ScriptedLLM, call, reply
from tests.support.vendor import tiny_wheel, vendor

from astraforge.agent.loop import Budget
from astraforge.config import Budgets
from astraforge.gateway.allow import AllowList
from astraforge.gateway.service import Gateway
from astraforge.gateway.upstream import Upstream
from astraforge.sandbox import Sandbox, open_sandbox

CANARY = "sk-canary-7d1e0c5a9b3f42e8aa61"


@pytest.fixture(scope="module")
def clients_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository holding the openai and anthropic SDKs (and pip) as plain files."""
    repo = tmp_path_factory.mktemp("clients") / "repo"
    vendor(repo / "vendor", ["openai", "anthropic", "pip"])
    shutil.copyfile(
        Path(__file__).parents[1] / "support" / "gateway_clients.py", repo / "clients.py"
    )
    import subprocess

    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    commit(repo)
    return repo


def start(backend: str, repo: Path, gateway: Gateway, **overrides: Any) -> Sandbox:
    box = open_sandbox(config_for(backend, **overrides), repo)
    box.door = gateway
    box.start()
    return box


def budget(**limits: Any) -> Budget:
    return Budget(Budgets(**limits), None)


def test_sdk_clients_reach_scripted_replies_with_the_token_only(
    backend: str, clients_repo: Path
) -> None:
    step = reply(call("bash", command="git diff"))
    with ScriptedLLM([], then=step) as llm:
        upstream = Upstream("openai", llm.url, CANARY, "upstream-model")
        with Gateway(upstream, budget()) as gateway, start(backend, clients_repo, gateway) as box:
            ran = box.run("PYTHONPATH=/workspace/vendor python3 clients.py", timeout=120)
            half = len(CANARY) // 2  # the pattern itself must not be in a command line
            leak = box.run(
                f"printf '%s%s\\n' {CANARY[:half]} {CANARY[half:]} > /tmp/pattern; "
                "grep -rlsF -f /tmp/pattern --exclude=pattern /proc/[0-9]*/environ "
                "/proc/[0-9]*/cmdline /home /tmp /workspace /etc; echo end",
                timeout=60,
            )
            env = box.run("env", timeout=60).stdout
    assert ran.exit_code == 0, ran.stderr[-3000:]
    out = json.loads(ran.stdout.strip().splitlines()[-1])
    expected = ["bash", '{"command": "git diff"}']
    assert out["chat"] == expected
    assert json.loads(out["chat_stream"]) == {"command": "git diff"}
    assert out["responses"][0] == "bash"
    assert json.loads(out["responses"][1]) == {"command": "git diff"}
    assert [json.loads(a) for a in out["responses_stream"]] == [{"command": "git diff"}]
    assert out["messages"] == [["bash", {"command": "git diff"}]]
    assert out["messages_stream"] == [["bash", {"command": "git diff"}]]
    assert out["no_token"] == 401
    assert out["wrong_token"] == 401
    # The upstream saw the real key and the configured model, never the token.
    assert llm.requests
    assert all(r.headers["authorization"] == f"Bearer {CANARY}" for r in llm.requests)
    assert {r.body["model"] for r in llm.requests} == {"upstream-model"}
    assert not any(gateway.token in r.raw for r in llm.requests)
    # The key is nowhere in the sandbox; the token is in its environment.
    assert leak.stdout.split() == ["end"], leak.stdout
    assert f"OPENAI_API_KEY={gateway.token}" in env
    assert CANARY not in env
    protocols = [c.protocol for c in gateway.calls]
    assert protocols.count("chat") == 2
    assert protocols.count("responses") == 2
    assert protocols.count("messages") == 2
    assert all(c.prompt_tokens > 0 for c in gateway.calls if c.status == 200)


def test_a_spent_budget_refuses_the_next_call(backend: str, clients_repo: Path) -> None:
    heavy = reply(content="ok", usage=(60_000, 10))
    with ScriptedLLM([heavy, heavy]) as llm:
        upstream = Upstream("openai", llm.url, CANARY, "m")
        with (
            Gateway(upstream, budget(max_tokens=50_000)) as gateway,
            start(backend, clients_repo, gateway) as box,
        ):
            script = (
                "import openai\nc = openai.OpenAI(max_retries=0)\n"
                "ask = [{'role': 'user', 'content': 'a'}]\n"
                "r = c.chat.completions.create(model='m', messages=ask)\n"
                "print(r.choices[0].message.content)\n"
                "try:\n    c.chat.completions.create(model='m', messages=ask)\n"
                "except openai.PermissionDeniedError as exc:\n"
                "    print(exc.status_code, exc.body['code'])\n"
            )
            ran = box.run(
                f"PYTHONPATH=/workspace/vendor python3 -c {shlex.quote(script)}", timeout=120
            )
    assert ran.stdout.split() == ["ok", "403", "budget_exhausted"], ran.stderr[-2000:]
    assert llm.calls == 1
    assert gateway.exhausted == "tokens"


@pytest.fixture
def index(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """A package index (a directory listing with one wheel) and a second server, both on
    loopback; their ports."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    tiny_wheel(wheels, "tinypkg", "0.1.0", "ANSWER = 42\n")
    servers = []
    for root in (wheels, tmp_path):
        handler = partial(_Quiet, directory=str(root))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield servers[0].server_address[1], servers[1].server_address[1]
    for server in servers:
        server.shutdown()
        server.server_close()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_the_allow_list_lets_pip_reach_the_named_index_and_nothing_else(
    backend: str, clients_repo: Path, index: tuple[int, int]
) -> None:
    allowed, other = index
    lines: list[str] = []
    allow = AllowList.of([f"localhost:{allowed}"], private=["127.0.0.1"])
    with (
        Gateway(None, budget(), network="allowlist", allow=allow, log=lines.append) as gateway,
        start(backend, clients_repo, gateway) as box,
    ):
        pip = box.run(
            "PYTHONPATH=/workspace/vendor python3 -m pip install -q --disable-pip-version-check "
            f"--no-index --find-links http://localhost:{allowed}/ --target /tmp/site tinypkg "
            "&& PYTHONPATH=/tmp/site python3 -c 'import tinypkg; print(tinypkg.ANSWER)'",
            timeout=180,
        )
        fetch = (
            "import urllib.request, urllib.error, sys\n"
            "try:\n    urllib.request.urlopen(sys.argv[1], timeout=20); print('fetched')\n"
            "except urllib.error.HTTPError as exc:\n    print(exc.code)\n"
        )
        denied = box.run(f"python3 -c {shlex.quote(fetch)} http://localhost:{other}/", timeout=60)
        tunnel = box.run(
            "python3 -c "
            + shlex.quote(
                "import http.client, os\n"
                "c = http.client.HTTPConnection('127.100.0.1', 48128, timeout=20)\n"
                f"c.set_tunnel('localhost', {allowed})\n"
                "c.request('GET', '/'); print(c.getresponse().status)\n"
            ),
            timeout=60,
        )
        direct = box.run(
            f"python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {allowed}), 5)'",
            timeout=60,
        )
        dns = box.run("getent hosts pypi.org", timeout=60)
    assert pip.exit_code == 0, pip.stderr[-2000:]
    assert pip.stdout.split()[-1] == "42"
    assert denied.stdout.split() == ["403"], denied.stderr
    assert tunnel.stdout.split() == ["200"], tunnel.stderr[-1000:]
    assert direct.exit_code != 0
    assert "refused" in direct.stderr.lower()
    assert dns.exit_code != 0
    report = gateway.report()["connections"]
    ok = [c for c in report if c["decision"] == "allowed"]
    refused = [c for c in report if c["decision"] == "denied"]
    assert ok
    assert all(c["host"] == "localhost" and c["port"] == allowed for c in ok)
    assert sum(c["bytes_down"] for c in ok) > 500
    assert [(c["host"], c["port"]) for c in refused] == [("localhost", other)]
    assert f"gateway: denied localhost:{other}: not on the allow list" in lines


GATEWAY_CALL = (
    "python3 -c 'import json, os, urllib.request as u; "
    'r = u.Request(os.environ["OPENAI_BASE_URL"] + "/chat/completions", '
    'data=json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode(), '
    'headers={"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"], '
    '"Content-Type": "application/json"}); '
    'print(json.load(u.urlopen(r))["choices"][0]["message"]["content"])\''
)


@pytest.mark.parametrize("backend", ["bwrap", "docker"])
def test_calls_through_the_gateway_spend_the_runs_budget(backend: str, tmp_path: Path) -> None:
    """The built-in agent runs a command that calls the model through the gateway; the
    upstream reports large usage; the run's next turn is refused: budget_exhausted."""
    from tests.integration.test_agent import LLM_KEY, agent, config, make_buggy_repo

    script = [
        reply(call("shell", command=GATEWAY_CALL)),
        reply(content="from inside", usage=(400_000, 50)),
    ]
    with ScriptedLLM(script) as llm:
        cfg = config(llm, backend, budgets={"max_tokens": 300_000})
        run = agent(make_buggy_repo(tmp_path), tmp_path / "out", cfg)
    assert run.outcome.status.value == "budget_exhausted", run.outcome.reason
    assert run.outcome.budget == "tokens"
    assert llm.calls == 2  # the agent's turn, the call from inside; no third
    assert llm.requests[1].headers["authorization"] == f"Bearer {LLM_KEY}"
    events = [json.loads(line) for line in (tmp_path / "out" / "trajectory.jsonl").open()]
    (through,) = [e for e in events if e["type"] == "gateway"]
    assert through["protocol"] == "chat"
    assert through["prompt_tokens"] == 400_000
    tool = next(e for e in events if e["type"] == "tool")
    assert "from inside" in json.dumps(tool)
    assert run.outcome.gateway["calls"] == 1
    assert LLM_KEY not in (tmp_path / "out" / "trajectory.jsonl").read_text()


@pytest.mark.parametrize("backend", ["bwrap", "docker"])
def test_sandbox_run_with_an_allow_list_reaches_the_model_and_the_named_host(
    backend: str, clients_repo: Path, index: tuple[int, int]
) -> None:
    import os
    import subprocess
    import sys

    allowed, other = index
    fetch = (
        "import urllib.request, urllib.error\n"
        f"for port in ({allowed}, {other}):\n"
        "    try:\n"
        "        print(urllib.request.urlopen(f'http://127.0.0.1:{port}/', timeout=20).status)\n"
        "    except urllib.error.HTTPError as exc:\n        print(exc.code)\n"
    )
    with ScriptedLLM([reply(content="hello from the model")]) as llm:
        env = {**os.environ, "OPENAI_BASE_URL": llm.url, "OPENAI_API_KEY": CANARY}
        argv = [
            sys.executable,
            "-m",
            "astraforge",
            "sandbox",
            "run",
            "--backend",
            backend,
            "--image",
            IMAGE,
            "--workspace",
            str(clients_repo),
            "--network",
            "allowlist",
            "--allow",
            f"127.0.0.1:{allowed}",
            "--",
            "sh",
            "-c",
            f"python3 -c {shlex.quote(fetch)} && {GATEWAY_CALL} && env",
        ]
        if backend == "bwrap":
            argv.remove("--image"), argv.remove(IMAGE)
        done = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=300, check=False
        )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[:3] == ["200", "403", "hello from the model"]
    assert "HTTPS_PROXY=http://127.100.0.1:48128" in lines
    assert CANARY not in done.stdout
    assert CANARY not in done.stderr
    assert "gateway served 1 model call(s)" in done.stderr
    assert "1 connection(s) allowed, 1 denied" in done.stderr


def test_the_report_lists_the_connections_the_agents_commands_made(
    tmp_path: Path, index: tuple[int, int]
) -> None:
    from tests.integration.test_agent import LLM_KEY, config, make_buggy_repo

    from astraforge import policy, report_html
    from astraforge.agent.run import run_agent
    from astraforge.events import manual

    allowed, other = index
    fetch = (
        "python3 -c 'import sys, urllib.request as u\n"
        "for port in sys.argv[1:]:\n"
        '    try: print(u.urlopen(f"http://127.0.0.1:{port}/", timeout=20).status)\n'
        "    except Exception as exc: print(exc)' " + f"{allowed} {other}"
    )
    script = [reply(call("shell", command=fetch)), reply(call("finish", summary="looked"))]
    rules = policy.with_network(policy.default(), "allowlist", [f"127.0.0.1:{allowed}"])
    with ScriptedLLM(script) as llm:
        run = run_agent(
            manual.parse({"request": "look"}),
            config(llm, "bwrap"),
            make_buggy_repo(tmp_path),
            tmp_path / "out",
            env={"OPENAI_API_KEY": LLM_KEY},
            rules=rules,
        )
    seen = run.outcome.gateway["connections"]
    assert [(c["host"], c["port"], c["decision"]) for c in seen] == [
        ("127.0.0.1", allowed, "allowed"),
        ("127.0.0.1", other, "denied"),
    ]
    assert seen[0]["bytes_down"] > 0
    assert seen[1]["bytes_down"] == 0
    page = report_html.page(tmp_path / "out", {"outcome": run.outcome.model_dump(mode="json")})
    assert [(n["port"], n["decision"]) for n in page.network] == [
        (allowed, "allowed"),
        (other, "denied"),
    ]
    assert page.network[0]["bytes"] > 0


def test_a_run_whose_commands_called_the_model_replays_offline(tmp_path: Path) -> None:
    """The agent's command asked the model through the gateway; with replay:FILE the same
    run answers from the trajectory, the built-in agent and the gateway alike, offline."""
    from tests.integration.test_agent import LLM_KEY, config, make_buggy_repo

    from astraforge.agent.run import run_agent
    from astraforge.config import Config
    from astraforge.events import manual

    script = [
        reply(call("shell", command=GATEWAY_CALL)),
        reply(content="from inside"),
        reply(call("finish", summary="asked the model from a command")),
    ]
    task = manual.parse({"request": "ask"})
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    with ScriptedLLM(script) as llm:
        first = run_agent(
            task,
            config(llm, "bwrap"),
            make_buggy_repo(tmp_path / "a"),
            tmp_path / "one",
            env={"OPENAI_API_KEY": LLM_KEY},
        )
    recorded = tmp_path / "one" / "trajectory.jsonl"
    offline = Config.model_validate(
        {"model": {"name": f"replay:{recorded}"}, "sandbox": {"backend": "bwrap"}}
    )
    second = run_agent(task, offline, make_buggy_repo(tmp_path / "b"), tmp_path / "two", env={})
    assert first.outcome.status == second.outcome.status
    assert second.outcome.summary == "asked the model from a command"
    events = [json.loads(line) for line in (tmp_path / "two" / "trajectory.jsonl").open()]
    tool = next(e for e in events if e["type"] == "tool")
    assert "from inside" in json.dumps(tool)
    assert [e["protocol"] for e in events if e["type"] == "gateway"] == ["chat"]
