"""What the gateway costs: the sandbox's start with its door against without, and a model
call through the gateway (from inside the sandbox) against the same call made directly on
the runner, to the same scripted upstream on loopback.

    python bench/gateway.py [--image IMG] [--starts N] [--calls N]

Prints medians, p95 and ratios measured in the same run. Goals: the door adds at most 1.5x
to a Docker start (a sidecar container) and 1.3x to a bubblewrap start; a call through the
gateway within 10 ms of the direct call at the median.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers.llm import ScriptedLLM, reply

from astraforge.agent.loop import Budget
from astraforge.config import Budgets
from astraforge.gateway.service import Gateway
from astraforge.gateway.upstream import Upstream
from astraforge.sandbox import BwrapConfig, DockerConfig, SandboxSpec, open_sandbox

KEY = "sk-bench-0000"
CALL = (
    "import json, os, sys, time, urllib.request as u\n"
    "body = json.dumps({'model': 'm', 'messages': [{'role': 'user', 'content': 'hi'}]}).encode()\n"
    "out = []\n"
    "for _ in range(int(sys.argv[1])):\n"
    "    r = u.Request(os.environ['OPENAI_BASE_URL'] + '/chat/completions', data=body,\n"
    "        headers={'Authorization': 'Bearer ' + os.environ['OPENAI_API_KEY'],\n"
    "                 'Content-Type': 'application/json'})\n"
    "    t = time.perf_counter(); u.urlopen(r).read()\n"
    "    out.append((time.perf_counter() - t) * 1000)\n"
    "print(json.dumps(out))\n"
)


def stats(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(samples):7.1f} ms  p95 {p95:7.1f} ms"


def repo() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    (folder / "a.txt").write_text("a\n")
    git = ["git", "-C", str(folder), "-c", "user.name=b", "-c", "user.email=b@example.com"]
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "a"], check=True)
    return folder


def starts(spec: SandboxSpec, workspace: Path, count: int, gateway: Gateway | None) -> list[float]:
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        box = open_sandbox(spec, workspace)
        box.door = gateway
        with box:
            box.run("true")
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def direct(url: str, count: int) -> list[float]:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
    samples = []
    for _ in range(count):
        request = urllib.request.Request(  # noqa: S310 - the scripted server on loopback
            url + "/chat/completions",
            data=body,
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        )
        began = time.perf_counter()
        urllib.request.urlopen(request).read()  # noqa: S310
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--image", default=os.environ.get("ASTRAFORGE_TEST_IMAGE", "astraforge-sandbox:bookworm")
    )
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    workspace = repo()
    backends: list[tuple[str, Callable[[], SandboxSpec]]] = [
        ("docker", lambda: DockerConfig(image=args.image)),
        ("bwrap", lambda: BwrapConfig()),
    ]
    with ScriptedLLM([], then=reply(content="ok")) as llm:
        upstream = Upstream("openai", llm.url, KEY, "m")
        for name, spec in backends:
            with Gateway(upstream, Budget(Budgets(max_turns=10_000), None)) as gateway:
                starts(spec(), workspace, 1, gateway)  # warm: image, forwarder build
                bare = starts(spec(), workspace, args.starts, None)
                door = starts(spec(), workspace, args.starts, gateway)
                box = open_sandbox(spec(), workspace)
                box.door = gateway
                with box:
                    ran = box.run(f"python3 -c {shlex.quote(CALL)} {args.calls}", timeout=600)
                if ran.exit_code != 0:
                    raise SystemExit(ran.stderr[-2000:])
                inside = json.loads(ran.stdout)[5:]
            baseline = direct(llm.url, args.calls)[5:]
            ratio = statistics.median(door) / statistics.median(bare)
            added = statistics.median(inside) - statistics.median(baseline)
            print(f"{name:6} start without the door   {stats(bare)}")
            print(f"{name:6} start with the door      {stats(door)}   ratio {ratio:.2f}x")
            print(f"{name:6} direct call on the runner {stats(baseline)}")
            print(
                f"{name:6} call through the gateway  {stats(inside)}   "
                f"+{added:.1f} ms at the median"
            )


if __name__ == "__main__":
    main()
