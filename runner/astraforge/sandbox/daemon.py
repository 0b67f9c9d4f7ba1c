"""The Docker daemon: one client per daemon for the process, and the cleanup of sandboxes
a crashed runner left behind (every sandbox container and volume carries labels naming its
run, host, runner pid and creation time)."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from typing import Any

from astraforge.errors import SandboxError
from astraforge.sandbox.config import DockerConfig

LABEL = "io.astraforge.sandbox"


def client(config: DockerConfig) -> Any:
    """A Docker client that answered a ping, or one SandboxError. One client per daemon is
    kept for the process: the API version is negotiated once, connections are reused."""
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise SandboxError("the docker SDK is not installed", "pip install docker") from exc
    key = (config.docker_host, os.environ.get("DOCKER_HOST"), os.environ.get("DOCKER_CERT_PATH"))
    try:
        api = _clients.get(key)
        if api is None:
            if config.docker_host:
                api = docker.DockerClient(base_url=config.docker_host, timeout=120)
            else:
                api = docker.from_env(timeout=120)
        api.ping()
    except Exception as exc:
        _clients.pop(key, None)
        raise SandboxError(
            f"cannot reach the Docker daemon ({type(exc).__name__}: {exc})",
            "start dockerd or set DOCKER_HOST, or use --backend bwrap",
        ) from None
    _clients[key] = api
    return api


_clients: dict[tuple[str | None, ...], Any] = {}


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
