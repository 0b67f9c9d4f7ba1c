"""`astraforge prompt`: the messages a run would send, with their token count."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from astraforge.commands.common import load_config, say, task_from
from astraforge.context.prompt import build_prompt


def prompt(
    env: Mapping[str, str],
    *,
    repo: Path,
    event_file: Path | None,
    text: str | None,
    example: str | None,
    config_file: Path | None,
    as_json: bool,
) -> str:
    """The prompt as text (or JSON); notes go to stderr."""
    cfg = load_config(repo, env, file=config_file)
    task = task_from(
        cfg.trigger.syntax(), env, event_file=event_file, text=text, example_name=example
    )
    built = build_prompt(task, repo, cfg, env)
    for note in built.context.notes:
        say(f"note: {note}")
    if as_json:
        data = {"messages": built.messages, "tokens": built.tokens, "omitted": built.omitted}
        return json.dumps(data, indent=2, ensure_ascii=False)
    lines = []
    for message in built.messages:
        lines += [f"===== {message['role']} =====", message["content"].rstrip("\n")]
    omitted = f"; left out: {', '.join(built.omitted)}" if built.omitted else ""
    lines.append(f"===== {built.tokens} tokens (budget {built.budget}){omitted} =====")
    return "\n".join(lines)
