"""Mapping stack frames to code on a large repository, against listing its files with git.

    python bench/context.py [--files 50000] [--frames 30] [--runs 5]

Generates a git repository of --files files, a 30-frame Python stack trace through it (plus
library frames that must not map), and measures ``gather()``: listing the files, indexing
them, mapping every frame and reading the code windows (suspect commits are timed apart: they
run git blame). Prints medians and the ratio against `git ls-files` alone, measured in the same
run. The goal: 200 ms or less at 50,000 files.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from astraforge.config import ContextConfig
from astraforge.context import code
from astraforge.context.build import gather
from astraforge.task import Alert, Frame, Kind, Source, Task

GOAL_MS = 200.0
GIT_ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def timed(fn: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def generate(root: Path, count: int) -> list[str]:
    """``count`` files in a realistic tree: packages of modules, many sharing names."""
    paths = []
    per_dir = 25
    for i in range(count):
        package = f"src/service{i // 2500}/pkg{(i // per_dir) % 100}"
        name = "__init__.py" if i % per_dir == 0 else f"mod{i % per_dir}.py"
        path = root / package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"def f{j}(x):\n    return x + {j}\n" for j in range(20)))
        paths.append(f"{package}/{name}")
    git = ["git", "-C", str(root), "-c", "user.name=b", "-c", "user.email=b@example.com"]
    subprocess.run([*git, "init", "-q"], check=True, env=GIT_ENV)
    subprocess.run([*git, "add", "-A"], check=True, env=GIT_ENV)
    subprocess.run([*git, "commit", "-qm", "generated"], check=True, env=GIT_ENV)
    return paths


def task_with(frames: list[Frame]) -> Task:
    return Task(
        source=Source.SENTRY,
        kind=Kind.ALERT,
        event="event_alert",
        title="ValueError",
        fingerprint="bench",
        alert=Alert(frames=frames),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "big"
        started = time.perf_counter()
        paths = generate(repo, args.files)
        print(f"repository: {len(paths)} files (generated in {time.perf_counter() - started:.1f}s)")
        step = max(1, len(paths) // args.frames)
        frames = [
            Frame(abs_path=f"/srv/app/{p}", lineno=3, function="f1", in_app=True)
            for p in paths[::step][: args.frames]
        ]
        frames[:0] = [
            Frame(abs_path=f"/usr/lib/python3.11/site-packages/lib/mod{i}.py", lineno=9)
            for i in range(10)
        ]
        config = ContextConfig(max_frames=args.frames, suspect_commits=0)
        task = task_with(frames)
        ctx = gather(task, repo, config)
        assert len(ctx.windows) == args.frames, len(ctx.windows)
        baseline = timed(
            lambda: subprocess.run(
                ["git", "-C", str(repo), "ls-files", "-z"],
                capture_output=True,
                check=True,
                env=GIT_ENV,
            ),
            args.runs,
        )
        ours = timed(lambda: gather(task, repo, config), args.runs)
        blame = timed(lambda: code.suspects(repo, ctx.windows[:3], 5), args.runs)
        verdict = "meets" if ours <= GOAL_MS else "MISSES"
        print(f"git ls-files alone:                   {baseline:7.1f} ms (baseline)")
        print(
            f"gather() with {len(frames)} frames:            {ours:7.1f} ms "
            f"({ours / baseline:.2f}x baseline; {verdict} the {GOAL_MS:.0f} ms goal)"
        )
        print(f"suspect commits (git blame, 3 frames): {blame:6.1f} ms")


if __name__ == "__main__":
    main()
