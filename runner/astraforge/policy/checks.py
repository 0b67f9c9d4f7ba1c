"""Checks of a patch (and the commit message and PR body that go with it) against a policy.

Pure: every check takes data (the parsed diff, texts, the known secret values) and returns a
result. Works on any git patch, so ``astraforge policy check --diff`` can guard PRs AstraForge
did not make. Every check is reported, passed or not, with the rule that decided it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from astraforge.diff import FileDiff
from astraforge.globs import matches
from astraforge.policy import secrets
from astraforge.policy.model import Policy

NO_SECRET = "no secret found in the diff, commit message or PR body"  # noqa: S105


@dataclass(frozen=True)
class Check:
    """One rule's verdict on a change."""

    name: str
    passed: bool
    detail: str
    rule: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """The check as one log line: ``pass   name: detail`` or ``BLOCK  name: detail``."""
        return f"{'pass ' if self.passed else 'BLOCK'}  {self.name}: {self.detail}"


def check_diff(
    files: list[FileDiff], policy: Policy, *, extra_protected: Iterable[str] = ()
) -> list[Check]:
    """Every check of the change itself: paths, size, binaries, symlinks, submodules."""
    return [
        _protected(files, policy, list(extra_protected)),
        _size(files, policy),
        _binary(files, policy),
        _symlinks(files),
        _submodules(files, policy),
    ]


def check_secrets(
    files: list[FileDiff],
    policy: Policy,
    texts: Mapping[str, str],
    known: Iterable[str] = (),
) -> Check:
    """The secret scan of the added lines and of ``texts`` (``{"the PR body": ...}``)."""
    if not policy.secrets.scan:
        return Check("secrets", True, "secret scanning is off (secrets.scan: false)")
    scanned = {f.path: f.added for f in files if not f.binary}
    scanned.update({where: text.splitlines() for where, text in texts.items()})
    findings = []
    for where, lines in scanned.items():
        findings += [f"{kind} in {where}" for kind in scan_lines(lines, list(known), policy)]
    if findings:
        unique = list(dict.fromkeys(findings))
        return Check(
            "secrets", False, "possible secrets: " + "; ".join(unique[:10]), "secrets.scan"
        )
    return Check("secrets", True, NO_SECRET)


def check_patch(
    files: list[FileDiff],
    policy: Policy,
    *,
    commit_message: str = "",
    pr_body: str = "",
    known_secrets: Iterable[str] = (),
    extra_protected: Iterable[str] = (),
) -> list[Check]:
    """Every check, the secret scan last."""
    texts = {"the commit message": commit_message, "the PR body": pr_body}
    return [
        *check_diff(files, policy, extra_protected=extra_protected),
        check_secrets(files, policy, texts, known_secrets),
    ]


def blocked(checks: list[Check]) -> list[Check]:
    """The checks that failed."""
    return [c for c in checks if not c.passed]


def _protected(files: list[FileDiff], policy: Policy, extra: list[str]) -> Check:
    globs = [*policy.paths.protected, *extra]
    if policy.paths.protect_lockfiles:
        globs += policy.paths.lockfiles
    hits = []
    for f in files:
        for path in f.paths:
            rule = matches(path, globs) or matches(path, policy.paths.read_denied)
            if rule:
                hits.append((path, rule))
    if hits:
        detail = "; ".join(f"{p} (matches {r})" for p, r in hits[:10])
        return Check(
            "protected paths",
            False,
            f"changes protected files: {detail}",
            f"paths.protected: {hits[0][1]}",
        )
    return Check("protected paths", True, "no protected file is changed")


def _size(files: list[FileDiff], policy: Policy) -> Check:
    lines = sum(f.changed_lines for f in files)
    limits = policy.diff
    if len(files) > limits.max_files:
        return Check(
            "diff size",
            False,
            f"{len(files)} files changed; the limit is {limits.max_files}",
            "diff.max_files",
        )
    if lines > limits.max_changed_lines:
        return Check(
            "diff size",
            False,
            f"{lines} lines changed; the limit is {limits.max_changed_lines}",
            "diff.max_changed_lines",
        )
    return Check("diff size", True, f"{len(files)} files, {lines} lines changed")


def _binary(files: list[FileDiff], policy: Policy) -> Check:
    binary = [f.path for f in files if f.binary and f.status != "deleted"]
    if binary and not policy.diff.allow_binary:
        return Check(
            "binary files", False, "binary files: " + ", ".join(binary[:10]), "diff.allow_binary"
        )
    return Check("binary files", True, "no binary file" if not binary else "allowed")


def _symlinks(files: list[FileDiff]) -> Check:
    bad = []
    for f in files:
        if f.new_mode != "120000" or f.status == "deleted":
            continue
        target = "".join(f.added).strip()
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(f.path), target))
        if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
            bad.append(f"{f.path} -> {target}")
    if bad:
        return Check(
            "symlinks",
            False,
            "symlinks leading outside the repository: " + ", ".join(bad[:10]),
            "no symlink outside the repository",
        )
    return Check("symlinks", True, "no symlink leads outside the repository")


def _submodules(files: list[FileDiff], policy: Policy) -> Check:
    subs = [f.path for f in files if "160000" in (f.new_mode, f.old_mode)]
    if subs and not policy.diff.allow_submodules:
        return Check(
            "submodules",
            False,
            "submodule changes: " + ", ".join(subs[:10]),
            "diff.allow_submodules",
        )
    return Check("submodules", True, "no submodule change")


def scan_lines(lines: list[str], known: list[str], policy: Policy) -> list[str]:
    """What looks like a secret in ``lines``; the secret itself is never named."""
    found = secrets.scan(lines, known)
    found += _detect_secrets([secrets.PRAGMA.sub("", line) for line in lines], policy)
    return list(dict.fromkeys(found))


def _detect_secrets(lines: list[str], policy: Policy) -> list[str]:
    plugins = policy.secrets.plugins
    if not plugins or not lines:
        return []
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import get_settings, transient_settings

    found: list[str] = []
    with transient_settings({"plugins_used": [{"name": name} for name in plugins]}):
        get_settings().disable_filters("detect_secrets.filters.allowlist.is_line_allowlisted")
        for line in lines:
            found += [f"a {secret.type}" for secret in scan_line(line)]
    return found
