"""Untrusted text (issue bodies, comments, alert fields, file names) made safe to show a model.

Hidden content is removed: HTML comments, markdown comments (``[//]: # (...)``), invisible
format characters (zero-width, bidi controls, Unicode TAG characters, variation selectors)
and image alt text, none of which a reader of the rendered issue sees. What remains is
capped and either made one line (:func:`one_line`) or placed in a ``<data>`` block naming
its source, which the text cannot close: any ``data`` or ``guidance`` tag inside it, in any
look-alike spelling, is defanged.
"""

from __future__ import annotations

import re
import unicodedata

MAX_UNTRUSTED = 12_000  # characters per field

_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
# Link reference definitions used as comments render as nothing: `[//]: # (text)`,
# `[comment]: <> (text)`, `[_]: # "text"`.
_MD_COMMENT = re.compile(
    r"^[ \t]{0,3}\[(?://|#|_|comment|todo|note|hidden|\s*)\]:[ \t]*(?:#|<>|//)?[^\n]*$",
    re.IGNORECASE | re.MULTILINE,
)
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]*)[^)]*\)")
_HTML_IMAGE = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_LOOKALIKE_LT = str.maketrans({"\uff1c": "<", "\ufe64": "<", "\u2329": "<", "\u3008": "<"})
_DATA_TAG = re.compile(r"<(\s*/?)\s*(data|guidance)\b", re.IGNORECASE)
_BLANK_RUNS = re.compile(r"\n{3,}")
_LINE_BREAKS = str.maketrans({"\u2028": "\n", "\u2029": "\n", "\x85": "\n", "\r": "\n"})


def _visible(char: str) -> bool:
    """Whether a character shows (or is a plain line break or tab)."""
    if char in "\n\t":
        return True
    category = unicodedata.category(char)
    if category in ("Cc", "Cf", "Cs", "Co", "Cn"):
        return False  # controls, format (zero-width, bidi, TAG), surrogates, private, unassigned
    code = ord(char)
    return not (0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF)  # variation selectors


def clean(text: str, limit: int = MAX_UNTRUSTED) -> str:
    """Strip hidden content, defang block tags and cap the size."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").translate(_LINE_BREAKS))
    text = _HTML_COMMENT.sub("", text)
    text = "".join(c for c in text if _visible(c))
    text = _MD_COMMENT.sub("", text)
    text = _MD_IMAGE.sub(lambda m: f"[image: {m[1]}]" if m[1] else "[image]", text)
    text = _HTML_IMAGE.sub("[image]", text)
    text = _DATA_TAG.sub(lambda m: f"&lt;{m[1].strip()}{m[2]}", text.translate(_LOOKALIKE_LT))
    text = _BLANK_RUNS.sub("\n\n", text).strip()
    if len(text) > limit:
        text = text[:limit].rstrip() + f"\n[... {len(text) - limit} characters cut]"
    return text


def one_line(text: str, limit: int = 300) -> str:
    """Untrusted text as one line: what :func:`clean` keeps, with every line break and run
    of blanks made one space (for names, paths, tags and headings)."""
    flat = " ".join(clean(text, limit * 4).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def attribute(text: str, limit: int = 200) -> str:
    """Text safe inside a double-quoted tag attribute: one line, no quotes or angle brackets."""
    return one_line(text, limit).replace('"', "'").replace("<", "‹").replace(">", "›")


def fence(source: str, text: str, tag: str = "data") -> str:
    """``text`` in a block naming where it came from; the source itself is cleaned too."""
    return f'<{tag} source="{attribute(source)}">\n{text}\n</{tag}>'
