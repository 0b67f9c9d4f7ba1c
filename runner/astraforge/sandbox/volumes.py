"""Read-only folders of the runner in a Docker sandbox: each is copied once through the
Engine API into a volume named after its content key, which later runs mount read-only
(nothing is bind-mounted, so a remote daemon works the same)."""

from __future__ import annotations

import contextlib
import io
import subprocess
import tarfile
from typing import Any

from astraforge.errors import SandboxError
from astraforge.progress import Progress
from astraforge.sandbox.config import Mount

LABEL = "astraforge.readonly"
COMPLETE = ".astraforge-complete"
SCRATCH = "/astraforge-fill"


def volume_name(mount: Mount) -> str:
    """The volume holding ``mount``'s folder."""
    return f"astraforge-ro-{mount.key}"


def provide(client: Any, image: str, mounts: list[Mount], progress: Progress) -> dict[str, str]:
    """Volume name -> path in the sandbox, each volume filled once."""
    return {_fill(client, image, m, progress): m.target for m in mounts}


def _fill(client: Any, image: str, mount: Mount, progress: Progress) -> str:
    from docker.errors import NotFound

    name = volume_name(mount)
    try:
        client.volumes.get(name)
    except NotFound:
        client.volumes.create(name=name, labels={LABEL: mount.key})
    helper = client.containers.create(
        image,
        ["/bin/true"],
        labels={LABEL: mount.key},
        network_mode="none",
        mounts=[docker_mount(name)],
    )
    try:
        with contextlib.suppress(NotFound):
            helper.get_archive(f"{SCRATCH}/{COMPLETE}")
            return name
        progress.say(f"copying {mount.source} into the Docker volume {name} (once)")
        with subprocess.Popen(
            ["tar", "-C", str(mount.source), "-c", "."],
            stdout=subprocess.PIPE,
        ) as tar:
            ok = helper.put_archive(SCRATCH, tar.stdout)
        if not ok or tar.returncode != 0:
            raise SandboxError(f"copying {mount.source} into the volume {name} failed")
        helper.put_archive(SCRATCH, _marker())
        return name
    finally:
        with contextlib.suppress(Exception):
            helper.remove(force=True)


def docker_mount(name: str) -> Any:
    """The volume mounted writable in the helper container that fills it."""
    from docker.types import Mount as DockerMount

    return DockerMount(target=SCRATCH, source=name, type="volume")


def _marker() -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        info = tarfile.TarInfo(COMPLETE)
        archive.addfile(info, io.BytesIO(b""))
    return data.getvalue()
