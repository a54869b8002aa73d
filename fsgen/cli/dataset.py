"""``fsgen dataset``: a point-in-time-correct training set for a feature set."""

from __future__ import annotations

import json
from pathlib import Path

import click

from fsgen.cli._app import AppContext, echo_json, handle_errors, main, pass_app


@main.command()
@click.argument("feature_set")
@click.option(
    "--labels",
    "labels_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Label rows (CSV or Parquet) with the set's key columns and label time.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where the training set goes (.parquet or .csv).",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "athena", "spark"]),
    default="local",
    show_default=True,
    help="local: DuckDB over the local offline store; athena: the generated SQL on Amazon "
    "Athena; spark: Spark SQL over the local offline store (the spark extra).",
)
@click.option(
    "--sql",
    "print_sql",
    is_flag=True,
    help="Print the feature set's Athena point-in-time SQL and exit.",
)
@click.option(
    "--knowledge-time",
    is_flag=True,
    help="Count only records already written (write_time <= label time).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print a summary (rows, columns, warnings) as JSON."
)
@pass_app
@handle_errors
def dataset(
    app: AppContext,
    feature_set: str,
    labels_path: Path | None,
    output: Path | None,
    engine: str,
    print_sql: bool,
    knowledge_time: bool,
    as_json: bool,
) -> None:
    """Join every label row with the feature values current at its time (never later).

    A feature group that contributes no stored value to any row (not ingested yet, replaced,
    or nothing known by the label times) is named in a warning on stderr and in --json."""
    if print_sql:
        from fsgen.pit.athena import render_pit_sql

        sql = render_pit_sql(
            app.spec,
            feature_set,
            database=app.config.aws.glue_database,
            knowledge_time=knowledge_time,
        )
        echo_json(sql)
        _note_aggregations(app, feature_set)
        return
    if labels_path is None or output is None:
        raise click.UsageError("--labels and --output are required (or --sql)")
    from fsgen.pit import build_dataset
    from fsgen.pit.dataset import check_output, write_frame

    check_output(output)  # before the labels are read and the dataset built
    frame = build_dataset(
        app.config,
        app.spec,
        feature_set,
        labels_path,
        knowledge_time,
        engine=engine,  # type: ignore[arg-type]
        backend=app.backend_name,
    )
    write_frame(frame, output)
    n_features = len(app.spec.feature_set(feature_set).items)
    warnings: list[dict[str, str]] = list(frame.attrs.get("warnings", []))
    from rich.markup import escape

    for warning in warnings:
        app.err.print(f"[bold yellow]warning:[/bold yellow] {escape(warning['message'])}")
    click.echo(
        f"{feature_set}: {len(frame):,} rows x {len(frame.columns):,} columns "
        f"({n_features} features) -> {output}",
        err=True,
    )
    if as_json:
        summary = {
            "feature_set": feature_set,
            "rows": len(frame),
            "columns": len(frame.columns),
            "features": n_features,
            "output": str(output),
            "warnings": warnings,
        }
        echo_json(json.dumps(summary, indent=2, sort_keys=True))


def _note_aggregations(app: AppContext, feature_set: str) -> None:
    """The printed query joins the row groups only: say where the set's aggregation features
    are computed instead, rather than print a query that silently lacks them."""
    from fsgen.codegen.views import snake
    from fsgen.pit.model import plan_for

    plan = plan_for(app.spec, feature_set)
    if not plan.aggregations:
        return
    names = ", ".join(i.column for i in plan.aggregated)
    queries = ", ".join(
        f"{app.config.generated_dir}/groups/{snake(j.group.name)}/aggregate_query.athena.sql"
        for j in plan.aggregations
    )
    click.echo(
        f"note: the aggregation features of feature set {feature_set!r} ({names}) are not in "
        f"this query: each aggregation group's Athena query is {queries} (fsgen dataset "
        "--engine athena runs both)",
        err=True,
    )
