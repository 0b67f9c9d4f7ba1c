"""The Docker backend: a hardened container per run, the workspace copied in and out as tar.

Works against a local socket and a remote daemon (``DOCKER_HOST=tcp://...``, as with
GitLab's docker:dind): nothing is bind-mounted, so the container never sees the runner's
files. The workspace lives on a per-run volume (``put_archive`` cannot write into a tmpfs
or a read-only root), everything else is read-only or a size-capped tmpfs.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astraforge.errors import SandboxError
from astraforge.progress import Progress
from astraforge.sandbox.base import Sandbox
from astraforge.sandbox.config import HOME, SANDBOX_UID, TMP, WORKSPACE, DockerConfig
from astraforge.sandbox.session import ShellSession
from astraforge.sandbox.shadow import Shadow
from astraforge.sandbox.tree import Source, tar_stream

LABEL = "io.astraforge.sandbox"
NO_NEW_PRIVILEGES = "no-new-privileges:true"
PULL_REPORT = 3.0  # seconds between lines about an image pull


def client(config: DockerConfig) -> Any:
    """A Docker client that answered a ping, or one SandboxError."""
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise SandboxError("the docker SDK is not installed", "pip install docker") from exc
    try:
        if config.docker_host:
            api = docker.DockerClient(base_url=config.docker_host, timeout=120)
        else:
            api = docker.from_env(timeout=120)
        api.ping()
    except Exception as exc:
        raise SandboxError(
            f"cannot reach the Docker daemon ({type(exc).__name__}: {exc})",
            "start dockerd or set DOCKER_HOST, or use --backend bwrap",
        ) from None
    return api


@dataclass(frozen=True)
class Setting:
    """One hardened setting: the docker-py argument that asks for it, and the HostConfig
    field of the created container that must show it (None: checked by :func:`verify`)."""

    argument: str
    value: Any
    field: str | None = None
    shown: Any = None
    contains: bool = False  # the field must hold ``shown`` among its values


def hardening(config: DockerConfig, volume: str) -> list[Setting]:
    """The hardened settings, declared once: :func:`host_config` asks for them and
    :func:`verify` checks the created container against them."""
    from docker.types import Mount, Ulimit

    uid = SANDBOX_UID
    network = config.setup_network_name if config.setup_network else "none"
    memory = config.memory_mb * 2**20
    tmpfs = {
        TMP: f"rw,nosuid,nodev,size={config.tmp_mb}m,mode=1777",
        HOME: f"rw,nosuid,nodev,size={config.home_mb}m,uid={uid},gid={uid},mode=700",
    }
    return [
        Setting("network_mode", network, "NetworkMode", network),
        Setting("cap_drop", ["ALL"], "CapDrop", ["ALL"]),
        Setting("security_opt", [NO_NEW_PRIVILEGES], "SecurityOpt", NO_NEW_PRIVILEGES, True),
        Setting("read_only", True, "ReadonlyRootfs", True),
        Setting("privileged", False, "Privileged", False),
        Setting("mem_limit", f"{config.memory_mb}m", "Memory", memory),
        Setting("memswap_limit", f"{config.memory_mb}m", "MemorySwap", memory),
        Setting("nano_cpus", int(config.cpus * 1e9), "NanoCpus", int(config.cpus * 1e9)),
        Setting("pids_limit", config.pids, "PidsLimit", config.pids),
        Setting("init", True, "Init", True),
        Setting("tmpfs", tmpfs, "Tmpfs", tmpfs),
        Setting(
            "ulimits",
            [
                Ulimit(name="nofile", soft=config.nofile, hard=config.nofile),
                Ulimit(name="core", soft=0, hard=0),
            ],
            "Ulimits",
            [
                {"Name": "nofile", "Soft": config.nofile, "Hard": config.nofile},
                {"Name": "core", "Soft": 0, "Hard": 0},
            ],
        ),
        Setting("user", f"{uid}:{uid}"),
        Setting("mounts", [Mount(target=WORKSPACE, source=volume, type="volume")]),
        Setting("ports", {}),
        Setting("use_config_proxy", False),
    ]


def host_config(config: DockerConfig, volume: str) -> dict[str, Any]:
    """The container's hardened arguments for docker-py."""
    return {s.argument: s.value for s in hardening(config, volume)}


def verify(attrs: dict[str, Any], config: DockerConfig, volume: str) -> list[str]:
    """Differences between a container's actual HostConfig and the hardened settings."""
    host = attrs.get("HostConfig") or {}
    problems = []
    for setting in hardening(config, volume):
        if setting.field is None:
            continue
        actual = host.get(setting.field)
        ok = setting.shown in (actual or []) if setting.contains else actual == setting.shown
        if not ok:
            problems.append(f"{setting.field} is {actual!r}, the policy says {setting.shown!r}")
    if host.get("CapAdd"):
        problems.append(f"capabilities added: {host['CapAdd']}")
    if host.get("Binds"):
        problems.append(f"host paths are bind-mounted: {host['Binds']}")
    for mount in attrs.get("Mounts") or []:
        if mount.get("Type") == "bind" or "docker.sock" in str(mount.get("Source", "")):
            problems.append(f"bind mount of {mount.get('Source')}")
        if mount.get("Type") == "volume" and mount.get("Name") != volume:
            problems.append(f"unexpected volume {mount.get('Name')}")
    if host.get("PortBindings"):
        problems.append("ports are published")
    user = (attrs.get("Config") or {}).get("User", "")
    if user.split(":")[0] in ("", "0", "root"):
        problems.append("the container runs as root")
    return problems


class DockerSandbox(Sandbox):
    """A hardened container per run."""

    config: DockerConfig

    def __init__(
        self,
        config: DockerConfig,
        workspace: os.PathLike[str] | str,
        *,
        run_id: str | None = None,
        progress: Progress | None = None,
    ) -> None:
        super().__init__(config, Path(workspace), run_id=run_id, progress=progress)
        self.name = f"astraforge-{self.run_id}"
        self._docker: Any = None
        self._container: Any = None
        self._volume: Any = None
        self._sock: Any = None
        self._send_lock = threading.Lock()
        self._online = config.setup_network

    # -- lifecycle --------------------------------------------------------------------------
    def _launch(self, source: Source, shadow: Shadow) -> ShellSession:
        import docker.errors

        self._docker = client(self.config)
        labels = {
            LABEL: "1",
            f"{LABEL}.run": self.run_id,
            f"{LABEL}.host": socket.gethostname(),
            f"{LABEL}.pid": str(os.getpid()),
            f"{LABEL}.created": str(int(time.time())),
        }
        self._ensure_image(docker.errors)
        # A tmpfs-backed volume: owned by the sandbox user, size-capped, and (unlike a tmpfs
        # mount) writable through put_archive once the container runs.
        self._volume = self._docker.volumes.create(
            name=f"{self.name}-ws",
            labels=labels,
            driver="local",
            driver_opts={
                "type": "tmpfs",
                "device": "tmpfs",
                "o": f"size={self.config.workspace_mb}m,uid={SANDBOX_UID},"
                f"gid={SANDBOX_UID},mode=0755",
            },
        )
        # The shell is the container's main process (under docker-init): the session reads
        # its stdin through one attach stream, with no exec per command.
        self._container = self._docker.containers.create(
            self.config.image,
            ["/bin/sh"],
            name=self.name,
            labels=labels,
            environment=self.config.environment(),
            working_dir=WORKSPACE,
            stdin_open=True,
            tty=False,
            detach=True,
            **host_config(self.config, self._volume.name),
        )
        self._container.reload()
        problems = verify(self._container.attrs, self.config, self._volume.name)
        if problems:
            raise SandboxError(
                "the sandbox container is not locked down: " + "; ".join(problems),
                "report this as a bug",
            )
        sock = self._docker.api.attach_socket(
            self._container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
        )
        self._sock = getattr(sock, "_sock", sock)
        self._sock.settimeout(None)
        session = ShellSession(self._send, self._interrupt, self.config.output_limit, WORKSPACE)
        threading.Thread(target=self._read_frames, args=(session,), daemon=True).start()
        self._container.start()

        copied = tar_stream((shadow.record(e) for e in source.entries()), SANDBOX_UID)
        if not self._container.put_archive(WORKSPACE, copied):
            raise SandboxError("copying the workspace into the sandbox failed")
        session.start()
        return session

    def _ensure_image(self, errors: Any) -> None:
        try:
            self._docker.images.get(self.config.image)
        except errors.ImageNotFound:
            try:
                self._pull()
            except errors.APIError as exc:
                raise SandboxError(
                    f"sandbox image {self.config.image!r} is not available ({exc.explanation})",
                    "pull or build the image, or set sandbox.image",
                ) from None

    def _pull(self) -> None:
        """Pull the image, saying how far it got every few seconds."""
        image = self.config.image
        self.progress.pull(f"pulling {image}")
        layers: dict[str, str] = {}
        last = time.monotonic()
        for event in self._docker.api.pull(image, stream=True, decode=True):
            if "error" in event:
                raise SandboxError(
                    f"sandbox image {image!r} could not be pulled ({event['error']})",
                    "check the image name and the registry, or set sandbox.image",
                )
            if event.get("id") and event.get("status"):
                layers[str(event["id"])] = str(event["status"])
            if time.monotonic() - last >= PULL_REPORT:
                last = time.monotonic()
                done = sum(s in ("Pull complete", "Already exists") for s in layers.values())
                self.progress.pull(f"pulling {image}: {done}/{len(layers)} layers done")
        self.progress.pull(f"pulled {image}")

    def _send(self, data: bytes) -> None:
        with self._send_lock:
            try:
                self._sock.sendall(data)
            except (OSError, AttributeError) as exc:
                raise SandboxError(f"the sandbox shell is gone ({exc})") from None

    def _interrupt(self) -> None:
        """SIGUSR1 to the shell (docker-init forwards it): its trap kills the command."""
        with contextlib.suppress(Exception):
            self._container.kill(signal="SIGUSR1")

    def _read_frames(self, session: ShellSession) -> None:
        sock = self._sock
        try:
            while True:
                header = _recv_exact(sock, 8)
                if header is None:
                    break
                stream, size = header[0], struct.unpack(">I", header[4:])[0]
                remaining = size
                while remaining:
                    chunk = sock.recv(min(remaining, 1 << 16))
                    if not chunk:
                        return
                    remaining -= len(chunk)
                    session.feed(stream, chunk)
        except OSError:
            pass
        finally:
            session.close()

    def _teardown(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.remove(force=True)
            self._container = None
        if self._volume is not None:
            with contextlib.suppress(Exception):
                self._volume.remove(force=True)
            self._volume = None

    # -- the protocol -----------------------------------------------------------------------
    def _go_offline(self) -> None:
        """Disconnect every network; the agent phase runs with loopback only."""
        if not self._online:
            return
        self._container.reload()
        for name in list(self._container.attrs["NetworkSettings"]["Networks"]):
            self._docker.networks.get(name).disconnect(self._container, force=True)
        self._container.reload()
        left = self._container.attrs["NetworkSettings"]["Networks"]
        if left:
            raise SandboxError(f"the sandbox is still on networks {sorted(left)} after setup")
        self._online = False

    def _oom_since(self, since: float) -> bool:
        events = self._docker.api.events(
            since=int(since) - 1,
            until=int(time.time()) + 1,
            decode=True,
            filters={"container": self._container.id, "event": "oom"},
        )
        try:
            return any(True for _ in events)
        finally:
            events.close()


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _leftover(labels: dict[str, str], older_than: float) -> bool:
    """A sandbox is left over when the runner that made it on this host is gone, or when it
    is older than ``older_than`` seconds (runners on other hosts, e.g. a shared dind)."""
    if labels.get(f"{LABEL}.host") == socket.gethostname():
        pid = labels.get(f"{LABEL}.pid", "")
        if pid.isdigit():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                pass
    created = labels.get(f"{LABEL}.created", "")
    return not created.isdigit() or time.time() - int(created) > older_than


def gc(config: DockerConfig | None = None, older_than: float = 6 * 3600) -> list[str]:
    """Remove leftover sandbox containers and their volumes; return their names.

    Sandboxes of runners still alive on this host are kept, and so are sandboxes younger
    than ``older_than`` seconds whose runner is elsewhere.
    """
    api = client(config or DockerConfig())
    removed = []
    for container in api.containers.list(all=True, filters={"label": LABEL}):
        if _leftover(container.labels, older_than):
            with contextlib.suppress(Exception):
                container.remove(force=True)
                removed.append(container.name)
    for volume in api.volumes.list(filters={"label": LABEL}):
        labels = volume.attrs.get("Labels") or {}
        if _leftover(labels, older_than):
            with contextlib.suppress(Exception):
                volume.remove(force=True)
                removed.append(volume.name)
    return removed
