"""The one jinja2 Environment every template renders in.

Templates ship inside the package (``fsgen/templates/``), so an installed fsgen generates the
same bytes as a source checkout. StrictUndefined turns a typo in a template into an error
instead of an empty string.
"""

from __future__ import annotations

import functools
import html
import json
import re

import jinja2

from fsgen.codegen import pyfmt, sql


def to_json(value: object) -> str:
    """Canonical, reviewable JSON: sorted keys, two-space indent, UTF-8, no trailing spaces."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def duration(seconds: int) -> str:
    """3600 -> '1h', 2592000 -> '30d', 90 -> '90s': the largest unit that divides exactly."""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def md_text(value: object) -> str:
    """Text for a Markdown page: ``&``, ``<`` and ``>`` escaped, so a description can never be
    raw HTML (``<script>``, ``<img onerror=...>``) where the page is rendered."""
    return html.escape(str(value), quote=False)


def fence(text: str) -> str:
    """A Markdown code fence longer than any run of backticks in ``text`` (at least three),
    so source code shown in a page can never close its block early."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


@functools.cache
def make_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("fsgen", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["py"] = pyfmt.string
    env.filters["to_json"] = to_json
    env.filters["sql_ident"] = sql.ident
    env.filters["sql_literal"] = sql.literal
    env.filters["duration"] = duration
    env.filters["md_text"] = md_text
    env.filters["fence"] = fence
    return env


def render(template: str, **context: object) -> str:
    return make_env().get_template(template).render(**context)
