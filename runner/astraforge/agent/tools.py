"""The agent's tools, executed inside the sandbox.

The names and arguments are a public contract (trajectories and replays depend on them); each
tool's arguments are a pydantic model and its JSON schema is generated from it. Every path is
confined to the workspace: no ``..`` escape, no absolute path outside it, and no symlink that
leads out of it is followed.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from astraforge.sandbox import Sandbox, confine

MAX_RESULT = 20_000  # characters of a tool result shown to the model (head and tail)
MAX_READ_LINES = 2000
MAX_LINE = 2000
MAX_MATCHES = 200
MAX_ENTRIES = 1000
MAX_SHELL_TIMEOUT = 1800.0


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Shell(_Args):
    """Run a shell command in the repository (a persistent /bin/sh session: cd and exports
    carry over). There is no network. Returns the exit code, stdout and stderr."""

    command: str = Field(min_length=1)
    timeout: float | None = Field(default=None, gt=0, description="seconds; default 600")


class ReadFile(_Args):
    """Read a text file; returns numbered lines."""

    path: str = Field(description="relative to the repository root")
    start_line: int | None = Field(default=None, ge=1, description="first line, 1-based")
    end_line: int | None = Field(default=None, ge=1, description="last line, inclusive")


class WriteFile(_Args):
    """Create or overwrite a file with the given content."""

    path: str
    content: str


class EditFile(_Args):
    """Replace one exact, unique occurrence of `old` with `new` in a file."""

    path: str
    old: str = Field(min_length=1, description="exact text, including whitespace")
    new: str


class Search(_Args):
    """Search file contents with an extended regular expression (grep -E)."""

    pattern: str = Field(min_length=1)
    path: str | None = Field(default=None, description="file or directory; default the root")


class ListDir(_Args):
    """List a directory (directories end with /, symlinks with @)."""

    path: str = "."


class Finish(_Args):
    """Call when done: the change is complete and tested, or no change is needed."""

    summary: str = Field(description="what was changed and why, for the pull request")
    root_cause: str | None = Field(default=None, description="why the bug happened")
    tests: str | None = Field(default=None, description="how the change was tested, and results")


TOOLS: dict[str, type[_Args]] = {
    "shell": Shell,
    "read_file": ReadFile,
    "write_file": WriteFile,
    "edit_file": EditFile,
    "search": Search,
    "list_dir": ListDir,
    "finish": Finish,
}


def _strip_titles(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {
            k: _strip_titles(v) for k, v in schema.items() if k != "title" or not isinstance(v, str)
        }
    if isinstance(schema, list):
        return [_strip_titles(v) for v in schema]
    return schema


def specs() -> list[dict[str, Any]]:
    """The tools as OpenAI function tools."""
    out = []
    for name, model in TOOLS.items():
        schema = _strip_titles(model.model_json_schema())
        schema.pop("description", None)
        out.append(
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": " ".join((model.__doc__ or "").split()),
                    "parameters": schema,
                },
            }
        )
    return out


@dataclass(frozen=True)
class ToolResult:
    """What a tool call returns to the model."""

    content: str
    ok: bool = True
    exit_code: int | None = None
    finish: Finish | None = None
    refused: bool = False  # a policy refused the call; it did not run


class ToolError(Exception):
    """A tool call that could not be carried out; the message goes back to the model."""


CommandCheck = Callable[[str], str | None]  # a command -> why it is refused, or None


def cap(text: str, limit: int = MAX_RESULT) -> str:
    """Text cut to ``limit`` characters, keeping the head and the tail."""
    if len(text) <= limit:
        return text
    half = limit // 2
    cut = len(text) - 2 * half
    return f"{text[:half]}\n[... {cut} characters cut ...]\n{text[-half:]}"


class Toolbox:
    """Executes tool calls against a started sandbox."""

    def __init__(
        self,
        sandbox: Sandbox,
        *,
        check_command: CommandCheck | None = None,
        check_path: CommandCheck | None = None,
        default_timeout: float = 600.0,
    ) -> None:
        self.sandbox = sandbox
        self.check_command = check_command
        self.check_path = check_path
        self.default_timeout = default_timeout
        self.refusals: list[str] = []  # what a policy refused, for the report

    def call(self, name: str, arguments: str, *, time_left: float | None = None) -> ToolResult:
        model = TOOLS.get(name)
        if model is None:
            return ToolResult(
                f"error: unknown tool {name!r}; the tools are {', '.join(TOOLS)}", False
            )
        try:
            data = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            return ToolResult(
                f"error: the arguments of {name} are not valid JSON ({exc.msg})", False
            )
        try:
            args = model.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in exc.errors()
            )
            return ToolResult(f"error: bad arguments for {name}: {problems}", False)
        try:
            return getattr(self, f"_{name}")(args, time_left)  # type: ignore[no-any-return]
        except ToolError as exc:
            return ToolResult(f"error: {exc}", False)
        except (PermissionError, IsADirectoryError, FileNotFoundError, OSError) as exc:
            return ToolResult(f"error: {_os_message(exc)}", False)

    # -- paths ------------------------------------------------------------------------------
    def resolve(self, path: str) -> str:
        """The path relative to the workspace, if the policy lets the tools touch it. The
        sandbox itself follows a symlink only when it stays inside the workspace."""
        try:
            parts = confine(path)
        except PermissionError:
            raise ToolError(f"{path} is outside the repository; use paths inside it") from None
        if self.check_path is not None and parts:
            reason = self.check_path("/".join(parts))
            if reason:
                self.refusals.append(f"{path}: {reason}")
                raise ToolError(f"refused by policy: {reason}")
        return "/".join(parts)

    # -- tools ------------------------------------------------------------------------------
    def _shell(self, args: Shell, time_left: float | None) -> ToolResult:
        if self.check_command is not None:
            reason = self.check_command(args.command)
            if reason:
                self.refusals.append(f"{args.command[:200]}: {reason}")
                return ToolResult(f"refused by policy: {reason}", False, refused=True)
        timeout = min(args.timeout or self.default_timeout, MAX_SHELL_TIMEOUT)
        if time_left is not None:
            timeout = max(1.0, min(timeout, time_left))
        result = self.sandbox.run(args.command, timeout=timeout)
        head = f"exit code {result.exit_code} ({result.duration:.1f}s)"
        if result.timed_out:
            head += f"; timed out after {timeout:g}s and was killed"
        if result.oom_killed:
            head += "; killed: out of memory"
        if result.truncated:
            head += "; output truncated"
        parts = [head]
        if result.stdout:
            parts += ["--- stdout ---", result.stdout.rstrip("\n")]
        if result.stderr:
            parts += ["--- stderr ---", result.stderr.rstrip("\n")]
        return ToolResult(cap("\n".join(parts)), result.ok, result.exit_code)

    def _read_text(self, rel: str, path: str) -> str:
        data = self.sandbox.read_file(rel)
        if b"\0" in data[:8192]:
            raise ToolError(f"{path} is a binary file ({len(data)} bytes)")
        return data.decode("utf-8", "replace")

    def _read_file(self, args: ReadFile, time_left: float | None) -> ToolResult:
        rel = self.resolve(args.path)
        lines = self._read_text(rel, args.path).splitlines()
        total = len(lines)
        if total == 0:
            return ToolResult(f"{args.path} is empty")
        start = args.start_line or 1
        if start > total:
            raise ToolError(f"{args.path} has {total} lines; start_line {start} is past the end")
        end = min(args.end_line or total, total, start + MAX_READ_LINES - 1)
        if end < start:
            raise ToolError("end_line is before start_line")
        body = []
        for number in range(start, end + 1):
            line = lines[number - 1]
            if len(line) > MAX_LINE:
                line = line[:MAX_LINE] + f" [... {len(line) - MAX_LINE} characters cut]"
            body.append(f"{number:6}\t{line}")
        head = f"{args.path}: lines {start}-{end} of {total}"
        if end < total and not args.end_line:
            head += f" (pass start_line={end + 1} for more)"
        return ToolResult(cap(head + "\n" + "\n".join(body)))

    def _write_file(self, args: WriteFile, time_left: float | None) -> ToolResult:
        rel = self.resolve(args.path)
        if not rel:
            raise ToolError("give a file path, not the repository root")
        data = args.content.encode()
        self.sandbox.write_file(rel, data)
        return ToolResult(
            f"wrote {len(data)} bytes ({len(args.content.splitlines())} lines) to {args.path}"
        )

    def _edit_file(self, args: EditFile, time_left: float | None) -> ToolResult:
        rel = self.resolve(args.path)
        text = self._read_text(rel, args.path)
        found = text.count(args.old)
        if found == 0:
            raise ToolError(
                f"`old` was not found in {args.path}; read the file again and copy the exact "
                "text, including indentation"
            )
        if found > 1:
            raise ToolError(
                f"`old` occurs {found} times in {args.path}; include more surrounding lines "
                "so that it is unique"
            )
        self.sandbox.write_file(rel, text.replace(args.old, args.new, 1).encode())
        line = text[: text.index(args.old)].count("\n") + 1
        return ToolResult(f"edited {args.path} at line {line}")

    def _search(self, args: Search, time_left: float | None) -> ToolResult:
        rel = self.sandbox.resolve(self.resolve(args.path or ".")) or "."
        grep = f"grep -rnIE --exclude-dir=.git -e {shlex.quote(args.pattern)} -- {shlex.quote(rel)}"
        result = self.sandbox.run(
            f'(f=$(mktemp); {grep} >"$f"; s=$?; head -n {MAX_MATCHES + 1} "$f" | cut -c1-400;'
            ' rm -f "$f"; exit $s)',
            timeout=120,
        )
        if result.exit_code == 1:
            return ToolResult(f"no matches for {args.pattern!r}")
        if result.exit_code != 0:
            raise ToolError(f"search failed: {result.stderr.strip() or result.stdout.strip()}")
        lines = result.stdout.splitlines()
        more = len(lines) > MAX_MATCHES
        text = "\n".join(lines[:MAX_MATCHES])
        if more:
            text += f"\n[more than {MAX_MATCHES} matches; narrow the pattern or the path]"
        return ToolResult(cap(text))

    def _list_dir(self, args: ListDir, time_left: float | None) -> ToolResult:
        rel = self.sandbox.resolve(self.resolve(args.path)) or "."
        result = self.sandbox.run(f"ls -A1F -- {shlex.quote(rel)}", timeout=60)
        if not result.ok:
            raise ToolError(result.stderr.strip() or f"cannot list {args.path}")
        entries = [e for e in result.stdout.splitlines() if e]
        text = "\n".join(entries[:MAX_ENTRIES]) or "(empty)"
        if len(entries) > MAX_ENTRIES:
            text += f"\n[{len(entries) - MAX_ENTRIES} more entries]"
        return ToolResult(text)

    def _finish(self, args: Finish, time_left: float | None) -> ToolResult:
        return ToolResult("finished", finish=args)


def _os_message(exc: OSError) -> str:
    name = exc.filename or (exc.args[0] if exc.args else "")
    if isinstance(exc, FileNotFoundError):
        return f"{name}: no such file"
    if isinstance(exc, IsADirectoryError):
        return f"{name} is a directory; use list_dir"
    if isinstance(exc, PermissionError):
        return str(exc.args[0]) if exc.args else "permission denied"
    return str(exc)
