"""The runner's own overhead, event to PR, and every sandbox figure, as ratios against
baselines measured in the same run.

    python bench/pipeline.py [--image IMG] [--files N] [--tools N] [--rounds N]

A git repository of ``--files`` files, a scripted model that answers at once with
``--tools`` tool calls, the Docker sandbox, and a local forge: the total minus the
repository's own test time is what AstraForge itself costs per fix. Prints each phase
(start, copy-in, per tool, changes, policy, publish) and the table of goals:

    P1  `true` round trip in the persistent shell    <= 1 ms median, p95 <= 2 ms
    P2  sandbox ready / bare containers.run           <= 1.5x
    P3  runner overhead, event -> PR                  <= 3 s
        read_file tool call / shell round trip        <= 2x
    P4  frames -> context on 50,000 files             <= 100 ms p95

The "when filed" column is the figure measured before this work (issue #16), for reference.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' scripted model server

import docker  # noqa: E402
from bench.context import measure as measure_context  # noqa: E402
from tests.servers.llm import call, reply, scripted  # noqa: E402

from astraforge import pipeline, policy  # noqa: E402
from astraforge.agent.tools import Toolbox  # noqa: E402
from astraforge.diff import parse  # noqa: E402
from astraforge.forges.local import LocalForge  # noqa: E402
from astraforge.sandbox import DockerConfig, open_sandbox  # noqa: E402

GIT = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def ms(samples: list[float]) -> tuple[float, float]:
    """(median, p95) in milliseconds."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def timed(fn: Callable[[], object], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def ready(spec: DockerConfig, repo: Path) -> float:
    """Milliseconds until a sandbox of ``repo`` is ready (its removal is not counted)."""
    box = open_sandbox(spec, repo)
    started = time.perf_counter()
    box.start()
    took = (time.perf_counter() - started) * 1000
    box.stop()
    return took


def make_repo(root: Path, files: int, name: str = "repo") -> Path:
    """A git repository of ``files`` small source files and a bug to fix."""
    repo = root / name
    for i in range(files):
        path = repo / f"pkg{i % 50}" / f"mod{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'"""Module {i}."""\n\n\ndef f{i}(x):\n    return x + {i}\n')
    (repo / "app.py").write_text("def mean(xs):\n    return sum(xs) / (len(xs) - 1)\n")
    (repo / ".astraforge.yml").write_text(
        "sandbox:\n  backend: docker\n  image: IMAGE\ntest_command: 'true'\n"
        "model:\n  max_retries: 0\n"
    )
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=GIT)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=GIT)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "bench"], check=True, env=GIT)
    return repo


def script(tools: int) -> list[object]:
    """``tools`` tool calls (reads, shell commands, searches), one edit, then finish."""
    steps: list[object] = []
    for i in range(tools - 2):
        kind = i % 3
        if kind == 0:
            steps.append(reply(call("read_file", path=f"pkg{i % 50}/mod{i}.py")))
        elif kind == 1:
            steps.append(reply(call("shell", command="true")))
        else:
            steps.append(reply(call("list_dir", path=f"pkg{i % 50}")))
    steps.append(reply(call("edit_file", path="app.py", old="(len(xs) - 1)", new="len(xs)")))
    steps.append(reply(call("finish", summary="Divide by n.", root_cause="off by one")))
    return steps


def event(root: Path) -> Path:
    payload = json.loads((ROOT / "tests/fixtures/github/issues.labeled.json").read_text())
    payload["label"]["name"] = "astraforge"
    payload["sender"]["login"] = "Codertocat"
    path = root / "event.json"
    path.write_text(json.dumps(payload))
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--image", default=os.environ.get("ASTRAFORGE_TEST_IMAGE", "astraforge-sandbox:bookworm")
    )
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--tools", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="astraforge-bench-"))
    repo = make_repo(root, args.files)
    config_file = repo / ".astraforge.yml"
    config_file.write_text(config_file.read_text().replace("IMAGE", args.image))
    subprocess.run(["git", "-C", str(repo), "commit", "-qam", "image"], check=True, env=GIT)
    client = docker.from_env()
    spec = DockerConfig(image=args.image)

    # Baselines, in this run.
    bare = timed(
        lambda: client.containers.run(args.image, ["true"], remove=True, network_mode="none"),
        args.rounds,
    )
    container = client.containers.run(args.image, ["sleep", "600"], detach=True)
    try:
        exec_rt = timed(lambda: container.exec_run(["true"]), 50)
    finally:
        container.remove(force=True)

    # The sandbox, phase by phase.
    small = make_repo(root, 200, "small")
    small_starts = [ready(spec, small) for _ in range(args.rounds)]
    starts: list[float] = []
    changes_ms: list[float] = []
    for _ in range(args.rounds):
        box = open_sandbox(spec, repo)
        started = time.perf_counter()
        box.start()
        starts.append((time.perf_counter() - started) * 1000)
        box.run("sed -i 's/len(xs) - 1/len(xs)/' app.py")
        changes_ms += timed(box.changes, 1)
        patch = box.changes().patch
        box.stop()
    with open_sandbox(spec, repo) as box:
        box.run("true")
        shell_rt = timed(lambda: box.run("true"), 500)
        toolbox = Toolbox(box)
        read = timed(lambda: toolbox.call("read_file", '{"path": "app.py"}'), 100)
    files = parse(patch)
    rules = policy.default()
    policy_ms = timed(lambda: policy.check_patch(files, rules, known_secrets=["x" * 20]), 5)

    # The whole flow, event -> PR, against a scripted model with no latency.
    totals: list[float] = []
    for i in range(args.rounds):
        forge = LocalForge.init(root / f"forge{i}", repo, "Codertocat/Hello-World")
        (forge.root / "permissions.json").write_text('{"Codertocat": "write"}')
        with scripted(script(args.tools)) as llm:
            options = pipeline.Options(
                repo=repo,
                out=root / f"out{i}",
                event=event(root),
                forge="local",
                forge_dir=forge.root,
                overrides={"model.base_url": llm.url},
            )
            env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB", "CI"))}
            started = time.perf_counter()
            with open(os.devnull, "w") as sink:
                stdout, sys.stdout = sys.stdout, sink
                try:
                    result = pipeline.run(options, {**env, "OPENAI_API_KEY": "sk-bench"})
                finally:
                    sys.stdout = stdout
            total = (time.perf_counter() - started) * 1000
        if result.conclusion.value != "fixed":
            raise SystemExit(f"the bench run ended {result.conclusion.value}: {result.reason}")
        outcome = result.outcome
        tests = (
            sum(run.seconds * 1000 for run in (outcome.tests_before, outcome.tests_after) if run)
            if outcome
            else 0.0
        )
        totals.append(total - tests)

    context_base, _, context_p95, _ = measure_context(50_000, 30, 10)

    p1, p1_95 = ms(shell_rt)
    ex, _ = ms(exec_rt)
    p2, base2 = statistics.median(starts), statistics.median(bare)
    p2_small = statistics.median(small_starts)
    p3 = statistics.median(totals)
    rd, _ = ms(read)
    print(f"{args.files}-file repository, {args.tools} tool calls, image {args.image}")
    print(f"  start + copy-in      {p2:7.0f} ms   (bare containers.run {base2:.0f} ms)")
    print(f"  per tool: read_file  {rd:7.2f} ms   shell `true` {p1:.2f} ms")
    print(f"  changes()            {statistics.median(changes_ms):7.0f} ms")
    print(f"  policy checks        {statistics.median(policy_ms):7.0f} ms")
    print(f"  event -> PR          {p3:7.0f} ms   (total minus the repository's tests)")
    rows = [
        (
            "P1 `true` round trip",
            "2.6 ms",
            f"{p1:.2f} ms (p95 {p1_95:.2f})",
            f"{ex / p1:.0f}x faster than exec_run ({ex:.1f} ms)",
            p1 <= 1.0 and p1_95 <= 2.0,
        ),
        (
            "P2 ready, 200 files",
            "1.97x",
            f"{p2_small:.0f} ms",
            f"{p2_small / base2:.2f}x bare containers.run ({base2:.0f} ms)",
            p2_small / base2 <= 1.5,
        ),
        (
            f"P2 ready, {args.files} files",
            "-",
            f"{p2:.0f} ms",
            f"{p2 / base2:.2f}x bare containers.run",
            p2 / base2 <= 1.5,
        ),
        (
            "P3 overhead, event -> PR",
            "4.6 s",
            f"{p3 / 1000:.2f} s",
            f"{p3 / base2:.1f}x bare containers.run",
            p3 <= 3000,
        ),
        (
            "read_file tool call",
            "40 ms",
            f"{rd:.2f} ms",
            f"{rd / p1:.2f}x the shell round trip",
            rd / p1 <= 2.0,
        ),
        (
            "P4 frames -> context, 50k",
            "95-117 ms",
            f"{context_p95:.0f} ms p95",
            f"{context_p95 / context_base:.1f}x git ls-files ({context_base:.0f} ms)",
            context_p95 <= 100,
        ),
    ]
    print(f"  {'figure':28} {'when filed':11} {'measured':22} {'ratio (same run)':44} goal")
    for name, filed, value, ratio, met in rows:
        print(f"  {name:28} {filed:11} {value:22} {ratio:44} {'met' if met else 'MISSED'}")


if __name__ == "__main__":
    main()
