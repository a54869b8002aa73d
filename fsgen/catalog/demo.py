"""The demo's governance steps: freshness and the audit trail, then the catalog (last, so
the link to open is what the demo ends with)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fsgen.demo_context import DemoContext
    from fsgen.freshness import FreshnessReport


def _show(text: str) -> None:
    from fsgen.cli._app import stderr_console

    stderr_console().print(text.rstrip(), markup=False, highlight=False)


def newest_event_seconds(rep: FreshnessReport) -> float | None:
    """The newest event time of any group's records, in epoch seconds (an aggregation group's
    online side is measured by the newest event its states hold, never by when they were
    written): "an hour after the newest record" is an hour after the data."""
    from fsgen.runtime.encoding import parse_event_time

    times = [
        parse_event_time("String", s.newest_event_time)
        for g in rep.groups
        for s in (g.online, g.offline)
        if s is not None and s.newest_event_time
    ]
    return max(times) if times else None


def step_freshness(ctx: DemoContext) -> None:
    """`fsgen freshness` now (the sample data is from early 2024, so stale) and as of an hour
    after the newest event (a group fed within its max staleness of it is fresh), then
    `fsgen history`."""
    import time

    from fsgen import audit, freshness
    from fsgen.loader import load

    spec = load(ctx.config.root)
    now = freshness.report(ctx.config, spec, now=time.time())
    _show("$ fsgen freshness")
    _show(freshness.render(now))
    if now.failing:
        _show("  (exit status 1: a monitor running this would alert)")
    newest = newest_event_seconds(now)
    if newest is not None:
        then = freshness.report(ctx.config, spec, now=newest + 3600)
        _show(f"$ fsgen freshness --now {then.now}   # an hour after the newest event")
        _show(freshness.render(then))
    events = audit.query(ctx.config)
    _show(f"$ fsgen history   # {len(events)} event(s): applies and ingestion runs")
    for event in events[-6:]:
        _show(audit.render_line(event))


def step_catalog(ctx: DemoContext) -> None:
    """`fsgen catalog --output <workdir>/catalog`, and where to open it."""
    from fsgen.catalog import write_catalog
    from fsgen.loader import load

    out = ctx.workdir / "catalog"
    index = write_catalog(ctx.config, load(ctx.config.root), out)
    pages = sum(1 for _ in out.rglob("*.html"))
    _show(f"$ fsgen catalog --output {out}")
    _show(
        f"  {pages} pages: search by name, owner, tag and PII class; lineage, source, "
        "statistics and history per group and feature"
    )
    ctx.say(f"  Open the catalog: [bold]{index.resolve().as_uri()}[/bold]")
