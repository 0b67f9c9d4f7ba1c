"""The Docker sandbox's hardened settings, declared once: the container is created with
them and checked against them after it is created (a daemon that silently drops one, as
rootless or older engines may, stops the run)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from astraforge.sandbox.config import HOME, SANDBOX_UID, TMP, WORKSPACE, DockerConfig

NO_NEW_PRIVILEGES = "no-new-privileges:true"


@dataclass(frozen=True)
class Setting:
    """One hardened setting: the docker-py argument that asks for it, and the HostConfig
    field of the created container that must show it (None: checked by :func:`verify`)."""

    argument: str
    value: Any
    field: str | None = None
    shown: Any = None
    contains: bool = False  # the field must hold ``shown`` among its values


def hardening(
    config: DockerConfig, volume: str, readonly: Mapping[str, str] | None = None
) -> list[Setting]:
    """The hardened settings, declared once: :func:`host_config` asks for them and
    :func:`verify` checks the created container against them. ``readonly`` maps volumes
    mounted read-only (installed engines) to their paths."""
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
        Setting(
            "mounts",
            [
                Mount(target=WORKSPACE, source=volume, type="volume"),
                *(
                    Mount(target=target, source=name, type="volume", read_only=True)
                    for name, target in (readonly or {}).items()
                ),
            ],
        ),
        Setting("ports", {}),
        Setting("use_config_proxy", False),
    ]


def host_config(
    config: DockerConfig, volume: str, readonly: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The container's hardened arguments for docker-py."""
    return {s.argument: s.value for s in hardening(config, volume, readonly)}


def verify(
    attrs: dict[str, Any],
    config: DockerConfig,
    volume: str,
    readonly: Mapping[str, str] | None = None,
) -> list[str]:
    """Differences between a container's actual HostConfig and the hardened settings."""
    host = attrs.get("HostConfig") or {}
    readonly = readonly or {}
    problems = []
    for setting in hardening(config, volume, readonly):
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
        name = mount.get("Name")
        if mount.get("Type") == "volume" and name != volume:
            if name not in readonly:
                problems.append(f"unexpected volume {name}")
            elif mount.get("RW"):
                problems.append(f"volume {name} is writable")
    if host.get("PortBindings"):
        problems.append("ports are published")
    user = (attrs.get("Config") or {}).get("User", "")
    if user.split(":")[0] in ("", "0", "root"):
        problems.append("the container runs as root")
    return problems
