"""The `astraforge` command line. Commands parse flags and call one function; no logic here.

Every AstraForgeError becomes one line on stderr and its exit code; ``-v`` adds the traceback.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from astraforge import __version__, events, resources
from astraforge import config as config_mod
from astraforge.ci import detect
from astraforge.ci.log import neutralize
from astraforge.errors import AstraForgeError, UsageError
from astraforge.task import Source
from astraforge.trigger import decide

if TYPE_CHECKING:
    from astraforge.sandbox.config import SandboxSpec

_state = {"verbose": False}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="astraforge")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and debug output.")
def cli(verbose: bool) -> None:
    """AstraForge: turn issues, requests and alerts into reviewed pull requests."""
    _state["verbose"] = verbose


@cli.group()
def event() -> None:
    """Inspect event payloads."""


@event.command("show")
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.option(
    "--source",
    type=click.Choice([s.value for s in Source]),
    help="Platform that sent the payload (detected from its shape when omitted).",
)
@click.option("--event-name", help="GitHub's X-GitHub-Event or Sentry's Sentry-Hook-Resource.")
@click.option("--example", help="A bundled real payload instead of FILE (see `event examples`).")
@click.option(
    "--repo",
    type=click.Path(path_type=Path, file_okay=False),
    help="Repository whose .astraforge.yml decides the trigger.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    help="Configuration file (default: REPO/.astraforge.yml).",
)
def event_show(
    file: Path | None,
    source: str | None,
    event_name: str | None,
    example: str | None,
    repo: Path | None,
    config_file: Path | None,
) -> None:
    """Print the Task a payload becomes and whether it asks for a run, as JSON.

    Without FILE inside GitHub Actions or GitLab CI, the job's own event is read.
    """
    cfg = _load_config(repo, file=config_file, env=os.environ)
    syntax = cfg.trigger.syntax()
    if example:
        file = Path(str(resources.resource("examples", f"payloads/{example}.json")))
    if file is not None:
        task = events.parse_file(file, source, event_name=event_name, syntax=syntax)
    else:
        task = detect.task_from_ci(os.environ, syntax)

    rules = config_mod.load_policy(repo, cfg, os.environ)
    decision = decide(task, cfg.trigger, rules.triggers)
    _print_json({"task": task.public_dict(), "decision": decision.as_dict()})


@event.command("examples")
def event_examples() -> None:
    """List the bundled real payloads usable with `event show --example NAME`."""
    for name in resources.list_names("examples", "payloads"):
        if name.endswith(".json"):
            click.echo(name.removesuffix(".json"))


@cli.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("schema")
def config_schema() -> None:
    """Print the JSON schema of .astraforge.yml."""
    click.echo(config_mod.json_schema(), nl=False)


@config_group.command("show")
@click.option(
    "--repo", type=click.Path(path_type=Path, file_okay=False), default=Path("."), show_default=True
)
@click.option("--config", "config_file", type=click.Path(path_type=Path))
def config_show(repo: Path, config_file: Path | None) -> None:
    """Print the effective configuration (file, environment and defaults merged)."""
    cfg = _load_config(repo, file=config_file, env=os.environ)
    _print_json(cfg.model_dump(mode="json"))


def _sandbox_spec(backend: str | None, image: str | None) -> SandboxSpec | None:
    """The sandbox --backend/--image name; None when neither is given."""
    from astraforge.sandbox import BwrapConfig, DockerConfig

    if backend == "bwrap":
        return BwrapConfig()
    if backend == "docker" or image:
        return DockerConfig(**({"image": image} if image else {}))
    return None


def _agent_settings(command: Callable[..., None]) -> Callable[..., None]:
    """--model, --base-url, --backend, --image and --test-command, handed to the command as
    ``overrides``: dotted configuration fields for :func:`config.load`."""

    @functools.wraps(command)
    def wrapper(
        *args: Any,
        model: str | None,
        base_url: str | None,
        backend: str | None,
        image: str | None,
        test_command: str | None,
        **kwargs: Any,
    ) -> None:
        overrides = {
            "model.name": model,
            "model.base_url": base_url,
            "sandbox.backend": backend,
            "sandbox.image": image,
            "test_command": test_command,
        }
        command(*args, overrides=overrides, **kwargs)

    options = [
        click.option("--model", help="Model name, or replay:TRAJECTORY.jsonl to replay a run."),
        click.option(
            "--base-url", help="OpenAI-compatible API base URL (default: OPENAI_BASE_URL)."
        ),
        click.option("--backend", type=click.Choice(["docker", "bwrap"]), help="Sandbox backend."),
        click.option("--image", help="Sandbox image (docker backend)."),
        click.option(
            "--test-command", help="Test command the runner runs before and after the change."
        ),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


@cli.group()
def sandbox() -> None:
    """Run commands in the hardened sandbox."""


@sandbox.command("run", context_settings={"ignore_unknown_options": True})
@click.option(
    "--backend", type=click.Choice(["docker", "bwrap"]), default="docker", show_default=True
)
@click.option("--image", help="Sandbox image (docker backend).")
@click.option(
    "--workspace",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=Path("."),
    show_default=True,
    help="Directory copied into the sandbox.",
)
@click.option("--timeout", type=float, default=600.0, show_default=True)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def sandbox_run(
    backend: str, image: str | None, workspace: Path, timeout: float, command: tuple[str, ...]
) -> None:
    """Run COMMAND in a fresh sandbox holding a copy of the workspace; exit with its code.

    Use it to check that your test command works in the sandbox:
    `astraforge sandbox run -- pytest -q`.
    """
    from astraforge.sandbox import open_sandbox

    spec = _sandbox_spec(backend, image)
    assert spec is not None  # --backend has a default
    line = " ".join(shlex.quote(part) for part in command)
    with open_sandbox(spec, workspace) as box:
        result = box.run(line, timeout=timeout)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if result.timed_out:
        click.echo(f"astraforge: command timed out after {timeout:g}s", err=True)
    elif result.oom_killed:
        click.echo("astraforge: command was killed: out of memory", err=True)
    sys.exit(result.exit_code if result.exit_code >= 0 else 1)


@sandbox.command("gc")
@click.option(
    "--older-than",
    type=float,
    default=6 * 3600,
    show_default=True,
    help="Also remove sandboxes older than this many seconds whatever their runner.",
)
def sandbox_gc(older_than: float) -> None:
    """Remove leftover sandbox containers and volumes (found by label).

    A sandbox whose runner process on this host is gone is removed at once; sandboxes of
    live runners are kept.
    """
    from astraforge.sandbox.docker import gc

    removed = gc(older_than=older_than)
    for name in removed:
        click.echo(f"removed {name}")
    click.echo(f"{len(removed)} leftover(s) removed")


def _default_out() -> Path:
    if os.environ.get("GITHUB_ACTIONS") == "true" and os.environ.get("RUNNER_TEMP"):
        return Path(os.environ["RUNNER_TEMP"]) / "astraforge"
    return Path("astraforge-artifacts").resolve()


@cli.command("run")
@click.option(
    "--event",
    "event_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Event payload (default: the CI job's own event).",
)
@click.option(
    "--repo",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=Path("."),
    show_default=True,
    help="Checkout of the repository.",
)
@click.option(
    "--forge",
    type=click.Choice(["github", "gitlab", "local"]),
    help="Where to publish (default: the CI the job runs in).",
)
@click.option(
    "--forge-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="The local forge's directory (with --forge local).",
)
@click.option("--config", "config_file", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Artifacts directory (default: $RUNNER_TEMP/astraforge or ./astraforge-artifacts).",
)
@click.option(
    "--dry-run/--no-dry-run", default=None, help="Do everything except write to the forge."
)
@click.option(
    "--publish-from",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Only verify and publish the artifacts of a --dry-run (hardened workflows).",
)
@_agent_settings
def run_command(
    event_file: Path | None,
    repo: Path,
    forge: str | None,
    forge_dir: Path | None,
    overrides: dict[str, Any],
    config_file: Path | None,
    out: Path | None,
    dry_run: bool | None,
    publish_from: Path | None,
) -> None:
    """The whole flow: event, permission, sandboxed agent, policy, branch, PR, status.

    Inside GitHub Actions or GitLab CI every flag comes from the environment. Exit codes:
    0 (fixed, no change, skipped, refused, budget exhausted), 8 (blocked by the policy), or the
    error's code; report.json, diff.patch and trajectory.jsonl are always written.
    """
    from astraforge import pipeline

    options = pipeline.Options(
        repo=repo.resolve(),
        out=(out or _default_out()).resolve(),
        event=event_file,
        forge=forge,
        forge_dir=forge_dir,
        config_file=config_file,
        overrides=overrides,
        dry_run=dry_run,
    )
    result = pipeline.run(options, publish_from=publish_from)
    if result.error is not None:
        raise result.error
    sys.exit(result.exit_code)


@cli.command("demo")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to put the demo (default: a new temporary directory).",
)
@click.option(
    "--backend",
    type=click.Choice(["docker", "bwrap"]),
    help="Sandbox backend (default: docker if its daemon has the image, else bwrap).",
)
def demo_command(directory: Path | None, backend: str | None) -> None:
    """Run the whole flow offline: a sample repository with a real bug, a real Sentry alert,
    the sandbox, a replayed model, and a local forge with the resulting branch and PR."""
    from astraforge.demo import run_demo

    result = run_demo(directory, lambda line: click.echo(line, err=True), backend)
    if result.error is not None:
        raise result.error
    sys.exit(result.exit_code)


@cli.command("init")
@click.option(
    "--repo",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=Path("."),
    show_default=True,
)
@click.option(
    "--platform",
    type=click.Choice(["github", "gitlab"]),
    help="Default: gitlab if the repository has .gitlab-ci.yml or a GitLab remote.",
)
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
def init_command(repo: Path, platform: str | None, force: bool) -> None:
    """Write the workflows (or the GitLab include) and a commented .astraforge.yml."""
    from astraforge.setup_cmds import init

    for line in init(repo, platform, force):
        click.echo(line)


@cli.command("doctor")
@click.option(
    "--repo",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=Path("."),
    show_default=True,
)
@click.option(
    "--forge",
    type=click.Choice(["github", "gitlab", "local"]),
    help="Forge to check the token against (default: the CI's).",
)
def doctor_command(repo: Path, forge: str | None) -> None:
    """Check Python, the configuration, the sandbox, the forge token and the model, and say
    what to fix. Exits 1 when something a run needs is missing."""
    from astraforge.setup_cmds import doctor

    findings = doctor(repo, os.environ, forge)
    for finding in findings:
        mark = "warn" if finding.warning else "ok  " if finding.ok else "FAIL"
        shown = finding.fix and (finding.warning or not finding.ok)
        fix = f" (fix: {finding.fix})" if shown else ""
        click.echo(f"{mark}  {finding.what}{fix}")
    if not all(f.ok for f in findings):
        sys.exit(1)


@cli.command("agent")
@click.option(
    "--repo",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    required=True,
    help="Local checkout the agent works on (a copy goes into the sandbox).",
)
@click.option("--task", "task_text", help="What to do, in plain language.")
@click.option(
    "--event",
    "event_file",
    type=click.Path(path_type=Path),
    help="An event payload (issue, comment, alert) instead of --task.",
)
@click.option("--config", "config_file", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Where outcome.json, diff.patch and trajectory.jsonl go.",
)
@_agent_settings
def agent_command(
    repo: Path,
    task_text: str | None,
    event_file: Path | None,
    overrides: dict[str, Any],
    config_file: Path | None,
    out: Path,
) -> None:
    """Run only the agent on a local checkout: no forge, no push.

    Writes outcome.json (with `status`), diff.patch and trajectory.jsonl into --out, also
    when the run fails.
    """
    from astraforge.agent.run import run_agent
    from astraforge.events import manual

    if (task_text is None) == (event_file is None):
        raise UsageError("give exactly one of --task TEXT and --event FILE")
    cfg = _load_config(repo, file=config_file, env=os.environ, cli=overrides)
    if event_file is not None:
        task = events.parse_file(event_file, syntax=cfg.trigger.syntax())
    else:
        task = manual.parse({"request": task_text})
    result = run_agent(task, cfg, repo, out, env=os.environ)
    outcome = result.outcome
    usage = outcome.usage
    changed = f"{len(outcome.files)} file(s) changed" if outcome.files else "no file changed"
    click.echo(
        neutralize(
            f"{outcome.status.value}: {outcome.reason}; {changed}; "
            f"{usage.get('turns', 0)} turn(s), {usage.get('total_tokens', 0)} tokens; "
            f"artifacts in {out}"
        ),
        err=True,
    )
    if result.error is not None:
        raise result.error


@cli.command("prompt")
@click.option("--event", "event_file", type=click.Path(path_type=Path), help="Event payload.")
@click.option("--task", "task_text", help="A plain-language request instead of --event.")
@click.option("--example", help="A bundled real payload (see `event examples`).")
@click.option(
    "--repo",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=Path("."),
    show_default=True,
    help="Checkout of the repository (its base branch).",
)
@click.option("--config", "config_file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the messages as JSON.")
def prompt_command(
    event_file: Path | None,
    task_text: str | None,
    example: str | None,
    repo: Path,
    config_file: Path | None,
    as_json: bool,
) -> None:
    """Print the messages a run would send to the model, with their token count.

    No model is called. Frames are mapped to REPO's files; a Sentry issue without frames is
    completed from the Sentry API when SENTRY_AUTH_TOKEN is set.
    """
    from astraforge.context.prompt import build_prompt
    from astraforge.events import manual

    if sum(x is not None for x in (event_file, task_text, example)) != 1:
        raise UsageError("give exactly one of --event FILE, --task TEXT and --example NAME")
    cfg = _load_config(repo, file=config_file, env=os.environ)
    if example:
        event_file = Path(str(resources.resource("examples", f"payloads/{example}.json")))
    if event_file is not None:
        task = events.parse_file(event_file, syntax=cfg.trigger.syntax())
    else:
        task = manual.parse({"request": task_text})
    built = build_prompt(task, repo, cfg, os.environ)
    for note in built.context.notes:
        click.echo(f"note: {note}", err=True)
    if as_json:
        _print_json({"messages": built.messages, "tokens": built.tokens, "omitted": built.omitted})
        return
    for message in built.messages:
        click.echo(f"===== {message['role']} =====")
        click.echo(message["content"].rstrip("\n"))
    omitted = f"; left out: {', '.join(built.omitted)}" if built.omitted else ""
    click.echo(f"===== {built.tokens} tokens (budget {built.budget}){omitted} =====")


@cli.command("replay")
@click.argument("trajectory", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--repo",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    required=True,
    help="Checkout holding the commit the run started from.",
)
@click.option("--backend", type=click.Choice(["docker", "bwrap"]), help="Default: as recorded.")
@click.option("--image", help="Sandbox image (docker backend).")
def replay_command(trajectory: Path, repo: Path, backend: str | None, image: str | None) -> None:
    """Re-execute a run's tool calls in a fresh sandbox, without a model.

    Exits 0 only if the resulting diff is identical to the recorded one.
    """
    from astraforge.agent.replay import replay

    result = replay(trajectory, repo, _sandbox_spec(backend, image))
    if not result.base_tree_matches:
        click.echo("warning: the replay started from different files than the run", err=True)
    if result.identical:
        click.echo(f"identical: {result.calls} tool call(s) replayed, diff {result.actual_sha256}")
        return
    click.echo(
        f"different: {result.calls} tool call(s) replayed; diff {result.actual_sha256}, "
        f"recorded {result.expected_sha256}",
        err=True,
    )
    sys.exit(1)


@cli.group("policy")
def policy_group() -> None:
    """Guard rails: check patches, print the policy and its schema."""


def _load_policy(policy_file: Path | None, repo: Path | None) -> Any:
    from astraforge import policy

    if policy_file is not None:
        return policy.load_file(policy_file)
    if repo is not None:
        cfg = _load_config(repo, env=os.environ)
        return config_mod.load_policy(repo, cfg, os.environ)
    return policy.default()


@policy_group.command("check")
@click.option(
    "--diff",
    "diff_file",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="A git patch (`git diff base...head`), or - for stdin.",
)
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Policy file (default: the repository's, else the bundled one).",
)
@click.option(
    "--repo",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Repository whose .astraforge.yml names the policy.",
)
@click.option(
    "--message",
    "message_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Commit message to scan for secrets too.",
)
@click.option(
    "--body",
    "body_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="PR body to scan for secrets too.",
)
def policy_check(
    diff_file: Path,
    policy_file: Path | None,
    repo: Path | None,
    message_file: Path | None,
    body_file: Path | None,
) -> None:
    """Check a patch against the policy: exit 0 if it passes, 8 with the violated rules.

    Works as a CI step on any pull request, including ones AstraForge did not make. Values
    of secret-named environment variables (*TOKEN*, *SECRET*, ...) are searched for too.
    """
    from astraforge import policy
    from astraforge.errors import PolicyError
    from astraforge.redact import secrets_from_env

    rules = _load_policy(policy_file, repo)

    def read(path: Path | None) -> str:
        if path is None:
            return ""
        if str(path) == "-":
            return sys.stdin.read()
        try:
            return path.read_text(encoding="utf-8", errors="surrogateescape")
        except OSError as exc:
            raise UsageError(f"{path}: cannot read it ({exc.strerror})") from None

    checks = policy.check_patch(
        read(diff_file),
        rules,
        commit_message=read(message_file),
        pr_body=read(body_file),
        known_secrets=secrets_from_env(os.environ),
    )
    for check in checks:
        click.echo(f"{'pass ' if check.passed else 'BLOCK'}  {check.name}: {check.detail}")
    failed = policy.blocked(checks)
    if failed:
        rules_hit = ", ".join(c.rule for c in failed)
        raise PolicyError(
            f"the patch violates {len(failed)} policy rule(s): {rules_hit}",
            "change the patch, or the policy if the rule is wrong",
        )


@policy_group.command("show")
@click.option("--policy", "policy_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--repo", type=click.Path(path_type=Path, file_okay=False, exists=True))
def policy_show(policy_file: Path | None, repo: Path | None) -> None:
    """Print the effective policy as JSON."""
    _print_json(_load_policy(policy_file, repo).model_dump(mode="json"))


@policy_group.command("schema")
def policy_schema() -> None:
    """Print the JSON schema of the policy file."""
    from astraforge import policy

    click.echo(policy.json_schema(), nl=False)


@cli.group("relay")
def relay_group() -> None:
    """Forward Sentry and GlitchTip alerts to GitHub repository_dispatch or GitLab triggers."""


@relay_group.command("serve")
@click.option(
    "--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), required=True
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8787, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=min(4, os.cpu_count() or 1),
    show_default="min(4, CPUs)",
    help="Processes sharing the socket and the state.",
)
def relay_serve(config_file: Path, host: str, port: int, workers: int) -> None:
    """Run the relay's HTTP service (webhooks, /healthz, /metrics)."""
    from astraforge.relay import config as relay_config
    from astraforge.relay.server import serve

    serve(relay_config.load(config_file), host, port, os.environ, workers)


@relay_group.command("forward")
@click.argument("payload", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), required=True
)
@click.option(
    "--kind",
    type=click.Choice(["sentry", "sentry-legacy", "glitchtip"]),
    default="sentry",
    show_default=True,
)
@click.option("--resource", help="Sentry-Hook-Resource (event_alert, issue, ...).")
def relay_forward(payload: Path, config_file: Path, kind: str, resource: str | None) -> None:
    """Forward one saved webhook body, with the same dedupe and limits (for cron or serverless
    use); no signature check, since the file comes from you. Prints the decision as JSON."""
    from astraforge.relay import config as relay_config
    from astraforge.relay.core import Relay
    from astraforge.relay.server import json_log
    from astraforge.relay.state import open_store

    cfg = relay_config.load(config_file)
    store = open_store(cfg.state.backend, cfg.state.path, cfg.state.redis_url)
    relay = Relay(cfg, store, os.environ, json_log)
    try:
        body = payload.read_bytes()
    except OSError as exc:
        raise UsageError(f"{payload}: cannot read it ({exc.strerror})") from None
    headers = {"Sentry-Hook-Resource": resource} if resource else {}
    verdict = relay.receive(f"/hooks/{kind}", headers, body, verify=False)
    relay.drain()
    store.close()
    _print_json(verdict.body())
    if verdict.status >= 400:
        sys.exit(4)


@cli.group("forge")
def forge_group() -> None:
    """The local forge: a directory standing in for GitHub or GitLab."""


@forge_group.command("init")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--from",
    "source",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    required=True,
    help="Repository whose history becomes the forge's remote.git.",
)
@click.option("--name", default="local/repo", show_default=True, help="owner/name to report.")
def forge_init(directory: Path, source: Path, name: str) -> None:
    """Create a local forge: DIRECTORY/remote.git, pulls/ and comments/."""
    from astraforge.forges.local import LocalForge

    if (directory / "remote.git").exists():
        raise UsageError(f"{directory} already holds a forge", "pick another directory")
    forge = LocalForge.init(directory, source, name)
    click.echo(
        f"local forge for {name} at {forge.root} (default branch {forge.repo().default_branch})"
    )


@forge_group.command("show")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False, exists=True))
def forge_show(directory: Path) -> None:
    """Print the forge's pull requests and comments as JSON."""
    from astraforge.forges.local import LocalForge

    forge = LocalForge(directory)
    pulls = [
        json.loads(p.read_text()) | {"number": int(p.stem)}
        for p in sorted((forge.root / "pulls").glob("*.json"))
    ]
    comments = {
        p.stem: json.loads(p.read_text()) for p in sorted((forge.root / "comments").glob("*.json"))
    }
    _print_json({"repo": forge.repo().__dict__, "pulls": pulls, "comments": comments})


def _load_config(
    repo: Path | None, *, file: Path | None = None, env: Any = None, cli: Any = None
) -> config_mod.Config:
    """The configuration; each ignored setting of the repository's file is a warning line."""
    cfg = config_mod.load(repo, file=file, env=env, cli=cli)
    for warning in cfg.warnings:
        click.echo(f"warning: {neutralize(warning)}", err=True)
    return cfg


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _terminate(signum: int, frame: object) -> None:
    # Turn SIGTERM into SystemExit so that every `with sandbox:` block cleans up.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> None:
    from astraforge import telemetry

    signal.signal(signal.SIGTERM, _terminate)
    telemetry.init(os.environ)
    try:
        code = cli.main(args=argv, prog_name="astraforge", standalone_mode=False)
    except AstraForgeError as exc:
        if _state["verbose"]:
            traceback.print_exc()
        click.echo(f"error: {neutralize(exc.one_line())}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:
        telemetry.report_crash(exc)
        raise
    sys.exit(code if isinstance(code, int) else 0)
