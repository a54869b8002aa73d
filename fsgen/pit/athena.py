"""The point-in-time query as Athena (Trino) SQL and its ``generated/`` artifact.

:func:`render_pit_sql` builds a view-model of validated, quoted identifiers and typed
expressions from :func:`fsgen.pit.model.plan_for` -- the same plan the local engine runs --
and formats it with ``pit_query.athena.sql.jinja``. The runner (:mod:`fsgen.pit.athena_runner`)
sends this same SQL with the real tables filled in. Tests execute it on DuckDB and PostgreSQL
(transpiled with sqlglot) and require the local engine's rows, against an oracle.

The query is written in the SQL that all three engines share -- ``row_number``, a running
``max`` over a window, ``UNION ALL`` and equi-joins; no ``max_by`` over ROW values -- so the
stored values travel untouched from the Glue table to the result (a ``-0.0`` stays ``-0.0``:
engines normalise signed zeros inside aggregated structs).

Instants are compared as integer epoch microseconds, never as doubles of seconds where a label
time can hold microseconds: Trino's ``from_iso8601_timestamp`` keeps milliseconds only, so an
ISO label time's whole seconds come from the parsed timestamp and its fraction from the text.

Athena reads Hive-table timestamps at millisecond precision, so on AWS the write-time
tie-breaks see milliseconds; the local store's timestamps are microseconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from fsgen.codegen.sql import DEFAULT_DATABASE, glue_table_placeholder, ident, literal
from fsgen.pit.model import MICROS, GroupJoin, plan_for
from fsgen.spec import ProjectSpec
from fsgen.ttl_history import TtlChange
from fsgen.types import DType, Scalar

if TYPE_CHECKING:
    from fsgen.codegen.artifacts import Artifact, BuildContext

LabelTimeType = Literal["iso8601", "epoch_seconds", "epoch_micros", "timestamp"]

#: The labels table's row id: a unique bigint, returned first and giving the output order.
ROW_COLUMN = "fsgen_row"
HOUR_MICROS = 3600 * MICROS
PARTITIONS = ("year", "month", "day", "hour")

_TRINO = {Scalar.INTEGRAL: "bigint", Scalar.FRACTIONAL: "double", Scalar.STRING: "varchar"}


def trino_type(dtype: DType) -> str:
    inner = _TRINO[dtype.scalar]
    return f"array({inner})" if dtype.is_collection else inner


def micros_of_timestamp(expr: str) -> str:
    """A Trino timestamp at millisecond precision (Athena's Hive timestamps) as epoch µs."""
    return f"CAST(round(to_unixtime({expr}) * {MICROS}) AS bigint)"


def micros_of_seconds(expr: str) -> str:
    return f"CAST(round(CAST({expr} AS double) * {MICROS}) AS bigint)"


def micros_of_iso(column: str) -> str:
    """ISO-8601 text as exact epoch µs: whole seconds from the parsed timestamp (an integral
    double, exact), the fraction's first six digits from the text (``from_iso8601_timestamp``
    returns timestamp(3), which would drop them). Letters are upper-cased first, so ``t`` and
    ``z`` read as ``T`` and ``Z``, as they do locally."""
    seconds = f"to_unixtime(date_trunc('second', from_iso8601_timestamp(upper({column}))))"
    fraction = f"regexp_extract({column}, ':[0-9][0-9][.,]([0-9]{{1,6}})', 1)"
    return (
        f"(CAST({seconds} AS bigint) * {MICROS} "
        f"+ CAST(rpad(coalesce({fraction}, ''), 6, '0') AS bigint))"
    )


def label_micros(column: str, kind: LabelTimeType) -> str:
    if kind == "iso8601":
        return micros_of_iso(column)
    if kind == "epoch_seconds":
        return micros_of_seconds(column)
    if kind == "epoch_micros":
        return f"CAST({column} AS bigint)"
    return micros_of_timestamp(column)


def event_micros(join: GroupJoin) -> str:
    """SageMaker's String event times hold at most milliseconds, which the timestamp keeps."""
    column = ident(join.group.event_time.name, "event-time column")
    if join.group.event_time.dtype.scalar is Scalar.STRING:
        return micros_of_timestamp(f"from_iso8601_timestamp({column})")
    return micros_of_seconds(column)


def table_ref(name: str, database: str, what: str) -> str:
    """``"db"."table"`` from ``table`` or ``db.table``, each part validated."""
    db, _, table = name.rpartition(".")
    return f"{ident(db or database, 'database')}.{ident(table, what)}"


def hour_text(micros: int) -> str:
    """The ``year||month||day||hour`` partition text ('YYYYMMDDHH', UTC) holding ``micros``."""
    from datetime import UTC, datetime, timedelta

    hour = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(hours=micros // HOUR_MICROS)
    return f"{hour:%Y%m%d%H}"


def _hour_text_sql(micros: str) -> str:
    hour = f"CAST(floor(({micros}) / {HOUR_MICROS}.0) AS bigint) * 3600"
    return f"date_format(from_unixtime({hour}), '%Y%m%d%H')"


@dataclass(frozen=True)
class Bounds:
    """The label times' range in µs, known when the query is rendered for given labels: the
    partition filter then holds constants, which Athena prunes on before reading."""

    first: int
    last: int


@dataclass(frozen=True)
class KeyView:
    alias: str
    history: str
    label: str
    carried: str


@dataclass(frozen=True)
class ValueView:
    alias: str
    expr: str


@dataclass(frozen=True)
class StageView:
    name: str
    group: str
    table: str
    ttl_seconds: int | None
    event_column: str
    keys: tuple[KeyView, ...]
    partition: str
    history_partition: str
    event: str
    moment: str
    rank_order: str
    deleted: str
    ttl: str | None
    """Per record, the TTL in µs in force at its write, when the TTL changed (else None)."""
    values: tuple[ValueView, ...]
    partition_filter: tuple[str, ...]
    previous: str
    carried: tuple[str, ...]
    carried_nulls: tuple[str, ...]


@dataclass(frozen=True)
class QueryView:
    feature_set: str
    knowledge_time: bool
    labels_table: str
    label_time: str
    label_time_type: str
    row_column: str
    key_columns: str
    label_columns: tuple[str, ...]
    label_micros: str
    missing_time: str
    stages: tuple[StageView, ...]
    joins: tuple[str, ...]
    select: tuple[str, ...]
    last: str
    placeholders: bool


def _partition_filter(join: GroupJoin, bounds: Bounds | None) -> tuple[str, ...]:
    """Records that can matter lie in the hours from the first label time minus the longest
    TTL a record can have (an older record can only be expired) to the last label time."""
    if join.group.offline.table_format != "Glue":
        return ()  # Iceberg tables partition on the event time themselves
    hour = "concat(" + ", ".join(f'"{p}"' for p in PARTITIONS) + ")"
    ttl = join.max_ttl_micros
    if bounds is not None:
        last = hour_text(bounds.last)
        parts = [f'"year" <= {literal(last[:4])}', f"{hour} <= {literal(last)}"]
        if ttl is not None:
            first = hour_text(bounds.first - ttl)
            parts = [f'"year" >= {literal(first[:4])}', *parts, f"{hour} >= {literal(first)}"]
        return tuple(parts)
    last_sql = _hour_text_sql('max("__fsgen_t")')
    parts = [f'{hour} <= (SELECT {last_sql} FROM "labels")']
    if ttl is not None:
        first_sql = _hour_text_sql(f'min("__fsgen_t") - {ttl}')
        parts.insert(0, f'{hour} >= (SELECT {first_sql} FROM "labels")')
    return tuple(parts)


def _stage(
    join: GroupJoin,
    table: str,
    label_columns: Sequence[str],
    previous: list[int],
    knowledge_time: bool,
    bounds: Bounds | None,
) -> StageView:
    name = f"g{join.index}"
    keys = tuple(
        KeyView(
            alias=f'"__fsgen_k{j}"',
            history=f"CAST({ident(k.name, 'key column')} AS {trino_type(k.dtype)})",
            label=f"CAST({ident(col, 'label key column')} AS {trino_type(k.dtype)})",
            carried=f'CAST("s".{ident(col, "label key column")} AS {trino_type(k.dtype)})',
        )
        for j, (k, col) in enumerate(zip(join.keys, join.label_keys, strict=True))
    )
    event = event_micros(join)
    write = micros_of_timestamp('"write_time"')
    deleted = 'coalesce("is_deleted", false)'
    api = micros_of_timestamp('"api_invocation_time"')
    values = tuple(
        ValueView(alias=f'"__fsgen_v{n}"', expr=ident(i.feature, "feature column"))
        for n, i in enumerate(join.inputs)
    )
    carried = (*label_columns, '"__fsgen_t"', *(f'"__fsgen_r{p}"' for p in previous))
    carried_nulls = (
        *("NULL" for _ in label_columns),
        '"__fsgen_m"',
        *("CAST(NULL AS bigint)" for _ in previous),
    )
    return StageView(
        name=name,
        group=join.group.name,
        table=table,
        ttl_seconds=join.ttl_seconds,
        event_column=ident(join.group.event_time.name, "event-time column"),
        keys=keys,
        partition=", ".join(k.alias for k in keys),
        history_partition=", ".join(k.history for k in keys),
        event=event,
        moment=f"greatest({event}, {write})" if knowledge_time else event,
        rank_order=f'{event}, {api}, {write}, {deleted}, "$path"',
        deleted=deleted,
        ttl=join.ttl_sql(api) if len(join.ttl_segments) > 1 else None,
        values=values,
        partition_filter=_partition_filter(join, bounds),
        previous=f"g{join.index - 1}" if join.index else "labels",
        carried=carried,
        carried_nulls=carried_nulls,
    )


def _join(join: GroupJoin, stage: StageView) -> str:
    history = f'"h{join.index}"'
    on = [f"{history}.{k.alias} = {k.carried}" for k in stage.keys]
    on.append(f'{history}."__fsgen_r" = "s"."__fsgen_r{join.index}"')
    return f'LEFT JOIN "{stage.name}_history" AS {history} ON ' + " AND ".join(on)


def _output(join: GroupJoin, json_collections: bool) -> Iterator[str]:
    history = f'"h{join.index}"'
    gone = f'{history}."__fsgen_d"'
    if len(join.ttl_segments) > 1:  # the TTL in force at each record's write
        age = f'"s"."__fsgen_t" - {history}."__fsgen_e"'
        gone += f' OR coalesce({age} > {history}."__fsgen_l", false)'
    elif join.ttl_micros is not None:
        gone += f' OR "s"."__fsgen_t" - {history}."__fsgen_e" > {join.ttl_micros}'
    for n, item in enumerate(join.inputs):
        value = f'{history}."__fsgen_v{n}"'
        if json_collections and item.dtype.is_collection:
            value = f"json_format(CAST({value} AS JSON))"
        yield f"CASE WHEN {gone} THEN NULL ELSE {value} END AS {ident(item.column, 'column')}"


def query_view(
    spec: ProjectSpec,
    feature_set: str,
    *,
    labels_table: str | None = None,
    database: str = DEFAULT_DATABASE,
    tables: Mapping[str, str] | None = None,
    label_columns: Sequence[str] | None = None,
    label_time_column: str | None = None,
    label_time_type: LabelTimeType = "iso8601",
    row_column: str = ROW_COLUMN,
    knowledge_time: bool = False,
    json_collections: bool = False,
    bounds: Bounds | None = None,
    ttl_history: Mapping[str, tuple[TtlChange, ...]] | None = None,
) -> QueryView:
    plan = plan_for(spec, feature_set, ttl_history)
    fs = plan.feature_set
    labels = labels_table or f"{fs.name.replace('-', '_')}_labels"
    row = ident(row_column, "row id column")
    wanted = label_columns if label_columns is not None else plan.default_label_columns()
    columns = tuple(dict.fromkeys([row, *(ident(c, "label column") for c in wanted)]))
    keys = tuple(ident(c, "label key column") for c in plan.key_columns)
    # the key columns travel with the label rows even when they are not returned
    carried = tuple(dict.fromkeys([*columns, *keys]))
    time_column = ident(label_time_column or plan.label_time, "label time column")
    stages: list[StageView] = []
    previous: list[int] = []
    for join in plan.joins:
        name = (tables or {}).get(join.group.name)
        table = (
            table_ref(name, database, f"table of group {join.group.name!r}")
            if name
            else f"{ident(database, 'database')}.{glue_table_placeholder(join.group)}"
        )
        stages.append(_stage(join, table, carried, previous, knowledge_time, bounds))
        previous.append(join.index)
    by_column = {i.column: join for join in plan.joins for i in join.inputs}
    outputs = {
        join.index: dict(
            zip((i.column for i in join.inputs), _output(join, json_collections), strict=True)
        )
        for join in plan.joins
    }
    select = (
        *(f'"s".{c}' for c in columns),
        *(outputs[by_column[i.column].index][i.column] for i in plan.stored),
    )
    label_time_name = label_time_column or plan.label_time
    message = literal(f"fsgen: no label time {label_time_name} in label row {row_column} = ")
    missing = f"CAST(concat({message}, CAST({row} AS varchar)) AS bigint)"
    return QueryView(
        feature_set=fs.name,
        knowledge_time=knowledge_time,
        labels_table=table_ref(labels, database, "labels table"),
        label_time=time_column,
        label_time_type=label_time_type,
        row_column=row,
        key_columns=", ".join(keys),
        label_columns=carried,
        label_micros=label_micros(time_column, label_time_type),
        missing_time=missing,
        stages=tuple(stages),
        joins=tuple(_join(j, s) for j, s in zip(plan.joins, stages, strict=True)),
        select=select,
        last=stages[-1].name if stages else "labels",
        placeholders=not all(j.group.name in (tables or {}) for j in plan.joins),
    )


def render_pit_sql(spec: ProjectSpec, feature_set_name: str, **options: object) -> str:
    """The point-in-time query of a feature set in Athena's dialect.

    Options: ``labels_table`` ("table" or "db.table"; default ``<set>_labels``), ``database``,
    ``tables`` (group name -> Glue table "db.table", from DescribeFeatureGroup's
    DataCatalogConfig; a group left out gets an explicit placeholder to replace),
    ``label_columns`` (label columns returned after the row id; default keys, label time,
    request fields, labels), ``label_time_column``, ``label_time_type`` (iso8601,
    epoch_seconds, epoch_micros, timestamp), ``row_column`` (the labels' unique row id,
    default ``fsgen_row``), ``knowledge_time``, ``json_collections`` (collections as JSON text,
    for GetQueryResults), ``bounds`` (the label times' range, for constant partition bounds),
    ``ttl_history`` (group -> its deployed TTL changes, fsgen.ttl_history: each record is then
    judged by the TTL in force at its api_invocation_time; the ``generated/`` artifact, made
    from the definitions alone, applies the declared TTL).
    """
    from fsgen.codegen.env import render

    view = query_view(spec, feature_set_name, **options)  # type: ignore[arg-type]
    return render("pit_query.athena.sql.jinja", q=view)


def pit_query_artifacts(ctx: BuildContext) -> Iterator[Artifact]:
    """``feature_sets/<set>/pit_query.athena.sql`` for every feature set (codegen builder)."""
    from fsgen.codegen.views import feature_set_header, snake

    for fs in ctx.spec.feature_sets:
        yield ctx.artifact(
            f"feature_sets/{snake(fs.name)}/pit_query.athena.sql",
            kind="pit_query",
            body=render_pit_sql(ctx.spec, fs.name, database=ctx.config.aws.glue_database),
            header=feature_set_header(ctx.spec, fs),
        )


__all__ = [
    "ROW_COLUMN",
    "Bounds",
    "LabelTimeType",
    "hour_text",
    "pit_query_artifacts",
    "query_view",
    "render_pit_sql",
    "trino_type",
]
