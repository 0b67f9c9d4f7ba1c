"""Token counting for budgets and context fitting."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

# Per message overhead of the chat format (role markers, separators), as OpenAI documents it.
MESSAGE_OVERHEAD = 4
# Bytes per token, chosen low so that estimates err towards more tokens: English prose and
# code average about four bytes per token in the GPT tokenizers.
BYTES_PER_TOKEN = 3


def count(text: str) -> int:
    """Tokens in ``text``, erring high."""
    return -(-len(text.encode("utf-8", "surrogatepass")) // BYTES_PER_TOKEN)


def count_messages(messages: Iterable[Mapping[str, Any]]) -> int:
    total = 3  # every reply is primed with the assistant marker
    for message in messages:
        total += MESSAGE_OVERHEAD
        for key, value in message.items():
            if value is None:
                continue
            total += count(value if isinstance(value, str) else json.dumps(value))
            if key == "name":
                total += 1
    return total
