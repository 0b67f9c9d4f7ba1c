"""``astraforge.toolkit.Sandbox``: the hardened sandbox as a small, stable API.

It wraps the backends AstraForge runs its agents in (a Docker container or a bubblewrap
namespace, both with no network but loopback, all capabilities dropped, a read-only root,
size-capped tmpfs and process, memory and CPU limits) and, when asked for an allow list, the
gateway's egress proxy as the only way out.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Self

from astraforge.engines.pins import PLAYWRIGHT, Package
from astraforge.errors import SandboxError, UsageError
from astraforge.sandbox import BwrapConfig, DockerConfig, open_sandbox
from astraforge.sandbox import Sandbox as _Backend
from astraforge.sandbox.config import WORKSPACE, Mount

if TYPE_CHECKING:
    from astraforge.gateway.service import Gateway

TREE = "/tmp/.astraforge-tree"  # noqa: S108 - a listing, in the sandbox's own tmpfs
BROWSER_ROOT = "/opt/astraforge/browser"  # playwright, read-only, when opened with browser=True
CHROMIUM = "/usr/lib/chromium/chromium"  # Debian's (its /usr/bin one is a wrapper script)
Backend = Literal["docker", "bwrap"]
Network = Literal["none", "allowlist"]


@dataclass(frozen=True)
class Limits:
    """What one sandbox may use."""

    memory_mb: int = 2048
    cpus: float = 2.0
    pids: int = 512
    workspace_mb: int = 4096
    command_timeout: float = 600.0  # seconds, when ``run`` is given none
    output_limit: int = 64 * 1024  # bytes kept of each stream (head and tail halves)


@dataclass(frozen=True)
class RunResult:
    """A command's exit code, its output (stdout, then stderr) and how long it took."""

    exit_code: int
    output: str
    duration: float
    timed_out: bool = False
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


class Sandbox:
    """A started sandbox holding a copy of a workspace folder and one persistent shell.

    Use :meth:`open` as a context manager; paths are relative to the workspace (absolute
    ones must lie inside ``/workspace``)."""

    def __init__(self, backend: _Backend, gateway: Gateway | None = None) -> None:
        self._backend = backend
        self._gateway = gateway

    @classmethod
    def open(
        cls,
        workspace: str | Path,
        *,
        backend: Backend = "docker",
        image: str | None = None,
        network: Network = "none",
        allow: Sequence[str] = (),
        limits: Limits | None = None,
        browser: bool = False,
    ) -> Sandbox:
        """Start a sandbox with a copy of ``workspace`` (a git checkout's tracked files, or
        a plain folder's files). ``network="allowlist"`` lets commands reach the hosts in
        ``allow`` (``host`` or ``host:port``) through the egress proxy, and nothing else.
        ``browser=True`` adds playwright (installed once for the sandbox's Python, shown
        read-only) for the page tool; the image must have Debian's chromium."""
        root = Path(workspace)
        if not root.is_dir():
            raise UsageError(f"{root} is not a folder", "pass the folder to copy in")
        limits = limits or Limits()
        common = {
            "memory_mb": limits.memory_mb,
            "cpus": limits.cpus,
            "pids": limits.pids,
            "workspace_mb": limits.workspace_mb,
            "command_timeout": limits.command_timeout,
            "output_limit": limits.output_limit,
        }
        if backend == "docker":
            config: DockerConfig | BwrapConfig = DockerConfig(
                **common, **({"image": image} if image else {})
            )
        elif backend == "bwrap":
            config = BwrapConfig(**common)
        else:
            raise UsageError(f"unknown backend {backend!r}", "choose docker or bwrap")
        box = open_sandbox(config, root)
        if browser:
            box.mounts = [_browser(config)]
        gateway = _egress(network, allow)
        box.door = gateway
        try:
            box.start()
        except BaseException:
            if gateway is not None:
                gateway.stop()
            raise
        return cls(box, gateway)

    @property
    def run_id(self) -> str:
        """This sandbox's id (its container and temporary files carry it)."""
        return self._backend.run_id

    @property
    def has_browser(self) -> bool:
        """Whether playwright is there (opened with ``browser=True``)."""
        return any(m.target == BROWSER_ROOT for m in self._backend.mounts)

    def write_private(self, path: str, data: bytes) -> None:
        """Write a file outside the workspace, under ``/tmp`` or ``$HOME`` (not in
        :meth:`changes`): a tool's scratch files."""
        self._backend.write_private(path, data)

    def read_private(self, path: str) -> bytes:
        """A file under ``/tmp`` or ``$HOME`` (empty when there is none)."""
        return self._backend.read_private(path)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def run(self, command: str, timeout: float | None = None) -> RunResult:
        """Run ``command`` in the persistent shell (its directory and variables carry over;
        processes it leaves behind do not)."""
        result = self._backend.run(command, timeout=timeout)
        return RunResult(
            exit_code=result.exit_code,
            output=result.output,
            duration=round(result.duration, 3),
            timed_out=result.timed_out,
            truncated=result.truncated,
        )

    def read_file(self, path: str) -> bytes:
        """A file's bytes (symlinks are followed only inside the workspace)."""
        return self._backend.read_file(path)

    def write_file(self, path: str, data: bytes | str, *, executable: bool = False) -> None:
        """Create or overwrite a file, making its folders."""
        self._backend.write_file(path, data.encode() if isinstance(data, str) else data)
        if executable:
            self._check(f"chmod +x -- {self._quoted(path)}", path)

    def upload(self, source: str | Path, path: str = ".") -> None:
        """Copy a local file or folder tree to ``path`` in the workspace, keeping the
        executable bit and symlinks."""
        source = Path(source)
        if source.is_file() and not source.is_symlink():
            target = path if not path.endswith("/") else posixpath.join(path, source.name)
            self.write_file(target, source.read_bytes(), executable=_executable(source))
            return
        if not source.is_dir():
            raise UsageError(f"{source} is not a file or folder", "pass a local path to copy in")
        self._check(f"mkdir -p -- {self._quoted(path)}", path)
        for local in sorted(source.rglob("*")):
            relative = posixpath.join(path, local.relative_to(source).as_posix())
            if local.is_symlink():
                link, parent = str(local.readlink()), posixpath.dirname(relative) or "."
                self._check(
                    f"mkdir -p -- {self._quoted(parent)} && "
                    f"ln -sfn -- {shlex.quote(link)} {self._quoted(relative)}",
                    relative,
                )
            elif local.is_file():
                self.write_file(relative, local.read_bytes(), executable=_executable(local))
            elif local.is_dir():
                self._check(f"mkdir -p -- {self._quoted(relative)}", relative)

    def download(self, path: str, target: str | Path | None = None) -> bytes | None:
        """A file's bytes; or, with ``target``, the file or folder tree written there
        (regular files and folders first, symlinks last, so nothing is written through
        a link)."""
        kind = self.run(f"if [ -d {self._quoted(path)} ]; then echo dir; else echo file; fi")
        if kind.output.strip() != "dir":
            data = self.read_file(path)
            if target is not None:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                Path(target).write_bytes(data)
            return data
        if target is None:
            raise UsageError(f"{path} is a folder", "pass target= to download a tree")
        root = Path(target)
        root.mkdir(parents=True, exist_ok=True)
        links = []
        for kind_char, mode, name, link in self._find(path, "%y\\0%m\\0%P\\0%l\\0", 4):
            local = _inside(root, name)
            if kind_char == "d":
                local.mkdir(parents=True, exist_ok=True)
            elif kind_char == "l":
                links.append((local, link))
            elif kind_char == "f":
                local.parent.mkdir(parents=True, exist_ok=True)
                local.write_bytes(self.read_file(posixpath.join(path, name)))
                if int(mode, 8) & 0o111:
                    local.chmod(0o755)
        for local, link in links:
            local.symlink_to(link)
        return None

    def list_dir(self, path: str = ".") -> list[str]:
        """The names in a folder, sorted; folders end with ``/``."""
        found = self._find(path, "%y\\0%P\\0", 2, "-maxdepth 1")
        return sorted(name + ("/" if kind == "d" else "") for kind, name in found)

    def changes(self) -> str:
        """The workspace's changes since the sandbox started, as a git patch (modes,
        symlinks and deletions exact)."""
        return self._backend.changes().patch

    def close(self) -> None:
        """Stop the sandbox and remove everything it made."""
        try:
            self._backend.stop()
        finally:
            if self._gateway is not None:
                self._gateway.stop()
                self._gateway = None

    # -- helpers -----------------------------------------------------------------------------
    def _quoted(self, path: str) -> str:
        from astraforge.sandbox.paths import confine

        return shlex.quote("/".join([WORKSPACE, *confine(path)]))

    def _check(self, command: str, path: str) -> RunResult:
        result = self.run(command)
        if not result.ok:
            raise OSError(f"{path}: {result.output.strip()[-300:]}")
        return result

    def _find(self, path: str, fields: str, count: int, depth: str = "") -> list[list[str]]:
        """``find -printf`` of everything below ``path``: ``count`` NUL-ended fields per
        entry, through a file of the sandbox's own (any name, any number of entries)."""
        listing = f"{TREE}-{self.run_id}"
        self._check(
            f"(cd {self._quoted(path)} && find . -mindepth 1 {depth} -printf '{fields}') "
            f"> {listing}",
            path,
        )
        parts = self.read_private(listing).decode("utf-8", "surrogateescape").split("\0")[:-1]
        self.run(f"rm -f {listing}")
        return [parts[i : i + count] for i in range(0, len(parts) - count + 1, count)]


def _executable(path: Path) -> bool:
    return bool(path.stat().st_mode & 0o111)


def _inside(root: Path, name: str) -> Path:
    local = (root / name).resolve()
    if not local.is_relative_to(root.resolve()):
        raise SandboxError(f"{name} would be written outside {root}")
    return root / name


@dataclass(frozen=True)
class _Playwright:
    name: str = "playwright"
    package: Package = PLAYWRIGHT

    def links(self) -> dict[str, str]:
        return {}


def install_browser(python: str | None = None) -> Path:
    """Install playwright (pinned, wheels only) for a sandbox whose Python is ``python``
    (default: the runner's) into the runner's cache, as ``browser=True`` does on first use;
    for a CI step that caches it ahead."""
    from astraforge.engines.install import ensure

    return ensure(_Playwright(), None, python)


def _browser(config: DockerConfig | BwrapConfig) -> Mount:
    from astraforge.engines.session import sandbox_python

    folder = install_browser(sandbox_python(config))
    return Mount(folder, BROWSER_ROOT, f"playwright-{PLAYWRIGHT.version}-{folder.name}")


def _egress(network: Network, allow: Sequence[str]) -> Gateway | None:
    if network == "none":
        if allow:
            raise UsageError("allow= needs network='allowlist'", "pass network='allowlist'")
        return None
    if network != "allowlist":
        raise UsageError(f"unknown network {network!r}", "choose none or allowlist")
    from astraforge.agent.loop import Budget
    from astraforge.config import Budgets
    from astraforge.gateway.allow import AllowList
    from astraforge.gateway.service import Gateway

    gateway = Gateway(None, Budget(Budgets(), None), network="allowlist", allow=AllowList.of(allow))
    gateway.start()
    return gateway
