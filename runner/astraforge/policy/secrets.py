"""Secret scanning that an agent cannot talk its way around.

The text is looked at in several *views*, and every view is searched for the run's own
secret values (in plain, base64, hex and URL encoding) and for the token shapes providers
publish:

- the text itself, and the lines joined with quotes, ``+``, commas and blanks removed
  (a secret split into pieces over one or more lines);
- the text reversed, and rot13;
- URL-decoded, and with backslash escapes (``\\x67``, ``\\u0067``) decoded;
- every run of numbers that reads as printable characters (``chr(103)``, ``[103, 104]``);
- every base64, base32 or hex blob, decoded, and decompressed when it is gzip or zlib data
  (two levels deep).

An allowlist pragma in the scanned text never suppresses a finding.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import gzip
import re
import urllib.parse
import zlib
from collections.abc import Iterable, Iterator

from astraforge.redact import TOKENS, Redactor

PRAGMA = re.compile(r"pragma:\s*allowlist\s*(?:nextline\s*)?secret", re.IGNORECASE)
_JOINERS = re.compile(r"[\s'\"`+,()\[\]\\;]+")
_B64 = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_B32 = re.compile(r"[A-Z2-7]{16,}=*")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2}){8,}")
_NUMBER = re.compile(r"\d{1,3}")
_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|[0-7]{3})")
MAX_GAP = 12  # characters between two numbers of one run (``), chr(``)
MIN_RUN = 8
MAX_BLOBS = 2000
_PIECE = re.compile(r"[A-Za-z0-9_\-+/.~%]+")
MIN_PIECE = 4
MAX_TOKENS_BETWEEN = 4


def _b64(blob: str) -> bytes | None:
    text = blob.rstrip("=")
    text += "=" * (-len(text) % 4)
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(text)
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _b32(blob: str) -> bytes | None:
    text = blob.rstrip("=")
    text += "=" * (-len(text) % 8)
    try:
        return base64.b32decode(text)
    except (binascii.Error, ValueError):
        return None


def _inflate(data: bytes) -> bytes:
    """``data`` decompressed when it is gzip or zlib, else as it is."""
    try:
        if data[:2] == b"\x1f\x8b":
            return gzip.decompress(data)[: 1 << 20]
        if data[:1] == b"\x78":
            return zlib.decompressobj().decompress(data, 1 << 20)
    except (OSError, zlib.error, EOFError):
        pass
    return data


def _text(data: bytes) -> str | None:
    """Decoded bytes that look like text (most of them printable)."""
    text = data.decode("utf-8", "ignore")
    printable = sum(c.isprintable() or c in "\n\t" for c in text)
    return text if text and printable >= 0.8 * len(text) else None


def _decoded(text: str) -> Iterator[str]:
    """What every base64, base32 and hex blob in ``text`` decodes to."""
    count = 0
    for pattern, decode in ((_B64, _b64), (_B32, _b32), (_HEX, bytes.fromhex)):
        for match in pattern.finditer(text):
            count += 1
            if count > MAX_BLOBS:
                return
            try:
                data = decode(match.group(0))
            except ValueError:
                continue
            if data:
                decoded = _text(_inflate(data))
                if decoded is not None:
                    yield decoded


def _numbers(text: str) -> Iterator[str]:
    """Runs of numbers that read as printable ASCII: ``chr(103)+chr(104)``, ``[103, 104]``."""
    run: list[int] = []
    last_end = -1
    for match in _NUMBER.finditer(text):
        value = int(match.group(0))
        if run and match.start() - last_end > MAX_GAP:
            if len(run) >= MIN_RUN:
                yield "".join(map(chr, run))
            run = []
        if 32 <= value < 127:
            run.append(value)
        else:
            if len(run) >= MIN_RUN:
                yield "".join(map(chr, run))
            run = []
        last_end = match.end()
    if len(run) >= MIN_RUN:
        yield "".join(map(chr, run))


def _escapes(text: str) -> str | None:
    if not _ESCAPE.search(text):
        return None

    def one(match: re.Match[str]) -> str:
        code = match.group(0)[1:]
        if code[0] in "xu":
            return chr(int(code[1:], 16))
        return chr(int(code, 8))

    return _ESCAPE.sub(one, text)


def views(text: str, depth: int = 2) -> Iterator[tuple[str, str]]:
    """(how, text) for every way ``text`` may spell a secret."""
    yield "", text
    yield "split up", _JOINERS.sub("", text)
    yield "reversed", text[::-1]
    yield "rot13", codecs.encode(text, "rot13")
    if "%" in text:
        yield "URL-encoded", urllib.parse.unquote(text)
    unescaped = _escapes(text)
    if unescaped is not None:
        yield "escaped", unescaped
    for spelled in _numbers(text):
        yield "as character codes", spelled
    if depth > 0:
        for decoded in _decoded(text):
            for how, inner in views(decoded, depth - 1):
                yield ("encoded" + (f", {how}" if how else "")), inner


def _token_kind(token: str) -> str:
    for prefix, kind in (
        ("gh", "a GitHub token"),
        ("github_pat_", "a GitHub token"),
        ("gl", "a GitLab token"),
        ("sk-ant-", "an Anthropic key"),
        ("sk-", "an OpenAI key"),
        ("AKIA", "an AWS key"),
        ("ASIA", "an AWS key"),
        ("xox", "a Slack token"),
        ("sntry", "a Sentry token"),
        ("http", "a Sentry DSN"),
    ):
        if token.startswith(prefix):
            return kind
    return "a bearer token"


def _split_up(text: str, forms: Iterable[str]) -> bool:
    """Whether a secret form is spelled out in consecutive pieces, with a few other tokens
    (names, operators) allowed between the pieces."""
    tokens = _PIECE.findall(text)
    for form in forms:
        if len(form) < 2 * MIN_PIECE:
            continue
        for start, token in enumerate(tokens):
            covered = _head(token, form)
            if covered < MIN_PIECE:
                continue
            gap = 0
            for nxt in tokens[start + 1 :]:
                if covered == len(form):
                    break
                rest = form[covered:]
                if len(nxt) >= MIN_PIECE and (nxt.startswith(rest) or rest.startswith(nxt)):
                    covered, gap = covered + min(len(nxt), len(rest)), 0
                else:
                    gap += 1
                    if gap > MAX_TOKENS_BETWEEN:
                        break
            if covered == len(form):
                return True
    return False


def _head(token: str, form: str) -> int:
    """Length of the longest end of ``token`` that begins ``form`` (0 if too short)."""
    for i in range(max(0, len(token) - len(form)), len(token) - MIN_PIECE + 1):
        if form.startswith(token[i:]):
            return len(token) - i
    return 0


def scan(lines: list[str], known: Iterable[str]) -> list[str]:
    """What looks like a secret in ``lines``; the secret itself is never named."""
    text = "\n".join(PRAGMA.sub("", line) for line in lines)
    redactor = Redactor(known)
    forms = redactor.secrets
    found: list[str] = []
    for how, view in views(text):
        suffix = f", {how}" if how else ""
        if forms and redactor.known_only(view) != view:
            found.append(f"a secret value of this run{suffix}")
        if how != "split up":  # joining everything would make token shapes up by chance
            found += [f"{_token_kind(m.group(0))}{suffix}" for m in TOKENS.finditer(view)]
    if forms and _split_up(text, forms):
        found.append("a secret value of this run, split up")
    return list(dict.fromkeys(found))
