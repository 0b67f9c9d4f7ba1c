"""`astraforge policy check|show|schema`: the guard rails, on any patch."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from astraforge import config as config_mod
from astraforge import policy
from astraforge.commands import common
from astraforge.commands.common import EXISTING, FILE, load_config
from astraforge.diff import parse
from astraforge.errors import PolicyError, UsageError
from astraforge.redact import secrets_from_env


def effective(policy_file: Path | None, repo: Path | None, env: Mapping[str, str]) -> policy.Policy:
    """--policy FILE, else the repository's (tightening the trusted one), else the default."""
    if policy_file is not None:
        return policy.load_file(policy_file)
    if repo is not None:
        return config_mod.load_policy(repo, load_config(repo, env), env)
    return policy.default()


def _read(path: Path | None) -> str:
    if path is None:
        return ""
    if str(path) == "-":
        return sys.stdin.read()
    try:
        return path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from None


def check(
    env: Mapping[str, str],
    *,
    diff_file: Path,
    policy_file: Path | None,
    repo: Path | None,
    message_file: Path | None,
    body_file: Path | None,
) -> list[policy.Check]:
    """Every check of the patch; a PolicyError (exit 8) names the violated rules."""
    rules = effective(policy_file, repo, env)
    checks = policy.check_patch(
        parse(_read(diff_file)),
        rules,
        commit_message=_read(message_file),
        pr_body=_read(body_file),
        known_secrets=secrets_from_env(env),
    )
    for item in checks:
        sys.stdout.write(item.line() + "\n")
    failed = policy.blocked(checks)
    if failed:
        rules_hit = ", ".join(c.rule for c in failed)
        raise PolicyError(
            f"the patch violates {len(failed)} policy rule(s): {rules_hit}",
            "change the patch, or the policy if the rule is wrong",
        )
    return checks


# -- the command line ------------------------------------------------------------------


@click.group("policy")
def group() -> None:
    """Guard rails: check patches, print the policy and its schema."""


@group.command("check")
@click.option("--diff", "diff_file", type=FILE, required=True, help="A git patch, or -.")
@click.option("--policy", "policy_file", type=FILE, help="Default: the repository's.")
@click.option("--repo", type=EXISTING, help="Repository whose .astraforge.yml names it.")
@click.option("--message", "message_file", type=FILE, help="Commit message to scan too.")
@click.option("--body", "body_file", type=FILE, help="PR body to scan too.")
def policy_check(**kw: Any) -> None:
    """Check a patch against the policy: exit 0 if it passes, 8 with the violated rules."""
    check(os.environ, **kw)


@group.command("show")
@click.option("--policy", "policy_file", type=FILE)
@click.option("--repo", type=EXISTING)
def policy_show(policy_file: Path | None, repo: Path | None) -> None:
    """Print the effective policy as JSON."""
    rules = effective(policy_file, repo, os.environ)
    common.print_json(rules.model_dump(mode="json"))


@group.command("schema")
def policy_schema() -> None:
    """Print the JSON schema of the policy file."""
    click.echo(importlib.import_module("astraforge.policy").json_schema(), nl=False)
