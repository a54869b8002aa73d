"""Governance commands: catalog (a static HTML catalog reviewers browse) and freshness."""

from __future__ import annotations

import json
from pathlib import Path

import click

from fsgen.cli._app import (
    EXIT_ERROR,
    ISO_TIME,
    AppContext,
    echo_json,
    handle_errors,
    main,
    pass_app,
)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("--group", "groups", multiple=True, help="Only this group (repeatable).")
@click.option(
    "--now",
    "now",
    type=ISO_TIME,
    default=None,
    help="Measure ages as of this time (default: now).",
)
@click.option(
    "--publish",
    is_flag=True,
    help="Also put the ages as CloudWatch metrics (PutMetricData, region from [tool.fsgen.aws]).",
)
@click.option(
    "--namespace",
    default="fsgen/FeatureStore",
    show_default=True,
    help="CloudWatch namespace for --publish.",
)
@pass_app
@handle_errors
def freshness(
    app: AppContext,
    as_json: bool,
    groups: tuple[str, ...],
    now: float | None,
    publish: bool,
    namespace: str,
) -> None:
    """Age of each group's newest online and offline record and its share of expired records;
    exit 1 when a group is older than its max_staleness, or empty."""
    import time

    from fsgen import freshness as fr

    for group in groups:  # an unknown name is the only output, before any note
        app.spec.group(group)
    app.err.print(f"[dim]freshness of the local store {app.config.store_path}[/dim]")
    rep = fr.report(
        app.config, app.spec, now=time.time() if now is None else now, groups=list(groups) or None
    )
    if as_json:
        echo_json(json.dumps(rep.to_dict(), indent=2, sort_keys=True))
    else:
        click.echo(fr.render(rep), nl=False)
    if publish:
        sent = fr.publish(
            rep, app.config.project, region=app.config.aws.region, namespace=namespace
        )
        app.err.print(f"published {sent} CloudWatch metric(s) to namespace {namespace}")
    if rep.failing:
        raise SystemExit(EXIT_ERROR)


@main.command()
@click.option(
    "--output",
    "output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write the catalog into (index.html and one page per group and feature).",
)
@click.option("--no-stats", is_flag=True, help="Skip statistics from the offline store.")
@pass_app
@handle_errors
def catalog(app: AppContext, output: Path, no_stats: bool) -> None:
    """Write a static HTML catalog of every group, feature and feature set: search, lineage,
    PII, owners, history and offline-store statistics. Opens from disk; needs no server."""
    from fsgen.catalog import write_catalog

    index = write_catalog(app.config, app.spec, output, stats=not no_stats)
    click.echo(f"Catalog written: {index.resolve().as_uri()}")
