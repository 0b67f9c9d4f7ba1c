"""`astraforge run`: the whole flow, from the event to the PR."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from astraforge import pipeline


def default_out(env: Mapping[str, str]) -> Path:
    """Where artifacts go unless --out says: never inside the checkout. GitHub Actions:
    $RUNNER_TEMP/astraforge (the action uploads it); GitLab CI: the job's artifacts
    folder; elsewhere a new folder under the user's cache."""
    if env.get("GITHUB_ACTIONS") == "true" and env.get("RUNNER_TEMP"):
        return Path(env["RUNNER_TEMP"]) / "astraforge"
    if env.get("GITLAB_CI") == "true" and env.get("CI_PROJECT_DIR"):
        return Path(env["CI_PROJECT_DIR"]) / "astraforge-artifacts"
    cache = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "astraforge" / "runs"
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError:
        cache = Path(tempfile.gettempdir())
    return Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=cache))


def run(
    *,
    repo: Path,
    out: Path | None,
    event_file: Path | None,
    forge: str | None,
    forge_dir: Path | None,
    config_file: Path | None,
    overrides: dict[str, Any],
    dry_run: bool | None,
    publish_from: Path | None,
    env: Mapping[str, str] | None = None,
) -> pipeline.Result:
    """Run the pipeline with these flags; the result carries the exit code."""
    env = dict(os.environ if env is None else env)
    options = pipeline.Options(
        repo=repo.resolve(),
        out=(out or default_out(env)).resolve(),
        event=event_file,
        forge=forge,
        forge_dir=forge_dir,
        config_file=config_file,
        overrides=overrides,
        dry_run=dry_run,
    )
    return pipeline.run(options, env, publish_from=publish_from)
