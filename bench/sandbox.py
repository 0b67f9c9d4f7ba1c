"""Sandbox start time and command round trip, against bare Docker calls on the same image.

    python bench/sandbox.py [--image IMG] [--starts N] [--commands N]

Prints medians and ratios measured in the same run. The goal for the persistent shell is a
`true` round trip of 5 ms median or less, against 60-80 ms for a fresh `exec_run`.
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
        shell_rt = statistics.median(timed(lambda: box.run("true"), args.commands))
    with open_sandbox(BwrapConfig(), workspace) as box:
        box.run("true")
        bwrap_rt = statistics.median(timed(lambda: box.run("true"), args.commands))
        bwrap_start = statistics.median(
            timed(lambda: open_sandbox(BwrapConfig(), workspace).__enter__().stop(), args.starts)
        )

    print(f"image {args.image}, workspace of 200 files, medians")
    print(
        f"start: bare containers.run(true) {bare_start:.0f} ms | docker sandbox {our_start:.0f}"
        f" ms (copy in, verify, shell) | ratio {our_start / bare_start:.2f}"
        f" | bwrap sandbox {bwrap_start:.0f} ms"
    )
    print(
        f"round trip of `true`: exec_run {exec_rt:.1f} ms | persistent shell {shell_rt:.1f} ms"
        f" | ratio {exec_rt / shell_rt:.1f}x faster | bwrap shell {bwrap_rt:.1f} ms"
        f" | goal <= 5 ms: {'met' if shell_rt <= 5 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
