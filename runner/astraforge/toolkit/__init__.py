"""AstraForge's hardened sandbox as a Python library, for other projects' agents.

``pip install "astraforge[toolkit]"``. :class:`Sandbox` runs commands and moves files in a
locked-down Docker container or bubblewrap namespace on your own machine;
:func:`astraforge.toolkit.langchain.sandbox_tools` binds LangChain tools to one, and
:class:`astraforge.toolkit.deepagents.SandboxBackend` makes it a Deep Agents backend. The
names in ``__all__`` (here and in those modules) are the stable API.
"""

from __future__ import annotations

from astraforge.errors import AstraForgeError, SandboxError, UsageError
from astraforge.toolkit.sandbox import Limits, RunResult, Sandbox, install_browser

__all__ = [
    "AstraForgeError",
    "Limits",
    "RunResult",
    "Sandbox",
    "SandboxError",
    "UsageError",
    "install_browser",
]
