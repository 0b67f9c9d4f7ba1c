"""What an agent run needs of an external engine before its sandbox starts: the engine
itself (and the gateway it cannot run without), its installed folder as a read-only mount,
and the one prompt text it reads on stdin."""

from __future__ import annotations

import hashlib
import subprocess
from typing import TYPE_CHECKING, Any

from astraforge import render
from astraforge.config import Config
from astraforge.engines import BUILTIN, Engine, get
from astraforge.engines.base import ENGINE_ROOT
from astraforge.engines.install import MARKER, ensure
from astraforge.errors import ConfigError, EngineError
from astraforge.progress import Progress
from astraforge.sandbox.config import WORKSPACE, BwrapConfig, Mount, SandboxSpec

if TYPE_CHECKING:
    from astraforge.gateway.service import Gateway


def external_engine(config: Config, gateway: Gateway | None) -> Engine | None:
    """The configured engine, None for the built-in loop; an engine needs the gateway."""
    if config.engine == BUILTIN:
        return None
    engine = get(config.engine)
    if gateway is None or not gateway.serves_model:
        raise ConfigError(
            f"the {engine.name} engine needs a model, and none is configured",
            "set model.base_url (OPENAI_BASE_URL) or an API key (OPENAI_API_KEY, "
            "ANTHROPIC_API_KEY with model.api anthropic), or --model replay:TRAJECTORY.jsonl",
        )
    return engine


def engine_mount(engine: Engine, spec: SandboxSpec, progress: Progress) -> Mount:
    """The engine's installed folder (installed now when missing, a PyPI engine for the
    sandbox's Python), read-only in the sandbox; the key changes with every install, so a
    Docker volume is never stale."""
    python = None
    if engine.package.registry == "pypi":
        python = sandbox_python(spec)
        if python is None:  # before anything is installed or started
            raise EngineError(
                f"{engine.name} runs with the sandbox's python3, and the sandbox has none",
                "use a sandbox image with Python (sandbox.image), or the bwrap backend",
            )
    folder = ensure(engine, progress, python)
    marker = (folder / MARKER).read_bytes()
    digest = hashlib.sha256(marker + str(folder).encode()).hexdigest()[:12]
    return Mount(folder, ENGINE_ROOT, f"{engine.name}-{engine.package.version}-{digest}")


def engine_prompt(messages: list[dict[str, Any]], test_command: str | None, red: str | None) -> str:
    """The task as one text: AstraForge's instructions for an engine with tools of its own,
    then the task and its context (the built-in agent's user messages), then the failed
    test run when the runner's tests found the change red."""
    parts = [
        render.render("prompts", "engine.md.j2", workspace=WORKSPACE, test_command=test_command)
    ]
    parts += [str(m.get("content") or "") for m in messages if m.get("role") == "user"]
    if red:
        parts.append(red)
    return "\n\n".join(p.strip() for p in parts if p.strip()) + "\n"


PYTHON_VERSION = "import sys; print('%d.%d' % sys.version_info[:2])"


def sandbox_python(spec: SandboxSpec) -> str | None:
    """The version of ``python3`` in the sandbox: the host's for bubblewrap (it shows the
    host's /usr), the image's for Docker (asked in a throwaway container without network);
    None when there is none."""
    try:
        if isinstance(spec, BwrapConfig):
            out = subprocess.run(
                ["/usr/bin/python3", "-c", PYTHON_VERSION],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout
        else:
            from astraforge.sandbox.daemon import client

            raw = client(spec).containers.run(
                spec.image,
                ["python3", "-c", PYTHON_VERSION],
                remove=True,
                network_mode="none",
                user="1000:1000",
                cap_drop=["ALL"],
                read_only=True,
            )
            out = raw.decode()
    except Exception:  # no python3 there: the run says so clearly
        return None
    return out.strip() or None
