"""Sandbox start time and command round trip, against bare Docker calls on the same image.

    python bench/sandbox.py [--image IMG] [--starts N] [--commands N]

Prints medians and ratios measured in the same run. Goals: a `true` round trip in the
persistent shell of 1 ms median or less (p95 2 ms), against 40-80 ms for a fresh
`exec_run`; a sandbox ready within 1.5x a bare `containers.run` of the same image; a
`read_file` tool call within 2x the shell round trip.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import docker

from astraforge.agent.tools import Toolbox
from astraforge.sandbox import BwrapConfig, DockerConfig, open_sandbox


def timed(fn: Callable[[], object], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--image", default=os.environ.get("ASTRAFORGE_TEST_IMAGE", "astraforge-sandbox:bookworm")
    )
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--commands", type=int, default=100)
    args = parser.parse_args()
    client = docker.from_env()
    workspace = Path(tempfile.mkdtemp())
    for i in range(200):
        (workspace / f"f{i}.txt").write_text("x" * 1000)

    def bare_run() -> None:
        client.containers.run(args.image, ["true"], remove=True, network_mode="none")

    def sandbox_start() -> None:
        with open_sandbox(DockerConfig(image=args.image), workspace):
            pass

    bare_start = statistics.median(timed(bare_run, args.starts))
    our_start = statistics.median(timed(sandbox_start, args.starts))

    container = client.containers.run(
        args.image, ["sleep", "600"], detach=True, network_mode="none"
    )
    try:
        exec_rt = statistics.median(timed(lambda: container.exec_run(["true"]), args.commands))
    finally:
        container.remove(force=True)
    with open_sandbox(DockerConfig(image=args.image), workspace) as box:
        box.run("true")
        shell = sorted(timed(lambda: box.run("true"), args.commands * 5))
        toolbox = Toolbox(box)
        read = statistics.median(
            timed(lambda: toolbox.call("read_file", '{"path": "f1.txt"}'), args.commands)
        )
    shell_rt, shell_p95 = statistics.median(shell), shell[int(len(shell) * 0.95)]
    with open_sandbox(BwrapConfig(), workspace) as box:
        box.run("true")
        bwrap_rt = statistics.median(timed(lambda: box.run("true"), args.commands))
        bwrap_start = statistics.median(
            timed(lambda: open_sandbox(BwrapConfig(), workspace).__enter__().stop(), args.starts)
        )

    def goal(met: bool) -> str:
        return "met" if met else "MISSED"

    ratio = our_start / bare_start
    print(f"image {args.image}, workspace of 200 files, medians")
    print(
        f"P2 start: bare containers.run(true) {bare_start:.0f} ms | docker sandbox ready "
        f"{our_start:.0f} ms | ratio {ratio:.2f} (goal <= 1.5: {goal(ratio <= 1.5)})"
        f" | bwrap sandbox {bwrap_start:.0f} ms"
    )
    print(
        f"P1 round trip of `true`: exec_run {exec_rt:.1f} ms | persistent shell {shell_rt:.2f} ms"
        f" (p95 {shell_p95:.2f}) | {exec_rt / shell_rt:.0f}x faster | bwrap shell "
        f"{bwrap_rt:.2f} ms | goal <= 1 ms, p95 <= 2 ms: "
        f"{goal(shell_rt <= 1 and shell_p95 <= 2)}"
    )
    print(
        f"read_file tool call {read:.2f} ms | {read / shell_rt:.2f}x the shell round trip "
        f"(goal <= 2x: {goal(read / shell_rt <= 2)})"
    )


if __name__ == "__main__":
    main()
