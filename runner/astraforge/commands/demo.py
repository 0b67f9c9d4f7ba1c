"""`astraforge demo`: the whole flow offline, on embedded defaults.

A sample repository with a real bug, the real Sentry alert it raised (a payload Sentry
publishes), the real pipeline with a real sandbox, a replayed model, and a local forge. It
never runs agent commands without a sandbox: when neither a Docker daemon nor bubblewrap is
available it installs bubblewrap (saying so), or stops with what to do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from importlib.abc import Traversable
from pathlib import Path

from astraforge import pipeline, resources
from astraforge.errors import SandboxError, UsageError
from astraforge.forges.local import LocalForge
from astraforge.git import run_git

DOCKER_IMAGE = os.environ.get("ASTRAFORGE_DEMO_IMAGE", "astraforge-sandbox:bookworm")
Say = Callable[[str], None]


def _copy(node: Traversable, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for child in node.iterdir():
        if child.is_dir():
            _copy(child, dest / child.name)
        else:
            (dest / child.name).write_bytes(child.read_bytes())


def sample_repo(dest: Path) -> Path:
    """The demo's sample repository, committed."""
    _copy(resources.resource_dir("examples", "demo/repo"), dest)
    run_git(["init", "-q", "-b", "main", "."], dest)
    run_git(["add", "-A"], dest)
    run_git(["commit", "-q", "-m", "Checks for the runner"], dest)
    return dest


def docker_ready(image: str | None = DOCKER_IMAGE) -> bool:
    """A reachable daemon that has the sandbox image (nothing can be pulled offline); with
    ``image=None``, only a reachable daemon."""
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
        if image is not None:
            client.images.get(image)
        return True
    except Exception:
        return False


def bwrap_ready() -> bool:
    """Whether bubblewrap can create a sandbox here."""
    if shutil.which("bwrap") is None:
        return False
    probe = subprocess.run(
        ["bwrap", "--ro-bind", "/", "/", "--unshare-all", "true"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def install_bwrap(say: Say) -> bool:
    """Install bubblewrap with apt-get, saying so; whether it worked."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    say(
        "no Docker daemon with the sandbox image and no bubblewrap: installing bubblewrap "
        "with apt-get (the sandbox is required; nothing runs without it)"
    )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "bubblewrap"],
    ):
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            say(f"  {' '.join(command)} failed: {result.stderr.strip()[-300:]}")
            return False
    return bwrap_ready()


def choose_sandbox(say: Say, prefer: str | None = None) -> tuple[str, str | None]:
    """(backend, image): docker when its daemon has the image, else bubblewrap."""
    if prefer in (None, "docker") and docker_ready():
        say(f"sandbox: docker, image {DOCKER_IMAGE}")
        return "docker", DOCKER_IMAGE
    if prefer == "docker":
        if docker_ready(image=None):
            raise SandboxError(
                f"the Docker daemon does not have the demo's image {DOCKER_IMAGE} (Debian with "
                "node and git), and it cannot be pulled offline",
                f"load or build an image named {DOCKER_IMAGE} with node and git, or run "
                "`astraforge demo --backend bwrap`",
            )
        raise SandboxError(
            "no Docker daemon is reachable",
            "start dockerd or set DOCKER_HOST, or run `astraforge demo --backend bwrap`",
        )
    if bwrap_ready() or install_bwrap(say):
        say("sandbox: bubblewrap (no Docker daemon with the sandbox image is reachable)")
        return "bwrap", None
    raise SandboxError(
        "neither a Docker daemon with the sandbox image nor bubblewrap is available, and "
        "bubblewrap could not be installed",
        "install bubblewrap (`apt-get install bubblewrap`) or start Docker, then run again",
    )


def run_demo(directory: Path | None, say: Say, backend: str | None = None) -> pipeline.Result:
    """The whole flow offline, on the sample repository and a real alert."""
    root = Path(directory or tempfile.mkdtemp(prefix="astraforge-demo-")).resolve()
    if root.exists() and any(root.iterdir()):
        raise UsageError(f"{root} is not empty", "pass an empty or new --dir")
    root.mkdir(parents=True, exist_ok=True)
    say(f"demo directory: {root}")
    repo = sample_repo(root / "repo")
    say(f"sample repository with a real bug: {repo} (src/checks.js calls an undefined `heck`)")
    forge = LocalForge.init(root / "forge", repo, "demo/checks")
    say(f"local forge: {forge.root} (remote.git, pulls/, comments/)")
    alert = resources.resource("examples", "payloads/sentry-event-alert.json")
    event = root / "sentry-event-alert.json"
    event.write_bytes(alert.read_bytes())
    say("alert: a real Sentry event_alert payload (ReferenceError: heck is not defined)")
    chosen, image = choose_sandbox(say, backend)
    trajectory = root / "recorded-trajectory.jsonl"
    trajectory.write_bytes(resources.resource("examples", "demo/trajectory.jsonl").read_bytes())
    say(
        "model: a REPLAY of recorded replies (examples/demo/trajectory.jsonl); no model API "
        "is called and no key is needed"
    )
    options = pipeline.Options(
        repo=repo,
        out=root / "artifacts",
        event=event,
        forge="local",
        forge_dir=forge.root,
        overrides={
            "model.name": f"replay:{trajectory}",
            "sandbox.backend": chosen,
            "sandbox.image": image,
        },
        dry_run=False,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI"))}
    result = pipeline.run(options, env)
    pr = result.published.pr if result.published else None
    say("")
    say(f"conclusion: {result.conclusion} ({result.reason})")
    if result.published:
        say(f"branch:     {result.published.branch} in {forge.remote}")
    if pr:
        say(f"PR:         {forge.root / 'pulls' / f'{pr.number}.json'}")
    say(f"report:     {result.report}")
    say(f"diff:       {options.out / 'diff.patch'}")
    say(f"trajectory: {options.out / 'trajectory.jsonl'}")
    say(f"see it all: astraforge forge show {forge.root}")
    return result
