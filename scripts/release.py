"""Keep every place that names AstraForge's release version in step with the git tag.

    python scripts/release.py bump 1.2.0     # before tagging: pins, image reference, CHANGELOG
    python scripts/release.py check v1.2.0   # the release workflows: the tag matches them all

The package's own version comes from the tag (hatch-vcs); these files cannot, so the release
commit names the version and the release workflow refuses a tag they do not match:

- the GitLab component's (and its remote-include copy's) ``runner_package`` pin, and the
  ``include: component:`` lines that show the version (the template, README.md);
- the sandbox image the action uses by default (action.yml);
- the newest entry of CHANGELOG.md (``## 1.2.0 - 2026-12-02``; ``(unreleased)`` before).

Exit 0 when in step; 1 with one line per mismatch and the fix.
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERSION = r"\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?"
TAG = re.compile(rf"^v({VERSION})$")
COMPONENT = rf"component: \$CI_SERVER_FQDN/astraforge/astraforge/astraforge@({VERSION})\n"
PINS = [  # (file, pattern whose group 1 is the version)
    ("templates/astraforge.yml", rf"default: astraforge==({VERSION})\n"),
    ("templates/astraforge.yml", COMPONENT),  # the usage comment
    ("gitlab-ci/astraforge.gitlab-ci.yml", rf"default: astraforge==({VERSION})\n"),
    ("gitlab-ci/astraforge.gitlab-ci.yml", COMPONENT),
    ("action.yml", rf"ghcr\.io/astraforge/astraforge-sandbox:({VERSION})\n"),
    ("README.md", COMPONENT),
]
CHANGELOG = "CHANGELOG.md"
ENTRY = re.compile(rf"^## ({VERSION})(?: - (\d{{4}}-\d\d-\d\d)| \(unreleased\))$", re.MULTILINE)


def versions(root: Path) -> list[tuple[str, str | None]]:
    """(place, the version it names or None), for each place."""
    found: list[tuple[str, str | None]] = []
    for name, pattern in PINS:
        match = re.search(pattern, (root / name).read_text())
        what = "pin" if "==" in pattern else "image" if "ghcr" in pattern else "include line"
        found.append((f"{name} ({what})", match[1] if match else None))
    entry = ENTRY.search((root / CHANGELOG).read_text())
    found.append((f"{CHANGELOG} (newest entry)", entry[1] if entry else None))
    return found


def released(root: Path, version: str) -> bool:
    """Whether CHANGELOG.md dates ``version`` (not ``(unreleased)``)."""
    return any(m[1] == version and m[2] for m in ENTRY.finditer((root / CHANGELOG).read_text()))


def check(root: Path, tag: str) -> list[str]:
    """The mismatches between ``tag`` and the files, one line each."""
    match = TAG.match(tag)
    if not match:
        return [f"tag {tag!r} is not vMAJOR.MINOR.PATCH (e.g. v1.2.0, v1.3.0rc1)"]
    version, fix = match[1], f"run `python scripts/release.py bump {match[1]}`, commit, tag again"
    problems = [
        f"{name} names {found or 'no version'}, the tag {tag}: {fix}"
        for name, found in versions(root)
        if found != version
    ]
    if not problems and not released(root, version):
        problems.append(f"{CHANGELOG} has {version} as unreleased: {fix}")
    return problems


def bump(root: Path, version: str, today: datetime.date) -> None:
    """Name ``version`` everywhere; its CHANGELOG entry gets today's date."""
    for name, pattern in PINS:
        path = root / name
        text = path.read_text()
        if not re.search(pattern, text):
            raise SystemExit(f"{name}: no version to replace (pattern {pattern!r})")
        path.write_text(re.sub(pattern, lambda m: m[0].replace(m[1], version), text, count=1))
    path = root / CHANGELOG
    text = path.read_text()
    entry = ENTRY.search(text)
    dated = f"## {version} - {today.isoformat()}"
    if entry is None or entry[2]:  # no open entry: a new one on top
        at = entry.start() if entry else len(text)
        text = text[:at] + f"{dated}\n\n- (describe the changes)\n\n" + text[at:]
    else:
        text = text[: entry.start()] + dated + text[entry.end() :]
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check").add_argument("tag")
    sub.add_parser("bump").add_argument("version")
    args = parser.parse_args(argv)
    if args.command == "bump":
        if not re.fullmatch(VERSION, args.version):
            print(f"error: {args.version!r} is not MAJOR.MINOR.PATCH", file=sys.stderr)
            return 2
        bump(args.root, args.version, datetime.date.today())
        print(f"named {args.version} in {', '.join(sorted({name for name, _ in PINS}))}")
        return 0
    problems = check(args.root, args.tag)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not problems:
        print(f"{args.tag}: every pin, the image reference and {CHANGELOG} agree")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
