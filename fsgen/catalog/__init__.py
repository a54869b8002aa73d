"""The governance catalog as a static website: ``fsgen catalog --output DIR``.

``index.html`` lists every group, feature, on-demand feature and feature set with a search
box (name, owner, tag, PII class); each has its own page (``groups/``, ``features/<group>/``,
``on-demand/``, ``feature-sets/``) with lineage, transformation source and logic hash, PII
class, generated artifacts, change history and offline-store statistics with an inline SVG
histogram. Pages link to each other with relative links and carry their CSS and JavaScript
inline, so the directory works opened from disk or as a CI artifact: no server, no CDN.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from fsgen.catalog.model import Catalog, build_catalog, depth_prefix, output_pages

if TYPE_CHECKING:
    import jinja2

    from fsgen.config import ProjectConfig
    from fsgen.spec import ProjectSpec

#: Subdirectories the catalog owns: stale pages in them are removed on rewrite.
PAGE_DIRS = ("groups", "features", "on-demand", "feature-sets")


def make_env(overrides: Path | None = None) -> jinja2.Environment:
    """HTML templates (``fsgen/templates/catalog/``), autoescaped, StrictUndefined; a
    project's ``templates/catalog/`` overrides them file for file, as for ``generated/``."""
    chosen = overrides if overrides is not None and overrides.is_dir() else None
    return _env(str(chosen.resolve()) if chosen is not None else None)


@functools.cache
def _env(overrides: str | None) -> jinja2.Environment:
    import jinja2

    packaged = jinja2.PackageLoader("fsgen", "templates/catalog")
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(overrides), packaged])
        if overrides is not None
        else packaged,
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["pct"] = lambda v: "" if v is None else f"{float(v):.1%}"
    env.filters["num"] = _num
    env.filters["span"] = _span
    env.filters["short_hash"] = lambda h: str(h)[:19] + "…" if h else ""
    return env


def _num(value: object) -> str:
    if value is None:
        return "\u2013"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) >= 1000 else f"{value:.6g}"
    return str(value)


def _span(seconds: object) -> str:
    if seconds is None:
        return "none"
    from fsgen.plan.render import duration

    return duration(int(seconds))  # type: ignore[call-overload]


def render_pages(catalog: Catalog, templates: Path | None = None) -> dict[str, str]:
    """Relative path -> HTML for every page of ``catalog`` (``templates``: a directory of
    overriding templates)."""
    env = make_env(templates)
    pages = {
        "index.html": env.get_template("index.html.jinja").render(
            c=catalog, root="", title=f"{catalog.project} feature catalog"
        )
    }
    for path, template, item in output_pages(catalog):
        pages[path] = env.get_template(template).render(
            c=catalog, x=item, root=depth_prefix(path), title=str(item["name"])
        )
    return pages


def write_catalog(
    config: ProjectConfig, spec: ProjectSpec, output: Path, *, stats: bool = True
) -> Path:
    """Write the catalog into ``output``; returns the path of ``index.html``."""
    pages = render_pages(
        build_catalog(config, spec, stats=stats), config.root / "templates" / "catalog"
    )
    output.mkdir(parents=True, exist_ok=True)
    written = set()
    for rel, text in pages.items():
        target = output / unquote(rel)
        _write(target, text)
        written.add(target.resolve())
    for sub in PAGE_DIRS:  # pages of groups/features that no longer exist
        for old in (output / sub).rglob("*.html") if (output / sub).exists() else ():
            if old.resolve() not in written:
                old.unlink()
    return output / "index.html"


def _write(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)


__all__ = ["build_catalog", "render_pages", "write_catalog"]
