"""jinja2 rendering of the shipped templates: prompts/ (what the model reads) and
templates/ (what humans read). Undefined variables are errors, never empty text."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2

from astraforge import resources


@cache
def environment(kind: str) -> jinja2.Environment:
    """The jinja2 environment of one kind of shipped template."""

    def load(name: str) -> str:
        return resources.read_text(kind, name)

    return jinja2.Environment(
        loader=jinja2.FunctionLoader(load),
        undefined=jinja2.StrictUndefined,
        # Markdown for models and forges is never escaped; an HTML page always is.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(kind: str, name: str, **variables: Any) -> str:
    """A shipped template rendered with ``variables``."""
    return environment(kind).get_template(name).render(**variables)
