"""Tagged sandbox configurations: ``type: docker | bwrap``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

WORKSPACE = "/workspace"
TMP = "/tmp"  # noqa: S108 - the sandbox's own private tmpfs
SANDBOX_UID = 1000
HOME = "/home/sandbox"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Mount:
    """A folder of the runner shown read-only inside the sandbox at ``target`` (an
    installed engine). ``key`` names its content: the Docker backend copies the folder once
    into a volume of that name, so a remote daemon sees it too and later runs reuse it."""

    source: Path
    target: str
    key: str


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid")

    memory_mb: int = Field(default=2048, ge=64, description="memory limit (memory+swap)")
    cpus: float = Field(default=2.0, gt=0)
    pids: int = Field(default=512, ge=16, description="process limit")
    tmp_mb: int = Field(default=512, ge=16, description="size of the /tmp tmpfs")
    home_mb: int = Field(default=128, ge=8, description="size of the $HOME tmpfs")
    workspace_mb: int = Field(default=4096, ge=16, description="size cap of the workspace")
    nofile: int = Field(default=4096, ge=64)
    command_timeout: float = Field(default=600.0, gt=0, description="default per command")
    output_limit: int = Field(
        default=64 * 1024, ge=1024, description="bytes of each stream kept (head and tail halves)"
    )
    env_allow: list[str] = Field(
        default_factory=list, description="runner variables copied into the sandbox"
    )
    exclude: list[str] = Field(
        default_factory=list, description="globs of files never copied into the sandbox"
    )
    include: list[str] = Field(
        default_factory=list,
        description="untracked paths of a git workspace also copied in (only tracked files are, "
        "otherwise)",
    )
    setup_network: bool = Field(default=False, description="allow network for the setup phase only")
    setup_timeout: float = Field(default=900.0, gt=0, description="per setup command")

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The sandbox's whole environment: fixed values plus the allowed runner variables."""
        env = {
            "PATH": PATH,
            "HOME": HOME,
            "LANG": "C.UTF-8",
            "USER": "sandbox",
            "TMPDIR": TMP,
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        env.update({k: os.environ[k] for k in self.env_allow if k in os.environ})
        env.update(extra or {})
        return env


class DockerConfig(_Common):
    """Settings of the Docker backend."""

    type: Literal["docker"] = "docker"
    image: str = "python:3.12-slim"
    docker_host: str | None = Field(default=None, description="default: DOCKER_HOST or socket")
    setup_network_name: str = Field(
        default="bridge", description="Docker network used by the setup phase when allowed"
    )


# What a program needs from the host's /etc: the dynamic linker's cache, Debian's
# alternatives, TLS roots, time zone and name-service rules. Users, hosts and the rest are
# the sandbox's own.
ETC = [
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/ca-certificates.conf",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/mime.types",
    "/etc/os-release",
    "/etc/debian_version",
    "/etc/python3",
    "/etc/python3.11",
    "/etc/python3.12",
]


class BwrapConfig(_Common):
    """Settings of the bubblewrap backend."""

    type: Literal["bwrap"] = "bwrap"
    ro_binds: list[str] = Field(
        default_factory=lambda: ["/usr", "/bin", "/lib", "/lib64", "/sbin"],
        description="host directories visible read-only",
    )
    etc: list[str] = Field(
        default_factory=lambda: list(ETC),
        description="host files under /etc visible read-only (never the whole /etc)",
    )


SandboxSpec = Annotated[DockerConfig | BwrapConfig, Field(discriminator="type")]
