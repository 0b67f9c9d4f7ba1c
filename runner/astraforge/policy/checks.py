"""Checks of a patch (and the commit message and PR body that go with it) against a policy.

Works on any git patch, so ``astraforge policy check --diff`` can guard PRs AstraForge did not
make. Every check is reported, passed or not, with the rule that decided it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from astraforge.globs import matches
from astraforge.policy import secrets
from astraforge.policy.model import Policy


@dataclass
class FileDiff:
    path: str
    old_path: str | None = None
    status: str = "modified"  # added, modified, deleted, renamed
    binary: bool = False
    old_mode: str | None = None
    new_mode: str | None = None
    added: list[str] = field(default_factory=list)
    removed: int = 0

    @property
    def changed_lines(self) -> int:
        return len(self.added) + self.removed

    @property
    def paths(self) -> list[str]:
        return [p for p in dict.fromkeys([self.path, self.old_path or self.path]) if p]


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    rule: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _unquote(path: str) -> str:
    if not path.startswith('"'):
        return path
    raw = path[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
    return raw.encode("latin-1").decode("utf-8", "replace")


def _strip_prefix(path: str) -> str:
    path = _unquote(path.strip())
    return path[2:] if path[:2] in ("a/", "b/") else path


def parse_patch(patch: str) -> list[FileDiff]:
    """The files of a git patch with their modes, binary flag and added lines."""
    files: list[FileDiff] = []
    current: FileDiff | None = None
    in_hunk = False
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            rest = line[len("diff --git ") :]
            half = (len(rest) - 1) // 2
            guess = rest[half + 1 :] if rest[:half] and rest[half] == " " else rest
            current = FileDiff(path=_strip_prefix(guess))
            files.append(current)
            in_hunk = False
            continue
        if current is None:
            continue
        if in_hunk and line[:1] in ("+", "-", " ", "\\"):
            if line.startswith("+"):
                current.added.append(line[1:])
            elif line.startswith("-"):
                current.removed += 1
            continue
        in_hunk = False
        if line.startswith("@@"):
            in_hunk = True
        elif line.startswith("new file mode "):
            current.status, current.new_mode = "added", line.split()[-1]
        elif line.startswith("deleted file mode "):
            current.status, current.old_mode = "deleted", line.split()[-1]
        elif line.startswith("old mode "):
            current.old_mode = line.split()[-1]
        elif line.startswith("new mode "):
            current.new_mode = line.split()[-1]
        elif line.startswith("index ") and len(line.split()) == 3:
            current.old_mode = current.old_mode or line.split()[2]
            current.new_mode = current.new_mode or line.split()[2]
        elif line.startswith("rename from "):
            current.old_path, current.status = _unquote(line[len("rename from ") :]), "renamed"
        elif line.startswith("rename to "):
            current.path = _unquote(line[len("rename to ") :])
        elif line.startswith("--- ") and line[4:] != "/dev/null":
            current.old_path = current.old_path or _strip_prefix(line[4:])
        elif line.startswith("+++ ") and line[4:] != "/dev/null":
            current.path = _strip_prefix(line[4:])
        elif line.startswith(("Binary files ", "GIT binary patch")):
            current.binary = True
    return files


def check_patch(
    patch: str,
    policy: Policy,
    *,
    commit_message: str = "",
    pr_body: str = "",
    known_secrets: Iterable[str] = (),
    extra_protected: Iterable[str] = (),
) -> list[Check]:
    files = parse_patch(patch)
    return [
        _protected(files, policy, list(extra_protected)),
        _size(files, policy),
        _binary(files, policy),
        _symlinks(files),
        _submodules(files, policy),
        _secrets(files, policy, commit_message, pr_body, list(known_secrets)),
    ]


def blocked(checks: list[Check]) -> list[Check]:
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


def _secrets(
    files: list[FileDiff], policy: Policy, message: str, body: str, known: list[str]
) -> Check:
    if not policy.secrets.scan:
        return Check("secrets", True, "secret scanning is off (secrets.scan: false)")
    texts = {f"{f.path}": f.added for f in files if not f.binary}
    texts["the commit message"] = message.splitlines()
    texts["the PR body"] = body.splitlines()
    findings = []
    for where, lines in texts.items():
        findings += [f"{kind} in {where}" for kind in scan_lines(lines, known, policy)]
    if findings:
        unique = list(dict.fromkeys(findings))
        return Check(
            "secrets", False, "possible secrets: " + "; ".join(unique[:10]), "secrets.scan"
        )
    return Check("secrets", True, "no secret found in the diff, commit message or PR body")


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
