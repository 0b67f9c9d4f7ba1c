"""The action's install of the runner: pip against uv, cold and warm, in the same run.

    python bench/install.py [--wheelhouse .cache/wheelhouse]

Installs the package from this checkout with action/constraints.txt into a fresh venv, four
ways: pip with no cache, pip with its cache filled, uv with an empty cache (uv's own install
from the wheelhouse included, as action/install.sh does on a cold runner), and uv with its
cache restored (a fresh venv path, as after actions/cache restores the cache on a new
runner). Packages come from a local wheelhouse with --no-index, so the benchmark sends
nothing over the network; `.ci/run` fills the wheelhouse while the machine is prepared.
Goals on the CI machine: warm ≤ 3 s, cold ≤ 8 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "action" / "constraints.txt"
UV_VERSION = "0.13.9"  # as action/install.sh
WARM_GOAL, COLD_GOAL = 3.0, 8.0


def run(argv: list[str], **env: str) -> None:
    keep = ("PATH", "HOME", "LANG", "TMPDIR")
    base = {k: v for k, v in os.environ.items() if k in keep}
    subprocess.run(argv, check=True, capture_output=True, env={**base, **env})


def local(wheelhouse: Path) -> list[str]:
    """The installer options that take packages from the wheelhouse only."""
    return ["--no-index", "--find-links", str(wheelhouse)]


def pip(python: str, wheelhouse: Path, *args: str) -> None:
    """``pip install`` from the wheelhouse, without the machine's pip configuration."""
    quiet = ["--quiet", "--disable-pip-version-check"]
    run(
        [python, "-m", "pip", "install", *quiet, *local(wheelhouse), *args],
        PIP_CONFIG_FILE=os.devnull,
    )


def pip_install(work: Path, wheelhouse: Path, cache: Path | None) -> float:
    venv = work / f"venv-pip-{time.monotonic_ns()}"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    cache_args = ["--cache-dir", str(cache)] if cache else ["--no-cache-dir"]
    python = str(venv / "bin" / "python")
    pip(python, wheelhouse, *cache_args, "--constraint", str(CONSTRAINTS), str(ROOT))
    return time.monotonic() - started


def uv_install(work: Path, wheelhouse: Path, cache: Path) -> float:
    venv = work / f"venv-uv-{time.monotonic_ns()}"
    uv_home = cache / f"uv-{UV_VERSION}"
    uv = str(uv_home / "bin" / "uv")
    started = time.monotonic()
    if not Path(uv).exists():
        pip(sys.executable, wheelhouse, "--target", str(uv_home), f"uv=={UV_VERSION}")
    common = {"UV_CACHE_DIR": str(cache), "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], **common)
    target = ["--python", str(venv / "bin" / "python")]
    pins = ["--constraint", str(CONSTRAINTS), str(ROOT)]
    run([uv, "pip", "install", "--quiet", *target, *local(wheelhouse), *pins], **common)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheelhouse", type=Path, default=ROOT / ".cache" / "wheelhouse")
    args = parser.parse_args()
    if not any(args.wheelhouse.glob(f"uv-{UV_VERSION}-*.whl")):
        print(f"no wheelhouse at {args.wheelhouse}: `bash .ci/run` fills it", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="astraforge-bench-install-"))
    try:
        pip_cold = pip_install(work, args.wheelhouse, None)
        pip_cache = work / "pip-cache"
        pip_install(work, args.wheelhouse, pip_cache)  # fills pip's cache
        pip_warm = pip_install(work, args.wheelhouse, pip_cache)
        uv_cache = work / "uv-cache"
        uv_cold = uv_install(work, args.wheelhouse, uv_cache)
        uv_warm = uv_install(work, args.wheelhouse, uv_cache)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("install of the runner into a fresh venv (local wheelhouse, no network)")
    print(f"  pip cold {pip_cold:6.2f} s   pip warm {pip_warm:6.2f} s")
    print(f"  uv  cold {uv_cold:6.2f} s   uv  warm {uv_warm:6.2f} s")
    print(f"  uv/pip: cold {uv_cold / pip_cold:.2f}x, warm {uv_warm / pip_warm:.2f}x")
    for name, seconds, goal in (("warm", uv_warm, WARM_GOAL), ("cold", uv_cold, COLD_GOAL)):
        verdict = "met" if seconds <= goal else "MISSED"
        print(f"  goal: uv {name} {seconds:.2f} s <= {goal} s: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
