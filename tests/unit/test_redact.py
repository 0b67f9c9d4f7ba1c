from __future__ import annotations

import base64
import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from astraforge.redact import MASK, Redactor, secrets_from_env

SECRET = "hunter2-canary-Value/with+chars"


@pytest.mark.parametrize(
    "leak",
    [
        SECRET,
        SECRET.encode().hex(),
        urllib.parse.quote(SECRET, safe=""),
        base64.b64encode(SECRET.encode()).decode(),
    ],
)
def test_known_secret_in_every_encoding(leak: str) -> None:
    assert SECRET not in Redactor([SECRET])(f"before {leak} after")
    assert MASK in Redactor([SECRET])(f"before {leak} after")


@given(prefix=st.binary(max_size=5), suffix=st.binary(max_size=5))
def test_base64_at_any_offset(prefix: bytes, suffix: bytes) -> None:
    encoded = base64.b64encode(prefix + SECRET.encode() + suffix).decode()
    assert MASK in Redactor([SECRET])(encoded)


@pytest.mark.parametrize(
    "token",
    [
        "ghp_" + "a1B2" * 9,
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "glpat-abcdefghij0123456789",
        "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
        "sk-ant-api03-abcdefghijklmnopqrstuvwxyz",
        "AKIAIOSFODNN7EXAMPLE",
        "xoxb-123456789012-abcdefghijkl",
        "https://0123456789abcdef0123456789abcdef@o1.ingest.sentry.io/42",
        "Bearer abcdefghijklmnopqrstuvwxyz012345",
    ],
)
def test_token_shapes(token: str) -> None:
    assert Redactor()(f"x {token} y") == f"x {MASK} y"


def test_ordinary_text_is_kept() -> None:
    text = "def risky(sk): return task-id-12 and skeleton"
    assert Redactor(["short"])(text) == text


def test_secrets_from_env_by_name() -> None:
    env = {
        "GITHUB_TOKEN": "t" * 20,
        "OPENAI_API_KEY": "k" * 20,
        "PATH": "/usr/bin:/bin/x/y",
        "SENTRY_DSN": "d" * 20,
        "MY_PASSWORD": "short",
        "CI_JOB_TOKEN": "c" * 20,
    }
    assert sorted(secrets_from_env(env)) == sorted(["t" * 20, "k" * 20, "d" * 20, "c" * 20])


def test_scrub_nested_data() -> None:
    data = {"a": [SECRET, {"b": f"x{SECRET}"}], "n": 3}
    assert Redactor([SECRET]).scrub(data) == {"a": [MASK, {"b": f"x{MASK}"}], "n": 3}
