"""The one jinja2 Environment every template renders in.

Templates ship inside the package (``fsgen/templates/``), so an installed fsgen generates the
same bytes as a source checkout. StrictUndefined turns a typo in a template into an error
instead of an empty string.

A project overrides any of them from its own top-level ``templates/`` directory, file for
file under the same name (``templates/batch_job.py.jinja``, ``templates/_macros/python.jinja``):
a ``ChoiceLoader`` looks there before the packaged ones. :func:`project_templates` turns that on
for the duration of a generation (a context variable, so builders in other modules need no
parameter), and every render records the overriding files it used, with their hashes, so the
artifact's spec hash and its MANIFEST entry change when an override does
(:func:`take_overrides`). Without a ``templates/`` directory nothing changes, byte for byte.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

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


#: The project's ``templates/`` directory while a generation runs (None: packaged only).
_OVERRIDES: ContextVar[Path | None] = ContextVar("fsgen_template_overrides", default=None)
#: Overriding templates used since the last :func:`take_overrides`: name -> sha256.
_USED: ContextVar[dict[str, str] | None] = ContextVar("fsgen_templates_used", default=None)

OVERRIDES_DIR = "templates"


@contextlib.contextmanager
def project_templates(root: Path) -> Iterator[Path | None]:
    """Render with ``root/templates/`` in front of the packaged templates, if it exists."""
    directory = root / OVERRIDES_DIR
    chosen = directory.resolve() if directory.is_dir() else None
    token, used = _OVERRIDES.set(chosen), _USED.set({})
    try:
        yield chosen
    finally:
        _OVERRIDES.reset(token)
        _USED.reset(used)


def take_overrides() -> dict[str, str]:
    """The overriding templates rendered since the last call (name -> ``sha256:...``)."""
    used = _USED.get()
    if not used:
        return {}
    taken = dict(sorted(used.items()))
    used.clear()
    return taken


def make_env(overrides: Path | None = None) -> jinja2.Environment:
    """The Environment for ``overrides`` (a project's templates directory) or, without one,
    the packaged templates alone."""
    return _env(str(overrides) if overrides is not None else None)


@functools.cache
def _env(overrides: str | None) -> jinja2.Environment:
    packaged = jinja2.PackageLoader("fsgen", "templates")
    loader: jinja2.BaseLoader = (
        jinja2.ChoiceLoader([jinja2.FileSystemLoader(overrides), packaged])
        if overrides is not None
        else packaged
    )
    env = jinja2.Environment(
        loader=loader,
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
    return env


def render(template: str, **context: object) -> str:
    overrides = _OVERRIDES.get()
    env = make_env(overrides)
    text = env.get_template(template).render(**context)
    if overrides is not None:
        used = _USED.get()
        if used is not None:
            used.update(_overriding(env, overrides, template))
    return text


def _overriding(env: jinja2.Environment, root: Path, template: str) -> dict[str, str]:
    """``template`` and every template it extends, imports or includes (by constant name)
    that ``root`` overrides, with the sha256 of the overriding file."""
    from jinja2 import meta

    found: dict[str, str] = {}
    seen: set[str] = set()
    todo = [template]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        source, _, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]
        path = root / name
        if path.is_file():
            found[name] = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
        todo.extend(n for n in meta.find_referenced_templates(env.parse(source)) if n)
    return found
