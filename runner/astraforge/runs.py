"""What one run is made of, shared by its steps: the options it was given, what every step
may read (:class:`Run`, :class:`Loaded`), how a step ends it early (:class:`Stop`), and how
it ended (:class:`Result`)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astraforge import config as config_mod
from astraforge import policy, report
from astraforge.agent.outcome import Outcome
from astraforge.ci import detect
from astraforge.ci.log import CI, current
from astraforge.conclusion import Conclusion
from astraforge.errors import AstraForgeError
from astraforge.publish import Links, Published
from astraforge.redact import Redactor, secrets_from_env
from astraforge.task import Task


@dataclass
class Options:
    """What a run is asked to do (the `astraforge run` flags)."""

    repo: Path
    out: Path
    event: Path | None = None
    forge: str | None = None  # github | gitlab | local; default from the CI
    forge_dir: Path | None = None
    config_file: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted config fields
    dry_run: bool | None = None


@dataclass
class Result:
    """How a run ended, and what it made: the content of report.json."""

    conclusion: Conclusion = Conclusion.ERROR
    reason: str = "the run did not start"
    task: Task | None = None
    outcome: Outcome | None = None
    published: Published | None = None
    checks: list[policy.Check] = field(default_factory=list)
    error: AstraForgeError | None = None
    report: Path | None = None
    dry_run: bool = False

    @property
    def exit_code(self) -> int:
        return self.conclusion.exit_code(self.error)


class Stop(Exception):
    """A step ends the run early with a conclusion."""

    def __init__(self, conclusion: Conclusion, reason: str) -> None:
        super().__init__(reason)
        self.conclusion, self.reason = conclusion, reason


@dataclass(frozen=True)
class Run:
    """What every step may read: the options, the environment and the CI log, made once."""

    options: Options
    env: Mapping[str, str]
    ci: CI
    links: Links
    secrets: list[str]
    started: float = field(default_factory=time.monotonic)

    def say(self, line: str) -> None:
        """One line of the run's log."""
        self.ci.info(line)


@dataclass(frozen=True)
class Loaded:
    """The configuration and the policy, from the trusted side and the base commit."""

    config: config_mod.Config
    rules: policy.Policy
    dry_run: bool


def start(options: Options, env: Mapping[str, str] | None) -> Run:
    """The CI log, with every secret masked, and the links a report points at."""
    env = dict(os.environ if env is None else env)
    options.out.mkdir(parents=True, exist_ok=True)
    secrets = secrets_from_env(env)
    ci = current(env, Redactor(secrets), options.out)
    for secret in secrets:
        ci.mask(secret)
    ci_env = detect.detect(env)
    links = Links(
        run=ci_env.run_url,
        trajectory=report.artifact_link(ci_env, options.out, "trajectory.jsonl"),
        report=report.artifact_link(ci_env, options.out, "report.html"),
    )
    return Run(options, env, ci, links, secrets)
