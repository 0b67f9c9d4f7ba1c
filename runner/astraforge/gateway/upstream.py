"""Where the gateway's model calls go: the configured upstream, with the real key.

Each engine speaks one wire protocol. When the upstream speaks it too, the call passes
through (only the token is swapped for the key, the model name mapped, the reply cap
clamped); otherwise LiteLLM's adapters translate (:mod:`astraforge.gateway.translate`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from astraforge.gateway.usage import CHAT, MESSAGES, RESPONSES

OPENAI_URL = "https://api.openai.com/v1"
ANTHROPIC_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"


@dataclass(frozen=True)
class Upstream:
    """The configured model API: kind, address, key (never shown) and model name."""

    api: str  # openai | azure | anthropic
    base_url: str
    key: str = field(repr=False)
    model: str
    api_version: str = "2024-10-21"
    responses: bool = False  # serves OpenAI's Responses API itself
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 120.0

    def native(self, protocol: str) -> bool:
        """Whether a call in ``protocol`` can pass through without translation."""
        if protocol == CHAT:
            return self.api in ("openai", "azure")
        if protocol == RESPONSES:
            return self.api in ("openai", "azure") and self.responses
        if protocol == MESSAGES:
            return self.api == "anthropic"
        return False  # no Gemini upstream is offered: Gemini calls are always translated

    def url(self, protocol: str) -> str:
        """The upstream address of a passed-through call."""
        base = self.base_url.rstrip("/")
        if self.api == "azure":
            tail = "chat/completions" if protocol == CHAT else "responses"
            prefix = (
                f"{base}/openai/deployments/{self.model}" if protocol == CHAT else f"{base}/openai"
            )
            return f"{prefix}/{tail}?api-version={self.api_version}"
        if protocol == MESSAGES:
            return f"{base}/v1/messages"
        return f"{base}/{'chat/completions' if protocol == CHAT else 'responses'}"

    def auth_headers(self, client: Mapping[str, str]) -> dict[str, str]:
        """The key in the header the upstream reads, plus the protocol headers that carry
        meaning (Anthropic's version and beta flags)."""
        headers = dict(self.headers)
        if self.api == "azure":
            headers["api-key"] = self.key
        elif self.api == "anthropic":
            headers["x-api-key"] = self.key
            headers["anthropic-version"] = client.get("anthropic-version", ANTHROPIC_VERSION)
            if "anthropic-beta" in client:
                headers["anthropic-beta"] = client["anthropic-beta"]
        else:
            headers["Authorization"] = f"Bearer {self.key}"
        return headers

    def litellm_model(self) -> str:
        """The model as LiteLLM names it: provider prefix, then the upstream's name."""
        if self.api == "anthropic":
            return f"anthropic/{self.model}"
        if self.api == "azure":
            return f"azure/{self.model}"
        if self.base_url.rstrip("/") == OPENAI_URL:
            return f"openai/{self.model}"
        return f"custom_openai/{self.model}"  # any OpenAI-compatible chat API
