"""The forwarder binary: ``forward.c`` built once, static, and cached by its source's hash.

It runs beside the sandbox in the sandbox's network namespace (a sidecar container on
Docker, ``nsenter`` on bubblewrap) and needs nothing from the sandbox's image, so the
gateway works with images that have no Python, shell utilities or libc of their own.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from astraforge.errors import GatewayError

OVERRIDE = "ASTRAFORGE_FORWARDER"  # a prebuilt binary (trusted: the runner's environment)


def source() -> bytes:
    """The forwarder's C source, as the package ships it."""
    return resources.files("astraforge.gateway").joinpath("forward.c").read_bytes()


def cache_dir() -> Path:
    """Where built forwarders are kept between runs."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "astraforge"


def binary() -> Path:
    """The static forwarder, built on first use with the runner's C compiler."""
    prebuilt = os.environ.get(OVERRIDE)
    if prebuilt:
        if not os.access(prebuilt, os.X_OK):
            raise GatewayError(f"{OVERRIDE}={prebuilt} is not an executable file")
        return Path(prebuilt)
    code = source()
    target = cache_dir() / f"astraforge-forward-{hashlib.sha256(code).hexdigest()[:16]}"
    if target.is_file():
        return target
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        raise GatewayError(
            "the gateway's forwarder is not built and there is no C compiler to build it",
            f"apt-get install gcc libc6-dev (once), or set {OVERRIDE} to a built "
            "astraforge-forward",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=target.parent) as work:
        src = Path(work) / "forward.c"
        src.write_bytes(code)
        out = Path(work) / "forward"
        made = subprocess.run(
            [compiler, "-static", "-O2", "-s", "-o", str(out), str(src)],
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode != 0:
            raise GatewayError(
                f"building the gateway's forwarder failed: {made.stderr.strip()[-300:]}",
                "install the static C library (apt-get install libc6-dev), or set "
                f"{OVERRIDE} to a built astraforge-forward",
            )
        os.chmod(out, 0o755)  # noqa: S103 - the sandbox's user runs it
        os.replace(out, target)  # atomic: parallel runs build the same file
    return target
