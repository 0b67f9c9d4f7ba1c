"""The coding agents AstraForge runs inside its sandbox, besides its built-in tool loop.

Every engine is pinned in :mod:`~astraforge.engines.pins`, installed once into the runner's
cache (:mod:`~astraforge.engines.install`), configured in the sandbox's ``$HOME`` to reach
the model only through the gateway with the run's token, and run headless
(:mod:`~astraforge.engines.run`).
"""

from __future__ import annotations

from astraforge.engines.base import PROTOCOLS, Engine
from astraforge.engines.node import Claude, Codex, Gemini, Kilo, OpenCode, Qwen
from astraforge.engines.python import Aider, Vibe
from astraforge.errors import UsageError

BUILTIN = "builtin"
ENGINES: dict[str, Engine] = {
    e.name: e for e in (Codex(), Claude(), Gemini(), OpenCode(), Kilo(), Qwen(), Vibe(), Aider())
}
NAMES = (BUILTIN, *ENGINES)


def get(name: str) -> Engine:
    """The engine called ``name``."""
    try:
        return ENGINES[name]
    except KeyError:
        raise UsageError(
            f"unknown engine {name!r}",
            f"choose one of {', '.join(NAMES)} (`astraforge engines list`)",
        ) from None


__all__ = ["BUILTIN", "ENGINES", "NAMES", "PROTOCOLS", "Engine", "get"]
