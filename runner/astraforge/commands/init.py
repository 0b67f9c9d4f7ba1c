"""`astraforge init`: write the workflows (or the GitLab include) and a commented
.astraforge.yml into a repository."""

from __future__ import annotations

from pathlib import Path

from astraforge import resources
from astraforge.errors import UsageError
from astraforge.git import run_git

WORKFLOWS = (
    "astraforge-issues.yml",
    "astraforge-comment.yml",
    "astraforge-request.yml",
    "astraforge-pr.yml",
    "astraforge-ci-fix.yml",
)
GITLAB_INCLUDE = "examples/issue-webhook.gitlab-ci.yml"
ARTIFACTS = "astraforge-artifacts/"  # where the GitLab job keeps its artifacts, in the tree


def detect_platform(repo: Path) -> str:
    """gitlab when the repository has .gitlab-ci.yml or a GitLab remote, else github."""
    if (repo / ".gitlab-ci.yml").exists():
        return "gitlab"
    if (repo / ".git").exists():
        remote = run_git(["remote", "get-url", "origin"], repo, check=False).stdout.decode()
        if "gitlab" in remote:
            return "gitlab"
    return "github"


def init(repo: Path, platform: str | None, force: bool) -> list[str]:
    """Write the files; return what was written (and what the user must do by hand). An
    existing .astraforge.yml is kept, so a second platform can be added later."""
    if not (repo / ".git").exists():
        raise UsageError(
            f"{repo.resolve()} is not a git repository",
            "run `astraforge init` at the top of your repository's checkout (or `git init`)",
        )
    platform = platform or detect_platform(repo)
    planned: dict[Path, bytes] = {}
    config = repo / ".astraforge.yml"
    if force or not config.exists():
        planned[config] = resources.resource("templates", "init/astraforge.yml").read_bytes()
    notes: list[str] = []
    if platform == "github":
        for name in WORKFLOWS:
            planned[repo / ".github" / "workflows" / name] = resources.resource(
                "workflows", name
            ).read_bytes()
        notes.append("add the repository secret OPENAI_API_KEY")
        notes.append(
            "astraforge-ci-fix.yml: list the workflows to fix under workflow_run.workflows "
            "and ci_workflows"
        )
        notes.append(
            "Settings > Actions > General: allow GitHub Actions to create and approve pull requests"
        )
    else:
        include = resources.resource("gitlab", GITLAB_INCLUDE).read_bytes()
        target = repo / ".gitlab-ci.yml"
        if target.exists():
            target = repo / ".gitlab" / "astraforge.gitlab-ci.yml"
            notes.append(
                "add `include: {local: .gitlab/astraforge.gitlab-ci.yml}` to .gitlab-ci.yml"
            )
        planned[target] = include
        notes.append(
            "add the CI/CD variables OPENAI_API_KEY and GITLAB_TOKEN (a project access token "
            "with the api scope and the Developer role), marked protected and masked: the "
            "job runs on protected refs only, and AstraForge's own branches are unprotected"
        )
        notes.append(
            "add a project webhook (issues, comments, pipeline events) to the pipeline trigger "
            "URL: comments and failed pipelines on AstraForge's merge requests continue them"
        )
        _ignore(repo, ARTIFACTS, notes)
    existing = [p for p in planned if p.exists()]
    if existing and not force:
        names = ", ".join(str(p.relative_to(repo)) for p in existing)
        raise UsageError(f"{names} already exist(s)", "pass --force to overwrite")
    written = []
    for path, data in planned.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(f"wrote {path.relative_to(repo)}")
    return written + [f"next: {note}" for note in notes]


def _ignore(repo: Path, pattern: str, notes: list[str]) -> None:
    """Add ``pattern`` to the repository's .gitignore unless a line already names it."""
    path = repo / ".gitignore"
    text = path.read_text() if path.exists() else ""
    if pattern.strip("/") in {line.strip().strip("/") for line in text.splitlines()}:
        return
    path.write_text(text + ("" if not text or text.endswith("\n") else "\n") + pattern + "\n")
    notes.append(f"added {pattern} to .gitignore (the job's artifacts stay out of commits)")
