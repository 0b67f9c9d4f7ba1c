"""What every run leaves behind, whatever its end: report.json next to diff.patch and
trajectory.jsonl, the CI outputs, and the job summary."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from astraforge import render, report_html
from astraforge.agent.run import DIFF, TRAJECTORY
from astraforge.ci import detect
from astraforge.report_html import REPORT_HTML

if TYPE_CHECKING:
    from astraforge.runs import Result, Run

REPORT = "report.json"
SUMMARY = "summary.md"


def artifact_link(ci_env: detect.CIEnvironment, out: Path, name: str) -> str:
    """Where a reader finds one of the run's artifacts: the CI run's artifacts, else the file."""
    if ci_env.name == "github" and ci_env.run_url:
        return f"{ci_env.run_url}#artifacts"
    if ci_env.name == "gitlab" and ci_env.run_url:
        return f"{ci_env.run_url}/artifacts/browse"
    return str(out / name)


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
        "duration_seconds": round(time.monotonic() - run.started, 3),
    }


def outputs(run: Run, data: dict[str, Any]) -> dict[str, str]:
    """The outputs of the action and the GitLab dotenv report."""
    trajectory = run.options.out / TRAJECTORY
    usage = (data.get("outcome") or {}).get("usage") or {}
    cost = usage.get("cost_usd")
    return {
        "conclusion": data["conclusion"],
        "pr_url": data["pr_url"] or "",
        "pr_number": str(data["pr_number"] or ""),
        "branch": data["branch"] or "",
        "trajectory_file": str(trajectory) if trajectory.exists() else "",
        "report_file": str(run.options.out / REPORT_HTML),
        "cost_usd": f"{cost:.6f}" if isinstance(cost, int | float) else "",
        "input_tokens": str(usage.get("prompt_tokens") or 0),
        "output_tokens": str(usage.get("completion_tokens") or 0),
        "turns": str(usage.get("turns") or 0),
        "duration_seconds": f"{data['duration_seconds']:.1f}",
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
    try:
        report_html.write(out, data)
    except Exception as exc:  # a page that cannot render never fails the run
        run.ci.annotate("warning", f"report.html could not be written: {exc!r}")
    values = outputs(run, data)
    for key, value in values.items():
        run.ci.set_output(key, value)
    summary = render.render(
        "templates",
        "job_summary.md.j2",
        result=result,
        report=data,
        links=run.links,
        out=str(out),
        outputs=values,
    )
    (out / SUMMARY).write_text(run.ci.redact(summary))
    run.ci.summary(summary)
    said = "" if result.error is not None else f" ({result.reason})"  # the error was said
    run.say(f"conclusion: {result.conclusion.value}{said}; report: {out / REPORT_HTML}")
