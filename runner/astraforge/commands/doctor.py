"""`astraforge doctor`: check what a run needs, and say what to fix."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from astraforge import config as config_mod
from astraforge.errors import AstraForgeError, UsageError
from astraforge.git import run_git


@dataclass(frozen=True)
class Finding:
    """One thing a run needs, and whether it is there."""

    ok: bool
    what: str
    fix: str = ""
    warning: bool = False  # worth fixing, but a run works without it


def line(finding: Finding) -> str:
    """``ok    what``, ``warn  what (fix: ...)`` or ``FAIL  what (fix: ...)``."""
    mark = "warn" if finding.warning else "ok  " if finding.ok else "FAIL"
    shown = finding.fix and (finding.warning or not finding.ok)
    return f"{mark}  {finding.what}" + (f" (fix: {finding.fix})" if shown else "")


def doctor(repo: Path, env: Mapping[str, str], forge_kind: str | None) -> list[Finding]:
    """Every check, in order; the CLI prints one line each."""
    checks: list[Callable[[], Finding]] = [
        _python,
        lambda: _config(repo, env),
        lambda: _sandbox(repo, env),
        lambda: _forge(repo, env, forge_kind),
        lambda: _model(repo, env),
    ]
    findings = [check() for check in checks]
    if env.get("GITLAB_CI", "").lower() == "true" and env.get("CI_COMMIT_REF_PROTECTED") != "true":
        findings.append(
            Finding(
                True,
                f"the job runs on the unprotected ref {env.get('CI_COMMIT_REF_NAME', '?')!r}",
                "run AstraForge on protected refs only (the template's rules do) and mark "
                "OPENAI_API_KEY and GITLAB_TOKEN protected and masked",
                warning=True,
            )
        )
    return findings


def _python() -> Finding:
    return Finding(True, f"Python {'.'.join(map(str, sys.version_info[:3]))}")


def _config(repo: Path, env: Mapping[str, str]) -> Finding:
    try:
        cfg = config_mod.load(repo, env=env)
        config_mod.load_policy(repo, cfg, env)
    except AstraForgeError as exc:
        return Finding(False, exc.message, exc.remediation)
    return Finding(True, "configuration and policy are valid")


def _sandbox(repo: Path, env: Mapping[str, str]) -> Finding:
    cfg = config_mod.load(repo, env=env)
    if cfg.sandbox.backend == "bwrap":
        if shutil.which("bwrap") is None:
            return Finding(False, "bubblewrap is not installed", "apt-get install bubblewrap")
        return Finding(True, "sandbox: bubblewrap")
    try:
        import docker

        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as exc:
        return Finding(
            False,
            f"no Docker daemon reachable ({type(exc).__name__})",
            "start Docker or set DOCKER_HOST; or use sandbox.backend: bwrap",
        )
    image = cfg.sandbox.image
    try:
        client.images.get(image)
    except Exception:
        try:
            client.api.inspect_distribution(image)  # asks the registry: can it be pulled?
        except Exception as exc:
            other = " or use sandbox.backend: bwrap (bubblewrap works here)" if _bwrap() else ""
            return Finding(
                False,
                f"sandbox image {image} is not on the Docker daemon and cannot be pulled "
                f"({type(exc).__name__})",
                f"build or load the image, or set sandbox.image to one the daemon has{other}",
            )
        return Finding(True, f"sandbox: docker; image {image} will be pulled at start")
    return Finding(True, f"sandbox: docker with image {image}")


def _bwrap() -> bool:
    from astraforge.commands.demo import bwrap_ready

    return bwrap_ready()


def _forge(repo: Path, env: Mapping[str, str], kind: str | None) -> Finding:
    from astraforge.ci import detect
    from astraforge.forges import open_forge

    kind = kind or detect.detect(env).name
    if kind == "local":
        return Finding(True, "forge: none to check outside CI (pass --forge github|gitlab)")
    ci = detect.detect(env)
    repository = (
        env.get("ASTRAFORGE_REPOSITORY")
        or (ci.repository.full_name if ci.repository else None)
        or _remote_repository(repo)
    )
    try:
        forge = open_forge(kind, repository=repository, env=env)
        info = forge.repo()
    except UsageError:  # the token is there, the repository is not known
        return Finding(
            False,
            f"no {kind} repository to check the token against",
            "set ASTRAFORGE_REPOSITORY=owner/name, or run doctor in a checkout whose origin "
            f"remote is on {kind}",
        )
    except AstraForgeError as exc:
        return Finding(False, exc.message, exc.remediation)
    return Finding(True, f"forge: {kind} {info.full_name} (default branch {info.default_branch})")


def _remote_repository(repo: Path) -> str | None:
    """owner/name (or group/subgroup/name) from the origin remote's URL."""
    if not (repo / ".git").exists():
        return None
    url = run_git(["remote", "get-url", "origin"], repo, check=False).stdout.decode().strip()
    if "://" in url:
        path = url.split("://", 1)[1].partition("/")[2]
    elif ":" in url:  # scp-like: git@host:owner/name.git
        path = url.split(":", 1)[1]
    else:
        return None
    path = path.strip("/").removesuffix(".git")
    return path if "/" in path else None


def _model(repo: Path, env: Mapping[str, str]) -> Finding:
    from astraforge.agent.model import OpenAIModel, make_model

    cfg = config_mod.load(repo, env=env)
    try:
        model = make_model(cfg.model, env)
    except AstraForgeError as exc:
        return Finding(False, exc.message, exc.remediation)
    if not isinstance(model, OpenAIModel):
        return Finding(True, f"model: {cfg.model.name}")
    try:
        model.check()
    except AstraForgeError as exc:
        return Finding(False, exc.message, exc.remediation)
    return Finding(True, f"model: {cfg.model.name} at {cfg.model.base_url or 'OpenAI'} answers")
