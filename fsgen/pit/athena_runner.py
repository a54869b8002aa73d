"""``fsgen dataset --engine athena``: the point-in-time query run on Amazon Athena with boto3.

One run is an :class:`AthenaJob` -- the label rows as a Parquet file, the DDL that exposes them
as a Glue table, the point-in-time query (:func:`fsgen.pit.athena.render_pit_sql` with the
groups' real Glue tables from DescribeFeatureGroup and constant partition bounds from the
label times) and the DROP -- built before anything is sent, so tests can execute exactly the
statements the runner sends. :func:`athena_stored_values` uploads, runs, pages the results and
cleans up; :func:`to_arrow` turns GetQueryResults' text cells into the local engine's columns,
by the feature's declared type (Athena reports ``json_format`` output as plain varchar).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fsgen.codegen.sql import DEFAULT_DATABASE, ident, literal
from fsgen.pit.athena import ROW_COLUMN, Bounds, render_pit_sql
from fsgen.pit.model import INTERNAL, PitError, PitPlan, arrow_type, with_ttl_history
from fsgen.ttl_history import TtlChange, TtlHistoryError, from_tags
from fsgen.types import DType, Scalar

if TYPE_CHECKING:
    import pyarrow as pa

    from fsgen.config import ProjectConfig
    from fsgen.pit.labels import Labels
    from fsgen.spec import ProjectSpec

TIME_COLUMN = "fsgen_label_us"


@dataclass(frozen=True)
class AthenaJob:
    """Everything one run sends, in order: put ``labels_key``, ``ddl``, ``query``, ``drop``."""

    database: str
    labels_table: str
    location: str
    labels_parquet: bytes
    ddl: str
    query: str
    drop: str
    aggregations: tuple[str, ...] = ()
    """One query per aggregation group (fsgen.pit.aggregate_dataset), run after ``query``."""

    @property
    def statements(self) -> tuple[str, ...]:
        return (self.ddl, self.query, *self.aggregations, self.drop)


def athena_job(
    spec: ProjectSpec,
    plan: PitPlan,
    labels: Labels,
    tables: Mapping[str, tuple[str, str]],
    *,
    database: str,
    location: str,
    run_id: str,
    knowledge_time: bool = False,
) -> AthenaJob:
    """The statements of one run: labels uploaded to ``location`` (an s3:// prefix) as table
    ``fsgen_labels_<run_id>`` in ``database``; ``tables`` maps each group to (database, table)."""
    table = f"fsgen_labels_{run_id}"
    bounds = (
        Bounds(first=int(labels.micros.min()), last=int(labels.micros.max()))
        if len(labels.micros)
        else None
    )
    query = render_pit_sql(
        spec,
        plan.feature_set.name,
        labels_table=f"{database}.{table}",
        tables={g: f"{db}.{t}" for g, (db, t) in tables.items()},
        label_columns=(),
        label_time_column=TIME_COLUMN,
        label_time_type="epoch_micros",
        knowledge_time=knowledge_time,
        json_collections=True,
        bounds=bounds,
        ttl_history={j.group.name: j.ttl_history for j in plan.joins},
    )
    from fsgen.pit.aggregate_dataset import athena_aggregation_sql

    aggregations = tuple(
        athena_aggregation_sql(
            join,
            ".".join(ident(p, "table") for p in tables[join.group.name]),
            f"{ident(database, 'database')}.{ident(table, 'labels table')}",
            row_column=ROW_COLUMN,
            time_column=TIME_COLUMN,
            json_collections=True,
        )
        for join in plan.aggregations
    )
    return AthenaJob(
        database=database,
        labels_table=table,
        location=location,
        labels_parquet=label_parquet(plan, labels),
        ddl=create_table_ddl(plan, database, table, location),
        query=query,
        drop=f"DROP TABLE IF EXISTS `{database}`.`{table}`",
        aggregations=aggregations,
    )


def athena_stored_values(
    config: ProjectConfig,
    spec: ProjectSpec,
    plan: PitPlan,
    labels: Labels,
    knowledge_time: bool = False,
    poll_seconds: float = 0.5,
    timeout_seconds: float = 3600.0,
    run_id: str | None = None,
) -> pa.Table:
    """Run the PIT query on Athena: upload the label keys and times as a Parquet table, create
    it in Glue, StartQueryExecution, poll GetQueryExecution, page GetQueryResults, drop the
    table. Returns the stored values in label order (columns as the local engine's)."""
    import boto3

    from fsgen.runtime.local_aws import local_client_kwargs

    aws = config.aws
    session = boto3.Session(region_name=aws.region)
    sagemaker = session.client(
        "sagemaker",
        endpoint_url=aws.endpoint_url,
        **local_client_kwargs(aws.endpoint_url, aws.region),
    )
    athena_kwargs = local_client_kwargs(None, aws.region, service="athena")
    athena = session.client("athena", **athena_kwargs)
    s3 = session.client("s3", **local_client_kwargs(None, aws.region, service="s3"))
    if "aws_access_key_id" not in athena_kwargs and session.get_credentials() is None:
        raise PitError(_no_credentials(aws.endpoint_url))
    output = aws.athena_output_s3_uri or (
        aws.offline_s3_uri and aws.offline_s3_uri.rstrip("/") + "/athena-results"
    )
    if not output:
        raise PitError(
            "set [tool.fsgen.aws] athena_output_s3_uri (or offline_s3_uri) to run "
            "point-in-time queries on Athena"
        )
    run = run_id or uuid.uuid4().hex[:12]
    bucket, prefix = split_s3(output.rstrip("/") + f"/fsgen-labels/{run}/")
    tables: dict[str, tuple[str, str]] = {}
    history: dict[str, tuple[TtlChange, ...]] = {}
    for join in plan.all_joins:
        tables[join.group.name], history[join.group.name] = deployed_group(
            sagemaker, join.group.name
        )
    plan = with_ttl_history(plan, history)
    job = athena_job(
        spec,
        plan,
        labels,
        tables,
        database=aws.glue_database,
        location=f"s3://{bucket}/{prefix}",
        run_id=run,
        knowledge_time=knowledge_time,
    )
    runner = AthenaRunner(athena, output, aws.athena_workgroup, poll_seconds, timeout_seconds)
    s3.put_object(Bucket=bucket, Key=prefix + "labels.parquet", Body=job.labels_parquet)
    try:
        runner.run(job.ddl)
        result = runner.results(runner.run(job.query)) if plan.joins else _rows(len(labels.frame))
        aggregated = [runner.results(runner.run(sql)) for sql in job.aggregations]
    finally:
        try:
            runner.run(job.drop)
        finally:
            s3.delete_object(Bucket=bucket, Key=prefix + "labels.parquet")
    return to_arrow(plan, len(labels.frame), result, aggregated)


def _no_credentials(endpoint_url: str | None) -> str:
    """Why Athena cannot be reached: endpoint_url (fsgen serve's address, say) points
    SageMaker only, and fsgen serve has no Athena or S3 to run the query on."""
    where = (
        f"; [tool.fsgen.aws] endpoint_url ({endpoint_url}) points only SageMaker there "
        "(fsgen serve has no Athena or S3)"
        if endpoint_url
        else ""
    )
    return (
        "--engine athena runs the query on Amazon Athena and stages the labels in S3, which "
        f"need AWS credentials, and boto3 found none{where}: configure credentials for boto3 "
        "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance role), or "
        "point AWS_ENDPOINT_URL_ATHENA and AWS_ENDPOINT_URL_S3 at local endpoints"
    )


def _rows(n: int) -> list[dict[str, str | None]]:
    """The PIT query's result when the set has no row-feature group: the row ids."""
    return [{ROW_COLUMN: str(i)} for i in range(n)]


def deployed_group(sagemaker: object, group: str) -> tuple[tuple[str, str], tuple[TtlChange, ...]]:
    """(database, table) of a group's offline store and its TTL history (the tag
    ``fsgen:ttl-history`` that ``fsgen apply`` keeps, read with ListTags)."""
    described = sagemaker.describe_feature_group(FeatureGroupName=group)  # type: ignore[attr-defined]
    table = _offline_table(described, group)
    tags: list[dict[str, str]] = []
    token: str | None = None
    while True:
        page = sagemaker.list_tags(  # type: ignore[attr-defined]
            ResourceArn=described["FeatureGroupArn"], **({"NextToken": token} if token else {})
        )
        tags.extend(page.get("Tags", []))
        token = page.get("NextToken")
        if not token:
            break
    try:
        return table, from_tags(tags)
    except TtlHistoryError as exc:
        raise PitError(f"feature group {group!r}: {exc}") from None


def offline_table(sagemaker: object, group: str) -> tuple[str, str]:
    """(database, table) of a group's offline store, from DescribeFeatureGroup: SageMaker
    names the table itself (with a creation-time suffix)."""
    described = sagemaker.describe_feature_group(FeatureGroupName=group)  # type: ignore[attr-defined]
    return _offline_table(described, group)


def _offline_table(described: dict[str, Any], group: str) -> tuple[str, str]:
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

    def results(self, query_id: str) -> list[dict[str, str | None]]:
        """Every result row as its text cells (NULL as None), across all pages."""
        rows: list[dict[str, str | None]] = []
        names: list[str] = []
        token: str | None = None
        first = True
        while True:
            kwargs: dict[str, object] = {"QueryExecutionId": query_id, "MaxResults": 1000}
            if token:
                kwargs["NextToken"] = token
            page = self.client.get_query_results(**kwargs)  # type: ignore[attr-defined]
            result = page["ResultSet"]
            if first:
                names = [c["Name"] for c in result["ResultSetMetadata"]["ColumnInfo"]]
            data = result.get("Rows", [])
            if first and data and [d.get("VarCharValue") for d in data[0]["Data"]] == names:
                data = data[1:]  # the header row Athena puts first on the first page
            first = False
            for row in data:
                cells = [d.get("VarCharValue") for d in row["Data"]]
                rows.append(dict(zip(names, cells, strict=True)))
            token = page.get("NextToken")
            if not token:
                return rows


def cell_value(dtype: DType, text: str | None) -> object:
    """One GetQueryResults cell as the feature's Python value. Doubles come as Trino prints
    them (``-0.0``, ``1.0E-5``, ``NaN``, ``Infinity``); collections as JSON text, whose
    numbers are read in the element type (``-0`` stays a negative zero double)."""
    if text is None:
        return None
    if dtype.is_collection:
        parse_int = float if dtype.scalar is Scalar.FRACTIONAL else int
        items = json.loads(text, parse_int=parse_int, parse_constant=float)
        if not isinstance(items, list):
            raise PitError(f"Athena returned {text!r} for a {dtype} value")
        return items
    if dtype.scalar is Scalar.INTEGRAL:
        return int(text)
    if dtype.scalar is Scalar.FRACTIONAL:
        return float(text)
    return text


def to_arrow(
    plan: PitPlan,
    n_labels: int,
    rows: list[dict[str, str | None]],
    aggregated: Sequence[list[dict[str, str | None]]] = (),
) -> pa.Table:
    """The result rows as the local engine's table: row number, then each stored value, then
    each aggregation feature (``aggregated``: one result per aggregation group, rows by
    ``_row``; a label row whose key is missing gets missing values, as locally)."""
    import pyarrow as pa

    order = [None if r.get(ROW_COLUMN) is None else int(str(r[ROW_COLUMN])) for r in rows]
    if order != list(range(n_labels)):
        raise PitError(
            f"Athena returned {len(rows)} rows for {n_labels} label rows, or not in label order"
        )
    arrays = {f"{INTERNAL}row": pa.array(order, type=pa.int64())}
    for item in plan.stored:
        arrays[item.column] = pa.array(
            [cell_value(item.dtype, r.get(item.column)) for r in rows],
            type=arrow_type(item.dtype),
        )
    for join, result in zip(plan.aggregations, aggregated, strict=True):
        got = [None if r.get("_row") is None else int(str(r["_row"])) for r in result]
        if got != list(range(n_labels)):
            raise PitError(
                f"Athena returned {len(result)} aggregation rows of group {join.group.name!r} "
                f"for {n_labels} label rows, or not in label order"
            )
        for item in join.inputs:
            arrays[item.column] = pa.array(
                [cell_value(item.dtype, r.get(item.column)) for r in result],
                type=arrow_type(item.dtype),
            )
    return pa.table(arrays)


def split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise PitError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def label_table(plan: PitPlan, labels: Labels) -> pa.Table:
    """What the runner uploads: row id, label time (µs) and each key column."""
    import pyarrow as pa

    columns: dict[str, pa.Array] = {
        ROW_COLUMN: pa.array(range(len(labels.frame)), type=pa.int64()),
        TIME_COLUMN: pa.array(labels.micros, type=pa.int64()),
    }
    for join in plan.all_joins:
        for column in join.label_keys:
            columns[column] = labels.keys[column]
    return pa.table(columns)


def label_parquet(plan: PitPlan, labels: Labels) -> bytes:
    import io

    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(label_table(plan, labels), sink)
    return sink.getvalue()


def create_table_ddl(plan: PitPlan, database: str, table: str, location: str) -> str:
    hive = {Scalar.STRING: "string", Scalar.INTEGRAL: "bigint"}
    columns = {ROW_COLUMN: "bigint", TIME_COLUMN: "bigint"}
    for join in plan.all_joins:
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


__all__ = [
    "TIME_COLUMN",
    "AthenaJob",
    "AthenaRunner",
    "athena_job",
    "athena_stored_values",
    "cell_value",
    "create_table_ddl",
    "deployed_group",
    "label_table",
    "offline_table",
    "to_arrow",
]
