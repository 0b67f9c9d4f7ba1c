"""Python packages for a sandbox without a package index: installed distributions copied
as plain files (with their dependencies), and a tiny wheel built on the spot."""

from __future__ import annotations

import base64
import hashlib
import shutil
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement


def closure(names: list[str]) -> list[metadata.Distribution]:
    """The distributions ``names`` need at run time, themselves included."""
    seen: dict[str, metadata.Distribution] = {}
    todo = list(names)
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        dist = metadata.distribution(name)
        seen[name] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not Marker(str(req.marker)).evaluate({"extra": ""}):
                continue
            todo.append(req.name)
    return list(seen.values())


def vendor(dest: Path, names: list[str]) -> None:
    """Copy the files of ``names`` and their dependencies into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for dist in closure(names):
        for file in dist.files or []:
            if file.parts[0] in ("..", "bin") or "__pycache__" in file.parts:
                continue
            source = Path(str(dist.locate_file(file)))
            if source.is_file():
                target = dest / file
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)


def tiny_wheel(folder: Path, name: str, version: str, code: str) -> Path:
    """A pure-Python wheel holding one module ``name``."""
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": code.encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel
