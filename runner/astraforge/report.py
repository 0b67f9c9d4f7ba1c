"""What every run leaves behind, whatever its end: report.json next to diff.patch and
trajectory.jsonl, the CI outputs, and the job summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from astraforge import render
from astraforge.agent.run import DIFF, TRAJECTORY
from astraforge.ci import detect

if TYPE_CHECKING:
    from astraforge.pipeline import Result, Run

REPORT = "report.json"
SUMMARY = "summary.md"


def trajectory_link(ci_env: detect.CIEnvironment, out: Path) -> str:
    """Where a reader finds the trajectory: the run's artifacts in CI, else the file."""
    if ci_env.name == "github" and ci_env.run_url:
        return f"{ci_env.run_url}#artifacts"
    if ci_env.name == "gitlab" and ci_env.run_url:
        return f"{ci_env.run_url}/artifacts/browse"
    return str(out / TRAJECTORY)


def as_json(run: Run, result: Result) -> dict[str, Any]:
    """report.json: how the run ended and what it made."""
    published = result.published
    pr = published.pr if published else None
    return {
        "version": 1,
        "conclusion": result.conclusion.value,
        "reason": result.reason,
        "dry_run": result.dry_run,
        "task": result.task.public_dict() if result.task else None,
        "outcome": result.outcome.model_dump(mode="json") if result.outcome else None,
        "checks": [c.as_dict() for c in result.checks],
        "branch": published.branch if published else None,
        "pr_url": pr.url if pr else None,
        "pr_number": pr.number if pr else None,
        "writes": published.writes if published else [],
        "run_url": run.links.run,
    }


def outputs(run: Run, data: dict[str, Any]) -> dict[str, str]:
    """The outputs of the action and the GitLab dotenv report."""
    trajectory = run.options.out / TRAJECTORY
    return {
        "conclusion": data["conclusion"],
        "pr_url": data["pr_url"] or "",
        "pr_number": str(data["pr_number"] or ""),
        "branch": data["branch"] or "",
        "trajectory_file": str(trajectory) if trajectory.exists() else "",
    }


def write(run: Run, result: Result) -> None:
    """report.json, an empty diff.patch when there was no change, the outputs and the job
    summary; the last log line says where they are."""
    out = run.options.out
    data = as_json(run, result)
    result.report = out / REPORT
    result.report.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    if not (out / DIFF).exists():
        (out / DIFF).write_text("")
    for key, value in outputs(run, data).items():
        run.ci.set_output(key, value)
    summary = render.render(
        "templates", "job_summary.md.j2", result=result, report=data, links=run.links, out=str(out)
    )
    (out / SUMMARY).write_text(run.ci.redact(summary))
    run.ci.summary(summary)
    run.say(f"conclusion: {result.conclusion.value} ({result.reason}); artifacts in {out}")
