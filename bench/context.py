"""Mapping stack frames to code on a large repository, against listing its files with git.

    python bench/context.py [--files 50000] [--frames 30] [--runs 5]

Generates a git repository of --files files, a 30-frame Python stack trace through it (plus
library frames that must not map), and measures ``gather()``: listing the files, indexing
them, mapping every frame and reading the code windows (suspect commits are timed apart: they
run git blame). Prints medians and the ratio against `git ls-files` alone, measured in the same
run. The goal (P4 of bench/pipeline.py): a p95 of 100 ms or less at 50,000 files.
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

GOAL_MS = 100.0  # p95
GIT_ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    """Sorted samples in milliseconds."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return sorted(samples)


def p95(samples: list[float]) -> float:
    return samples[min(len(samples) - 1, int(len(samples) * 0.95))]


def measure(files: int, frames_wanted: int, runs: int) -> tuple[float, float, float, float]:
    """(git ls-files median, gather() median, gather() p95, blame median) in milliseconds,
    on a generated repository of ``files`` files."""
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "big"
        paths = generate(repo, files)
        step = max(1, len(paths) // frames_wanted)
        frames = [
            Frame(abs_path=f"/srv/app/{p}", lineno=3, function="f1", in_app=True)
            for p in paths[::step][:frames_wanted]
        ]
        frames[:0] = [
            Frame(abs_path=f"/usr/lib/python3.11/site-packages/lib/mod{i}.py", lineno=9)
            for i in range(10)
        ]
        config = ContextConfig(max_frames=frames_wanted, suspect_commits=0)
        task = task_with(frames)
        ctx = gather(task, repo, config)
        assert len(ctx.windows) == frames_wanted, len(ctx.windows)
        listing = ["git", "-C", str(repo), "ls-files", "-z"]
        baseline = timed(
            lambda: subprocess.run(listing, capture_output=True, check=True, env=GIT_ENV), runs
        )
        ours = timed(lambda: gather(task, repo, config), runs)
        blame = timed(lambda: code.suspects(repo, ctx.windows[:3], 5), 5)
        return (
            statistics.median(baseline),
            statistics.median(ours),
            p95(ours),
            statistics.median(blame),
        )


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
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    started = time.perf_counter()
    baseline, median, high, blame = measure(args.files, args.frames, args.runs)
    print(f"repository: {args.files} files, {args.frames} frames mapped + 10 library frames")
    print(f"git ls-files alone:           {baseline:7.1f} ms median (baseline)")
    print(
        f"gather():                     {median:7.1f} ms median, p95 {high:.1f} ms "
        f"({high / baseline:.2f}x baseline; {'meets' if high <= GOAL_MS else 'MISSES'} "
        f"the {GOAL_MS:.0f} ms p95 goal)"
    )
    print(f"suspect commits (git blame, 3 frames): {blame:.1f} ms")
    print(f"(the whole benchmark took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
