"""Untrusted text (issue bodies, comments, alert fields) made safe to show a model.

Hidden content is removed: HTML comments, zero-width and bidi control characters, and image
alt text (markdown and HTML), which readers of the rendered issue never see. What remains is
capped and placed in a ``<data>`` block naming its source; the text cannot close the block,
because any ``data`` tag inside it is defanged.
"""

from __future__ import annotations

import re
import unicodedata

MAX_UNTRUSTED = 12_000  # characters per field

_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_INVISIBLE = re.compile(
    "[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\u061c\u180e\ufeff\u00ad]"
)
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]*)[^)]*\)")
_HTML_IMAGE = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_DATA_TAG = re.compile(r"<(/?)\s*(data|guidance)\b", re.IGNORECASE)
_BLANK_RUNS = re.compile(r"\n{3,}")


def clean(text: str, limit: int = MAX_UNTRUSTED) -> str:
    """Strip hidden content and cap the size."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n"))
    text = _HTML_COMMENT.sub("", text)
    text = _INVISIBLE.sub("", text)
    text = _MD_IMAGE.sub(lambda m: f"[image: {m[1]}]" if m[1] else "[image]", text)
    text = _HTML_IMAGE.sub("[image]", text)
    text = "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc")
    text = _DATA_TAG.sub(lambda m: f"&lt;{m[1]}{m[2]}", text)
    text = _BLANK_RUNS.sub("\n\n", text).strip()
    if len(text) > limit:
        text = text[:limit].rstrip() + f"\n[... {len(text) - limit} characters cut]"
    return text


def fence(source: str, text: str, tag: str = "data") -> str:
    """``text`` in a block naming where it came from; the source itself is cleaned too."""
    label = clean(source, 200).replace('"', "'").replace("\n", " ")
    return f'<{tag} source="{label}">\n{text}\n</{tag}>'
