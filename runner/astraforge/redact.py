"""Secret redaction: the run's known secret values, in the encodings they leak in, and the
token shapes of common providers.

Used on everything a run records or sends out: trajectories, logs, tool results shown to the
model.
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Iterable, Mapping

MASK = "[REDACTED]"
MIN_SECRET = 8  # shorter values are too likely to match ordinary text

# Environment variables whose values are secrets, by name.
SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE_KEY|DSN|CREDENTIAL)")
# Well-known token shapes (providers publish these prefixes so that scanners can find them).
TOKEN_PATTERNS = (
    r"gh[pousr]_[A-Za-z0-9]{36,255}",
    r"github_pat_[A-Za-z0-9_]{22,255}",
    r"glpat-[A-Za-z0-9_\-]{20,}",
    r"gl(?:cbt|dt|ptt|rt|soat|ft|imt|agent)-[A-Za-z0-9_\-]{20,}",
    r"sk-ant-[A-Za-z0-9_\-]{20,}",
    r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}",
    r"(?:AKIA|ASIA)[0-9A-Z]{16}",
    r"xox[abposr]-[A-Za-z0-9\-]{10,}",
    r"sntry[su]_[A-Za-z0-9+/=_\-]{20,}",
    r"https?://[0-9a-f]{32}(?::[0-9a-f]{32})?@[^\s\"'/]+/\d+",  # Sentry DSN
    r"(?i:bearer)\s+[A-Za-z0-9._~+/\-]{20,}=*",
)
TOKENS = re.compile("|".join(f"(?:{p})" for p in TOKEN_PATTERNS))


def encodings(value: str) -> set[str]:
    """The forms a secret takes when it leaks: plain, base64 (every alignment), hex, URL."""
    raw = value.encode()
    forms = {value, raw.hex(), raw.hex().upper(), urllib.parse.quote(value, safe="")}
    for shift in range(3):
        # base64 of the secret at any offset: only 3-byte groups made wholly of the secret
        # encode the same way whatever surrounds it
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        forms.add(encoded[4 if shift else 0 : (shift + len(raw)) // 3 * 4])
    return {f for f in forms if len(f) >= MIN_SECRET}


def secrets_from_env(env: Mapping[str, str]) -> list[str]:
    """Values of variables whose names say they are secrets."""
    return [v for k, v in env.items() if SECRET_NAME.search(k.upper()) and len(v) >= MIN_SECRET]


class Redactor:
    """Replaces known secret values (and their encodings) and token-shaped strings."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        for secret in secrets:
            if secret and len(secret) >= MIN_SECRET:
                self._forms |= encodings(secret)
        if self._forms:
            ordered = sorted(self._forms, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(f) for f in ordered))

    @property
    def secrets(self) -> frozenset[str]:
        return frozenset(self._forms)

    def known_only(self, text: str) -> str:
        """``text`` with only the known secret values (and their encodings) replaced."""
        return self._pattern.sub(MASK, text) if self._pattern is not None else text

    def __call__(self, text: str) -> str:
        return TOKENS.sub(MASK, self.known_only(text))

    def scrub(self, value: object) -> object:
        """Redact every string inside JSON-like data."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        return value
