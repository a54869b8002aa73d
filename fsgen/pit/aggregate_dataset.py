"""Aggregation features in training sets: every ``<name>_<window>`` a feature set names, at each
label row's time, from the aggregation group's offline event history.

:mod:`fsgen.pit.aggregate` holds the query (the same plan on DuckDB and Athena: tiles, RANGE
frames over whole tiles, the exact head; no labels x events join). This module feeds it a
feature set's label rows and the store's event rows, one query per aggregation group of the
plan, and returns the columns the dataset builder appends to the point-in-time join's:

- locally (:func:`local_aggregated`) on DuckDB over the group's published Parquet files;
- on Athena (:func:`athena_aggregation_sql`) over the group's Glue table and the runner's
  uploaded labels table.

A label row whose key is missing gets missing aggregation values (a count is 0 only for a known
entity with no events in the window), as a missing key gets missing stored values.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from fsgen.pit.aggregate import AggregationQuery, aggregation_sql, history_relation, q
from fsgen.pit.labels import Labels, key_alias
from fsgen.pit.model import INTERNAL, GroupJoin, PitError, PitPlan, arrow_type
from fsgen.spec import EVENT_HASH_COLUMN, EVENT_SEQUENCE_COLUMN, GroupSpec

if TYPE_CHECKING:
    import duckdb

    from fsgen.codegen.artifacts import Artifact, BuildContext

ROW = f"{INTERNAL}row"


def join_query(join: GroupJoin) -> AggregationQuery:
    """The query of the aggregations ``join`` needs (all windows of each; the set picks)."""
    names = {found[0].name for i in join.inputs if (found := join.group.window_feature(i.feature))}
    aggs = [a for a in join.group.aggregations if a.name in names]
    return AggregationQuery(
        keys=tuple(k.name for k in join.group.entity.keys),
        definitions=tuple(a.runtime() for a in aggs),
    )


def _event_columns(group: GroupSpec, query: AggregationQuery) -> list[str]:
    return [
        *(k.name for k in group.entity.keys),
        group.event_time.name,
        EVENT_SEQUENCE_COLUMN,
        EVENT_HASH_COLUMN,
        *(d.value_column for d in query.definitions),
    ]


# --------------------------------------------------------------------------- local (DuckDB)


def local_aggregated(plan: PitPlan, labels: Labels, store: Path) -> dict[str, pa.Array]:
    """Column -> values (in label order) of every aggregation feature of ``plan``."""
    import duckdb

    out: dict[str, pa.Array] = {}
    if not plan.aggregations:
        return out
    n = len(labels.frame)
    con = duckdb.connect()
    try:
        con.register("fsgen_labels", labels.join_table(plan))
        for join in plan.aggregations:
            table = _local_join(con, join, store, n)
            out.update(_columns(join, table, labels, n))
    finally:
        con.close()
    return out


def _local_join(con: duckdb.DuckDBPyConnection, join: GroupJoin, store: Path, n: int) -> pa.Table:
    from fsgen.pit.aggregate import compute_local
    from fsgen.pit.local import data_file_names

    query = join_query(join)
    files = data_file_names(store / "offline" / join.group.name)
    events = _local_events(con, join.group, query, files)
    keys = ", ".join(
        f"{q(key_alias(join.index, j))} AS {q(k.name)}"
        for j, k in enumerate(join.group.entity.keys)
    )
    labels = f"(SELECT {q(ROW)} AS _row, {keys}, {q(INTERNAL + 't')} AS ts FROM fsgen_labels)"
    table = compute_local(con, query, events, labels, history=True)
    if table.num_rows != n:
        raise PitError(f"the aggregation query returned {table.num_rows} rows for {n} labels")
    return table


def _local_events(
    con: duckdb.DuckDBPyConnection, group: GroupSpec, query: AggregationQuery, files: list[str]
) -> str:
    """The events relation over the group's files; a value column no file has yet (an
    aggregation declared after the last ingest) reads as NULL."""
    wanted = _event_columns(group, query)
    if not files:
        return _empty_events(con, group, query)
    listed = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in files) + "]"
    source = f"read_parquet({listed}, union_by_name = true, hive_partitioning = false)"
    present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    types = {d.value_column: _duck_value_type(d.value_kind) for d in query.definitions}
    missing = [c for c in wanted if c not in present]
    if any(c not in types for c in missing):
        raise PitError(
            f"group {group.name!r}: the offline files lack column(s) "
            f"{[c for c in missing if c not in types]}; they are not aggregation event rows"
        )
    if "is_deleted" not in present:
        missing.append("is_deleted")
        types["is_deleted"] = "BOOLEAN"
    filled = "".join(f", CAST(NULL AS {types[c]}) AS {q(c)}" for c in missing)
    inner = f"(SELECT *{filled} FROM {source} WHERE {q(group.event_time.name)} IS NOT NULL)"
    return history_relation(group, inner)


def _empty_events(con: duckdb.DuckDBPyConnection, group: GroupSpec, query: AggregationQuery) -> str:
    fields = [pa.field(k.name, arrow_type(k.dtype)) for k in group.entity.keys]
    fields += [
        pa.field("ts", pa.int64()),
        pa.field(EVENT_SEQUENCE_COLUMN, pa.int64()),
        pa.field(EVENT_HASH_COLUMN, pa.string()),
        *(pa.field(d.value_column, _arrow_value_type(d.value_kind)) for d in query.definitions),
        pa.field("is_deleted", pa.bool_()),
        pa.field("api_invocation_time", pa.timestamp("us", tz="UTC")),
        pa.field("write_time", pa.timestamp("us", tz="UTC")),
    ]
    name = "fsgen_no_events_" + "".join(c if c.isalnum() else "_" for c in group.name)
    con.register(name, pa.schema(fields).empty_table())
    return name


def _duck_value_type(kind: str) -> str:
    return {"Integral": "BIGINT", "Fractional": "DOUBLE", "String": "VARCHAR"}[kind]


def _arrow_value_type(kind: str) -> pa.DataType:
    return {"Integral": pa.int64(), "Fractional": pa.float64(), "String": pa.string()}[kind]


def _columns(
    join: GroupJoin, table: pa.Table, labels: Labels, n: int
) -> Iterator[tuple[str, pa.Array]]:
    """The set's columns from one group's result: renamed, typed, missing where a key is."""
    known = pa.array([True] * n, type=pa.bool_())
    for column in join.label_keys:
        known = pc.and_(known, pc.is_valid(labels.keys[column]))
    for item in join.inputs:
        typ = arrow_type(item.dtype)
        values = table.column(item.feature).combine_chunks().cast(typ)
        if not pc.all(known).as_py():
            values = pc.if_else(known, values, pa.nulls(n, type=typ))
        yield item.column, values


# --------------------------------------------------------------------------- Athena


def athena_aggregation_sql(
    join: GroupJoin,
    events_table: str,
    labels_table: str,
    *,
    row_column: str,
    time_column: str,
    json_collections: bool = False,
) -> str:
    """One aggregation group's query on Athena: ``events_table`` its Glue table ("db"."t"),
    ``labels_table`` holding ``row_column``, the label key columns and ``time_column`` (µs).
    Returns ``_row`` and the features ``join`` needs, named by their feature-set columns;
    collections as JSON text when ``json_collections`` (GetQueryResults has no arrays)."""
    query = join_query(join)
    keys = ", ".join(
        f"{q(c)} AS {q(k.name)}"
        for c, k in zip(join.label_keys, join.group.entity.keys, strict=True)
    )
    labels = f"(SELECT {q(row_column)} AS _row, {keys}, {q(time_column)} AS ts FROM {labels_table})"
    events = history_relation(join.group, events_table, "athena")
    inner = aggregation_sql(query, events, labels, "athena", history=True)
    known = " AND ".join(f"l.{q(c)} IS NOT NULL" for c in join.label_keys)
    columns = [f"l.{q(row_column)} AS _row"]
    for item in join.inputs:
        value = f"x.{q(item.feature)}"
        if json_collections and item.dtype.is_collection:
            value = f"json_format(CAST({value} AS JSON))"
        columns.append(f"CASE WHEN {known} THEN {value} END AS {q(item.column)}")
    body = "\n".join(line for line in inner.splitlines() if not line.startswith("--"))
    return (
        f"SELECT {', '.join(columns)}\nFROM {labels_table} AS l\nLEFT JOIN (\n{body}\n) AS x "
        f"ON x._row = l.{q(row_column)}\nORDER BY l.{q(row_column)}"
    )


def aggregation_artifacts(ctx: BuildContext) -> Iterator[Artifact]:
    """``groups/<g>/aggregate_query.athena.sql`` for every aggregation group (codegen builder):
    all its features at each row of a labels table ``<g>_labels`` (``_row``, the entity keys,
    ``ts`` in epoch µs), over the group's Glue table (placeholder, as in snapshot.athena.sql)."""
    from fsgen.codegen.sql import glue_table_placeholder, ident
    from fsgen.codegen.views import group_header, snake

    for group in ctx.spec.groups:
        if not group.aggregations:
            continue
        query = AggregationQuery(
            keys=tuple(k.name for k in group.entity.keys),
            definitions=tuple(a.runtime() for a in group.aggregations),
        )
        database = ident(ctx.config.aws.glue_database, "Glue database")
        events = history_relation(group, f"{database}.{glue_table_placeholder(group)}", "athena")
        labels = f"{database}.{ident(snake(group.name) + '_labels', 'labels table')}"
        yield ctx.artifact(
            f"groups/{snake(group.name)}/aggregate_query.athena.sql",
            kind="aggregate_query",
            body=aggregation_sql(query, events, labels, "athena", history=True),
            header=group_header(group),
        )


__all__ = [
    "aggregation_artifacts",
    "athena_aggregation_sql",
    "join_query",
    "local_aggregated",
]
