"""The point-in-time query as Athena (Trino) SQL, its ``generated/`` artifact, and
``fsgen dataset --engine athena``.

:func:`render_pit_sql` builds a view-model of validated, quoted identifiers and typed
expressions from :func:`fsgen.pit.model.plan_for` -- the same plan the local engine runs --
and formats it with ``pit_query.athena.sql.jinja``. Tests transpile the output with sqlglot to
DuckDB and require the local engine's rows, on the same offline data, against an oracle.

Athena reads Hive-table timestamps at millisecond precision, so on AWS the write-time
tie-breaks see milliseconds; the local store's timestamps are microseconds.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from fsgen.codegen.sql import DEFAULT_DATABASE, glue_table_name, ident, literal
from fsgen.pit.model import MICROS, GroupJoin, PitError, PitPlan, plan_for
from fsgen.spec import ProjectSpec
from fsgen.types import DType, Scalar

if TYPE_CHECKING:
    import pyarrow as pa

    from fsgen.codegen.artifacts import Artifact, BuildContext
    from fsgen.config import ProjectConfig
    from fsgen.pit.labels import Labels

LabelTimeType = Literal["iso8601", "epoch_seconds", "epoch_micros", "timestamp"]

_TRINO = {Scalar.INTEGRAL: "bigint", Scalar.FRACTIONAL: "double", Scalar.STRING: "varchar"}


def trino_type(dtype: DType) -> str:
    inner = _TRINO[dtype.scalar]
    return f"array({inner})" if dtype.is_collection else inner


def micros_of_timestamp(expr: str) -> str:
    return f"CAST(round(to_unixtime({expr}) * {MICROS}) AS bigint)"


def micros_of_seconds(expr: str) -> str:
    return f"CAST(round(CAST({expr} AS double) * {MICROS}) AS bigint)"


def label_micros(column: str, kind: LabelTimeType) -> str:
    if kind == "iso8601":
        return micros_of_timestamp(f"from_iso8601_timestamp({column})")
    if kind == "epoch_seconds":
        return micros_of_seconds(column)
    if kind == "epoch_micros":
        return f"CAST({column} AS bigint)"
    return micros_of_timestamp(column)


def event_micros(join: GroupJoin) -> str:
    column = ident(join.group.event_time.name, "event-time column")
    if join.group.event_time.dtype.scalar is Scalar.STRING:
        return micros_of_timestamp(f"from_iso8601_timestamp({column})")
    return micros_of_seconds(column)


def table_ref(name: str, database: str, what: str) -> str:
    """``"db"."table"`` from ``table`` or ``db.table``, each part validated."""
    db, _, table = name.rpartition(".")
    return f"{ident(db or database, 'database')}.{ident(table, what)}"


@dataclass(frozen=True)
class KeyView:
    alias: str
    history: str
    label: str


@dataclass(frozen=True)
class StageView:
    name: str
    group: str
    table: str
    ttl_seconds: int | None
    event_column: str
    keys: tuple[KeyView, ...]
    partition: str
    moment: str
    order: str
    order_type: str
    record: str
    record_type: str
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
    key_columns: str
    label_columns: tuple[str, ...]
    label_micros: str
    stages: tuple[StageView, ...]
    select: tuple[str, ...]
    last: str
    order_by: str | None


_ORDER_TYPE = 'ROW("e" bigint, "a" bigint, "w" bigint, "d" boolean, "p" varchar)'


def _stage(
    join: GroupJoin,
    table: str,
    label_columns: Sequence[str],
    previous: list[str],
    record_types: list[str],
    knowledge_time: bool,
) -> StageView:
    name = f"g{join.index}"
    keys = tuple(
        KeyView(
            alias=f'"__fsgen_k{j}"',
            history=f"CAST({ident(k.name, 'key column')} AS {trino_type(k.dtype)})",
            label=f"CAST({ident(col, 'label key column')} AS {trino_type(k.dtype)})",
        )
        for j, (k, col) in enumerate(zip(join.keys, join.label_keys, strict=True))
    )
    event = event_micros(join)
    write = micros_of_timestamp('"write_time"')
    deleted = 'coalesce("is_deleted", false)'
    api = micros_of_timestamp('"api_invocation_time"')
    order = f'CAST(ROW({event}, {api}, {write}, {deleted}, "$path") AS {_ORDER_TYPE})'
    record_type = (
        "ROW("
        + ", ".join(
            [
                '"e" bigint',
                '"d" boolean',
                *(f'"v{n}" {trino_type(i.dtype)}' for n, i in enumerate(join.inputs)),
            ]
        )
        + ")"
    )
    values = [ident(i.feature, "feature column") for i in join.inputs]
    record = f"CAST(ROW({', '.join([event, deleted, *values])}) AS {record_type})"
    carried = (*label_columns, '"__fsgen_t"', *(f'"__fsgen_{p}"' for p in previous))
    carried_nulls = (
        *("NULL" for _ in label_columns),
        '"__fsgen_t"',
        *(f"CAST(NULL AS {t})" for t in record_types),
    )
    return StageView(
        name=name,
        group=join.group.name,
        table=table,
        ttl_seconds=join.ttl_seconds,
        event_column=ident(join.group.event_time.name, "event-time column"),
        keys=keys,
        partition=", ".join(k.alias for k in keys),
        moment=f"greatest({event}, {write})" if knowledge_time else event,
        order=order,
        order_type=_ORDER_TYPE,
        record=record,
        record_type=record_type,
        previous=f"g{join.index - 1}" if join.index else "labels",
        carried=carried,
        carried_nulls=carried_nulls,
    )


def _output(join: GroupJoin, json_collections: bool) -> Iterator[str]:
    rec = f'"__fsgen_g{join.index}"'
    gone = f'{rec}."d"'
    if join.ttl_micros is not None:
        gone += f' OR "__fsgen_t" - {rec}."e" > {join.ttl_micros}'
    for n, item in enumerate(join.inputs):
        value = f'{rec}."v{n}"'
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
    order_by: str | None = None,
    knowledge_time: bool = False,
    json_collections: bool = False,
) -> QueryView:
    plan = plan_for(spec, feature_set)
    fs = plan.feature_set
    labels = labels_table or f"{fs.name.replace('-', '_')}_labels"
    columns = tuple(
        ident(c, "label column")
        for c in (label_columns if label_columns is not None else plan.default_label_columns())
    )
    order = ident(order_by, "order-by column") if order_by else None
    carried = columns if order is None or order in columns else (*columns, order)
    time_column = ident(label_time_column or plan.label_time, "label time column")
    stages: list[StageView] = []
    previous: list[str] = []
    record_types: list[str] = []
    for join in plan.joins:
        name = (tables or {}).get(join.group.name, glue_table_name(join.group))
        stage = _stage(
            join,
            table_ref(name, database, f"table of group {join.group.name!r}"),
            carried,
            previous,
            record_types,
            knowledge_time,
        )
        stages.append(stage)
        previous.append(stage.name)
        record_types.append(stage.record_type)
    by_column = {i.column: (join, i) for join in plan.joins for i in join.inputs}
    outputs = {
        join.index: dict(
            zip((i.column for i in join.inputs), _output(join, json_collections), strict=True)
        )
        for join in plan.joins
    }
    select = (*columns, *(outputs[by_column[i.column][0].index][i.column] for i in plan.stored))
    return QueryView(
        feature_set=fs.name,
        knowledge_time=knowledge_time,
        labels_table=table_ref(labels, database, "labels table"),
        label_time=time_column,
        label_time_type=label_time_type,
        key_columns=", ".join(ident(c, "label key column") for c in plan.key_columns),
        label_columns=carried,
        label_micros=label_micros(time_column, label_time_type),
        stages=tuple(stages),
        select=select,
        last=stages[-1].name if stages else "labels",
        order_by=order,
    )


def render_pit_sql(spec: ProjectSpec, feature_set_name: str, **options: object) -> str:
    """The point-in-time query of a feature set in Athena's dialect.

    Options: ``labels_table`` ("table" or "db.table"; default ``<set>_labels``), ``database``,
    ``tables`` (group name -> Glue table, default the group name with '_'), ``label_columns``
    (label columns returned first; default keys, label time, request fields, labels),
    ``label_time_column``, ``label_time_type`` (iso8601, epoch_seconds, epoch_micros,
    timestamp), ``order_by`` (a label column giving the input order), ``knowledge_time``,
    ``json_collections`` (collections as JSON text, for GetQueryResults).
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
            body=render_pit_sql(ctx.spec, fs.name),
            header=feature_set_header(ctx.spec, fs),
        )


# ---------------------------------------------------------------------------- the runner

ROW_COLUMN = "fsgen_row"
TIME_COLUMN = "fsgen_label_us"


def athena_stored_values(
    config: ProjectConfig,
    spec: ProjectSpec,
    plan: PitPlan,
    labels: Labels,
    knowledge_time: bool = False,
    poll_seconds: float = 0.5,
    timeout_seconds: float = 3600.0,
) -> pa.Table:
    """Run the PIT query on Athena: upload the label keys and times as a Parquet table, create
    it in Glue, StartQueryExecution, poll GetQueryExecution, page GetQueryResults, drop the
    table. Returns the stored values in label order (columns as the local engine's)."""
    import boto3

    aws = config.aws
    session = boto3.Session(region_name=aws.region)
    sagemaker = session.client("sagemaker", endpoint_url=aws.endpoint_url)
    athena = session.client("athena")
    s3 = session.client("s3")
    output = aws.athena_output_s3_uri or (
        aws.offline_s3_uri and aws.offline_s3_uri.rstrip("/") + "/athena-results"
    )
    if not output:
        raise PitError(
            "set [tool.fsgen.aws] athena_output_s3_uri (or offline_s3_uri) to run "
            "point-in-time queries on Athena"
        )
    tables = {j.group.name: offline_table(sagemaker, j.group.name) for j in plan.joins}
    run = uuid.uuid4().hex[:12]
    table = f"fsgen_labels_{run}"
    bucket, prefix = _split_s3(output.rstrip("/") + f"/fsgen-labels/{run}/")
    runner = AthenaRunner(athena, output, aws.athena_workgroup, poll_seconds, timeout_seconds)
    s3.put_object(Bucket=bucket, Key=prefix + "labels.parquet", Body=_label_parquet(plan, labels))
    try:
        runner.run(_create_table_ddl(plan, aws.glue_database, table, f"s3://{bucket}/{prefix}"))
        sql = render_pit_sql(
            spec,
            plan.feature_set.name,
            labels_table=f"{aws.glue_database}.{table}",
            tables={g: f"{db}.{t}" for g, (db, t) in tables.items()},
            label_columns=(ROW_COLUMN,),
            label_time_column=TIME_COLUMN,
            label_time_type="epoch_micros",
            order_by=ROW_COLUMN,
            knowledge_time=knowledge_time,
            json_collections=True,
        )
        result = runner.results(runner.run(sql))
    finally:
        try:
            runner.run(f"DROP TABLE IF EXISTS `{aws.glue_database}`.`{table}`")
        finally:
            s3.delete_object(Bucket=bucket, Key=prefix + "labels.parquet")
    return _to_arrow(plan, labels, result)


def offline_table(sagemaker: object, group: str) -> tuple[str, str]:
    """(database, table) of a group's offline store, from DescribeFeatureGroup."""
    described = sagemaker.describe_feature_group(FeatureGroupName=group)  # type: ignore[attr-defined]
    catalog = (described.get("OfflineStoreConfig") or {}).get("DataCatalogConfig") or {}
    if not catalog.get("TableName"):
        raise PitError(
            f"feature group {group!r} has no offline store Glue table; "
            "apply it with an offline store first"
        )
    return str(catalog.get("Database") or DEFAULT_DATABASE), str(catalog["TableName"])


@dataclass
class AthenaRunner:
    client: object
    output: str
    workgroup: str
    poll_seconds: float = 0.5
    timeout_seconds: float = 3600.0

    def run(self, sql: str) -> str:
        """Start a query and wait for it; returns its QueryExecutionId."""
        started = self.client.start_query_execution(  # type: ignore[attr-defined]
            QueryString=sql,
            WorkGroup=self.workgroup,
            ResultConfiguration={"OutputLocation": self.output},
        )
        query_id = str(started["QueryExecutionId"])
        deadline = time.monotonic() + self.timeout_seconds
        delay = min(0.1, self.poll_seconds)
        while True:
            status = self.client.get_query_execution(  # type: ignore[attr-defined]
                QueryExecutionId=query_id
            )["QueryExecution"]["Status"]
            state = status["State"]
            if state == "SUCCEEDED":
                return query_id
            if state in ("FAILED", "CANCELLED"):
                reason = status.get("StateChangeReason", "no reason given")
                raise PitError(f"Athena query {query_id} {state.lower()}: {reason}")
            if time.monotonic() > deadline:
                raise PitError(
                    f"Athena query {query_id} still {state} after {self.timeout_seconds:.0f}s"
                )
            time.sleep(delay)
            delay = min(delay * 2, self.poll_seconds)

    def results(self, query_id: str) -> list[dict[str, object]]:
        """Every result row, typed by the result metadata, across all pages."""
        rows: list[dict[str, object]] = []
        names: list[str] = []
        types: list[str] = []
        token: str | None = None
        first = True
        while True:
            kwargs: dict[str, object] = {"QueryExecutionId": query_id, "MaxResults": 1000}
            if token:
                kwargs["NextToken"] = token
            page = self.client.get_query_results(**kwargs)  # type: ignore[attr-defined]
            result = page["ResultSet"]
            if first:
                info = result["ResultSetMetadata"]["ColumnInfo"]
                names = [c["Name"] for c in info]
                types = [c["Type"].lower() for c in info]
            data = result.get("Rows", [])
            if first and data and [d.get("VarCharValue") for d in data[0]["Data"]] == names:
                data = data[1:]  # the header row Athena puts first on the first page
            first = False
            for row in data:
                cells = [d.get("VarCharValue") for d in row["Data"]]
                rows.append({n: _typed(t, v) for n, t, v in zip(names, types, cells, strict=True)})
            token = page.get("NextToken")
            if not token:
                return rows


def _typed(kind: str, text: str | None) -> object:
    if text is None:
        return None
    if kind in ("bigint", "integer", "smallint", "tinyint"):
        return int(text)
    if kind in ("double", "float", "real", "decimal"):
        return float(text)
    if kind == "boolean":
        return text.lower() == "true"
    if kind == "json":
        return json.loads(text)
    return text


def _split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise PitError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def _label_parquet(plan: PitPlan, labels: Labels) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, pa.Array] = {
        ROW_COLUMN: pa.array(range(len(labels.frame)), type=pa.int64()),
        TIME_COLUMN: pa.array(labels.micros),
    }
    for join in plan.joins:
        for column in join.label_keys:
            columns[column] = labels.keys[column]
    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue()


def _create_table_ddl(plan: PitPlan, database: str, table: str, location: str) -> str:
    hive = {Scalar.STRING: "string", Scalar.INTEGRAL: "bigint"}
    columns = {ROW_COLUMN: "bigint", TIME_COLUMN: "bigint"}
    for join in plan.joins:
        for column, key in zip(join.label_keys, join.keys, strict=True):
            ident(column, "label key column")
            columns[column] = hive[key.dtype.scalar]
    ident(database, "database")
    ident(table, "table")
    body = ", ".join(f"`{c}` {t}" for c, t in columns.items())
    return (
        f"CREATE EXTERNAL TABLE `{database}`.`{table}` ({body}) STORED AS PARQUET "
        f"LOCATION {literal(location)}"
    )


def _to_arrow(plan: PitPlan, labels: Labels, rows: list[dict[str, object]]) -> pa.Table:
    import pyarrow as pa

    from fsgen.pit.dataset import arrow_type

    order = [r.get(ROW_COLUMN) for r in rows]
    if order != list(range(len(labels.frame))):
        raise PitError(
            f"Athena returned {len(rows)} rows for {len(labels.frame)} label rows, "
            "or not in label order"
        )
    arrays = {"__fsgen_row": pa.array(order, type=pa.int64())}
    for item in plan.stored:
        arrays[item.column] = pa.array(
            [r.get(item.column) for r in rows], type=arrow_type(item.dtype)
        )
    return pa.table(arrays)


__all__ = [
    "AthenaRunner",
    "LabelTimeType",
    "athena_stored_values",
    "offline_table",
    "pit_query_artifacts",
    "query_view",
    "render_pit_sql",
    "trino_type",
]
