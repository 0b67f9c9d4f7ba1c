"""Installing an engine: once per pinned version, into the runner's cache, never running the
package's own code on the runner.

npm engines are installed with ``npm install --ignore-scripts`` together with Node.js itself
(:data:`~astraforge.engines.pins.NODE`), PyPI engines with ``pip install --target
--only-binary=:all:`` (wheels only: nothing is built or run). The registries are the runner's
own npm and pip configuration. The installed tree is shown read-only inside the sandbox at
:data:`~astraforge.engines.base.ENGINE_ROOT` (bwrap binds it; Docker copies it once into a
volume named after the pin, so a remote daemon works too, and later runs reuse it).

``ASTRAFORGE_ENGINES`` (trusted: the runner's environment) names another cache folder, for
example one restored by ``actions/cache``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Protocol

from astraforge.engines.pins import NODE, Package
from astraforge.errors import SandboxError
from astraforge.gateway.forwarder import cache_dir
from astraforge.progress import Progress

OVERRIDE = "ASTRAFORGE_ENGINES"
MARKER = ".astraforge-engine.json"
INSTALL_TIMEOUT = 900.0


class Installable(Protocol):
    """What can be installed: an engine, or a package a toolkit tool needs."""

    @property
    def name(self) -> str: ...

    @property
    def package(self) -> Package: ...

    def links(self) -> dict[str, str]: ...


class EngineInstallError(SandboxError):
    """An engine could not be installed."""

    default_remediation = (
        "check that the runner reaches the npm or PyPI registry (its npm and pip "
        "configuration), or install ahead with `astraforge engines install NAME`"
    )


def root() -> Path:
    """The folder holding every installed engine. A root runner keeps them in
    /var/cache: bubblewrap drops root before it binds them, and root's home is closed."""
    override = os.environ.get(OVERRIDE)
    if override:
        return Path(override)
    if os.geteuid() == 0:
        return Path("/var/cache/astraforge/engines")
    return cache_dir() / "engines"


def python_version() -> str:
    """The runner's Python version: PyPI engines are installed for it unless the sandbox
    has another."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def folder(engine: Installable, python: str | None = None) -> Path:
    """Where this engine's pinned version is (or will be) installed; a PyPI engine's, for
    the sandbox's Python ``python`` (default: the runner's)."""
    package = engine.package
    suffix = f"-py{python or python_version()}" if package.registry == "pypi" else ""
    return root() / f"{engine.name}-{package.version}{suffix}"


def installed(engine: Installable, python: str | None = None) -> bool:
    """Whether the pinned version is installed and complete."""
    return (folder(engine, python) / MARKER).is_file()


def bin_dir(engine: Installable) -> str:
    """The engine's executables, relative to its installed folder."""
    return "node_modules/.bin" if engine.package.registry == "npm" else "bin"


def ensure(
    engine: Installable, progress: Progress | None = None, python: str | None = None
) -> Path:
    """The installed folder of ``engine``, installing it first when it is missing (a PyPI
    engine for the sandbox's Python ``python``, default the runner's)."""
    python = python or python_version()
    target = folder(engine, python)
    if installed(engine, python):
        return target
    progress = progress or Progress()
    package = engine.package
    progress.say(
        f"installing {engine.name} ({package.spec} from {package.registry}); "
        f"later runs reuse {target}"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.parent.chmod(0o755)
    work = Path(tempfile.mkdtemp(prefix=f".{engine.name}-", dir=target.parent))
    work.chmod(0o755)  # the sandbox's user reads it
    try:
        if package.registry == "npm":
            _npm(engine, work)
        else:
            _pip(engine, work, python)
        marker = {
            "engine": engine.name,
            "package": package.name,
            "version": package.version,
            "node": NODE.version if package.registry == "npm" else None,
            "python": python if package.registry == "pypi" else None,
        }
        (work / MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
        try:
            work.rename(target)
        except OSError:  # another run installed it meanwhile
            if not installed(engine):
                raise
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return target


def _run(argv: list[str], what: str) -> None:
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise EngineInstallError(
            f"{argv[0]} is not installed on the runner, and {what} needs it",
            "install Node.js 20+ with npm on the runner (actions/setup-node, or the "
            "image's package manager), or choose a PyPI engine",
        ) from None
    except subprocess.TimeoutExpired:
        raise EngineInstallError(f"{what} took longer than {INSTALL_TIMEOUT:.0f} s") from None
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise EngineInstallError(f"{what} failed (exit {result.returncode}): {' / '.join(tail)}")


def _npm(engine: Installable, work: Path) -> None:
    npm = shutil.which("npm") or "npm"
    _run(
        [
            npm,
            "install",
            "--prefix",
            str(work),
            "--ignore-scripts",  # the package's code runs in the sandbox only
            "--no-audit",
            "--no-fund",
            "--no-save",
            "--omit=dev",
            "--loglevel=error",
            engine.package.spec,
            NODE.spec,
        ],
        f"npm install {engine.package.spec}",
    )
    for platform_binary in _platform_binaries(work):
        platform_binary.chmod(0o755)
    for dest, source in engine.links().items():
        if not (work / source).is_file():
            raise EngineInstallError(f"{engine.name}: {source} is missing after npm install")
        (work / dest).unlink(missing_ok=True)
        try:
            os.link(work / source, work / dest)
        except OSError:
            shutil.copy2(work / source, work / dest)


def _platform_binaries(work: Path) -> list[Path]:
    """Native executables shipped inside packages, which an install script would make
    executable (the scripts are not run)."""
    found = []
    for path in (work / "node_modules").rglob("*"):
        if path.is_symlink() or not path.is_file() or path.stat().st_mode & 0o111:
            continue
        with path.open("rb") as handle:
            if handle.read(4) == b"\x7fELF" and path.suffix != ".node":
                found.append(path)
    return found


def _pip(engine: Installable, work: Path, python: str) -> None:
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--only-binary=:all:",  # wheels only: no build step runs on the runner
            "--python-version",
            python,
            "--target",
            str(work / "lib"),
            engine.package.spec,
        ],
        f"pip install {engine.package.spec} for Python {python}",
    )
    # The console scripts name the runner's interpreter; in the sandbox it is the image's.
    for script in (work / "lib" / "bin").glob("*"):
        text = script.read_bytes()
        if text.startswith(b"#!") and b"python" in text.split(b"\n", 1)[0]:
            script.write_bytes(b"#!/usr/bin/env python3" + text[text.index(b"\n") :])
