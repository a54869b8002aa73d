"""The Glue job a generated ``generated/groups/<g>/spark_job.py`` runs (:func:`main`): the
batch pipeline of :mod:`fsgen.runtime.ingest`, one Spark task per split of the sources
(:mod:`fsgen.runtime.sparktasks`), into SageMaker Feature Store.

Each task writes its records to the online store by PutRecord
(``TargetStores=["OnlineStore"]``, botocore standard retries,
:class:`fsgen.runtime.sinks.PutRecordSink`) and returns them with ``write_time``,
``api_invocation_time``, ``is_deleted`` and the ``year/month/day/hour`` of their event time;
Spark appends them to the offline store's S3 folder in SageMaker's layout (the Glue table's
hourly partitions) and the rejects, as JSON lines, to the rejects folder. A retried task
repeats its PutRecords, which changes nothing visible (same record, same event time). A
failing task (an unreadable file, a PutRecord that fails after its retries) stops the job
before the offline store and the rejects are written, with one line naming the file, chunk
and cause; the PutRecords of the chunks before it stay written.

Standard library at import time; pyarrow and pyspark are imported when a job runs.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import math
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsgen.runtime.bulk import BlockResult
from fsgen.runtime.ingest import BLOCK_ROWS
from fsgen.runtime.pipeline import GroupRuntime
from fsgen.runtime.sinks import PutRecordSink, featurestore_client
from fsgen.runtime.sources import FORMATS, Reject, SourceError
from fsgen.runtime.sparktasks import (
    CHUNK_ROWS,
    SECONDS,
    S3Access,
    SparkJobError,
    Split,
    TaskError,
    collect,
    load_runtime,
    plan_splits,
    process_split,
    record_schema,
    session,
    task_error,
    task_runtime,
)

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession


def _splits(batches: Iterator[pa.RecordBatch]) -> Iterator[Split]:
    for batch in batches:
        for row in batch.to_pylist():
            yield Split(**row)


def _splits_frame(spark: SparkSession, splits: Sequence[Split]) -> DataFrame:
    frame = spark.createDataFrame(
        [asdict(s) for s in splits],
        "source string, fmt string, order int, part int, parts int",
    )
    return frame.repartition(len(splits))


KIND = "_fsgen_kind"
REJECT = "_fsgen_reject"
PARTITIONS = ("year", "month", "day", "hour")


def sagemaker_schema(rt: GroupRuntime) -> pa.Schema:
    """What a SageMaker-mode task returns: kind (0 record, 1 reject), the reject as a JSON
    line, the stored columns, SageMaker's three columns and the hourly partition values."""
    import pyarrow as pa

    ts = pa.timestamp("us", tz="UTC")
    stored = list(record_schema(rt))[:-1]
    return pa.schema(
        [
            pa.field(KIND, pa.int8()),
            pa.field(REJECT, pa.string()),
            *stored,
            pa.field("write_time", ts),
            pa.field("api_invocation_time", ts),
            pa.field("is_deleted", pa.bool_()),
            *(pa.field(p, pa.string()) for p in PARTITIONS),
        ]
    )


def with_sagemaker_columns(
    rt: GroupRuntime, table: pa.Table, write_us: int, api_us: int
) -> pa.RecordBatch:
    """Stored records plus write_time, api_invocation_time (strictly increasing from
    ``api_us``), is_deleted and the year/month/day/hour of their event time (UTC)."""
    import datetime as dt

    import pyarrow as pa

    schema = sagemaker_schema(rt)
    n = table.num_rows
    seconds = table.column(SECONDS).to_pylist()
    parts: dict[int, tuple[str, str, str, str]] = {}
    cols: list[list[str]] = [[], [], [], []]
    for s in seconds:
        hour = math.floor(s / 3600)
        if hour not in parts:
            t = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=hour)
            parts[hour] = (f"{t.year:04d}", f"{t.month:02d}", f"{t.day:02d}", f"{t.hour:02d}")
        for j, value in enumerate(parts[hour]):
            cols[j].append(value)
    ts = pa.timestamp("us", tz="UTC")
    arrays = [
        pa.array([0] * n, pa.int8()),
        pa.nulls(n, pa.string()),
        *(table.column(f.name) for f in list(schema)[2 : 2 + len(rt.columns)]),
        pa.array([write_us] * n, pa.int64()).cast(ts),
        pa.array(range(api_us, api_us + n), pa.int64()).cast(ts),
        pa.array([False] * n, pa.bool_()),
        *(pa.array(c, pa.string()) for c in cols),
    ]
    return pa.Table.from_arrays(arrays, schema=schema).combine_chunks().to_batches()[0]


def _rejects_batch(rt: GroupRuntime, rejects: list[Reject]) -> pa.RecordBatch:
    import pyarrow as pa

    schema = sagemaker_schema(rt)
    n = len(rejects)
    arrays = [pa.array([1] * n, pa.int8()), pa.array([r.line() for r in rejects], pa.string())]
    arrays += [pa.nulls(n, f.type) for f in list(schema)[2:]]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


@dataclass(frozen=True)
class OnlineTarget:
    """Where a task's PutRecords go (None endpoint: boto3's configuration)."""

    enabled: bool = True
    endpoint_url: str | None = None
    region: str | None = None
    max_attempts: int = 8
    stores: tuple[str, ...] = ("OnlineStore",)
    """PutRecord's TargetStores: the online store (Spark writes the offline files), or, for a
    group whose offline store is an Iceberg table, the offline store too (SageMaker then
    commits the records to the table; plain files in its folder would never be listed)."""


def _sagemaker_partition(
    root: str | None,
    module: str,
    chunk_rows: int,
    online: OnlineTarget,
    s3: S3Access,
    batches: Iterator[Any],
) -> Iterator[pa.RecordBatch]:
    rt = task_runtime(root, module)
    sink: PutRecordSink | None = None
    if online.enabled:
        client = featurestore_client(online.endpoint_url, online.region, online.max_attempts)
        sink = PutRecordSink(client=client, target_stores=list(online.stores))
    for split in _splits(batches):
        for out in process_split(rt, split, chunk_rows, s3):
            if out.rejects:
                yield _rejects_batch(rt, out.rejects)
            if out.records is None:
                continue
            if sink is not None:
                try:
                    for start in range(0, out.records.num_rows, BLOCK_ROWS):
                        _put(rt, sink, out.records.slice(start, BLOCK_ROWS))
                except TaskError:
                    raise
                except Exception as exc:
                    raise task_error(f"{out.where}: online store (PutRecord)", exc) from None
            now = time.time_ns() // 1000
            yield with_sagemaker_columns(rt, out.records, now, now - out.records.num_rows)


def _put(rt: GroupRuntime, sink: PutRecordSink, table: pa.Table) -> None:
    columns = {f.name: table.column(f.name).to_pylist() for f in table.schema}
    block = BlockResult(columns, list(range(table.num_rows)), columns[SECONDS])  # type: ignore[arg-type]
    sink.write(rt, sink.prepare(rt, block))


@dataclass
class JobResult:
    """A SageMaker-mode run's counts (``read == written + rejected``)."""

    group: str
    read: int = 0
    written: int = 0
    rejected: int = 0
    offline_uri: str | None = None
    rejects_uri: str | None = None
    seconds: float = 0.0
    target_stores: list[str] = field(default_factory=list)
    """Where the tasks' PutRecords went (an Iceberg group's offline store included)."""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def run_sagemaker(
    spark: SparkSession,
    module: str,
    sources: Sequence[str],
    *,
    offline_uri: str | None,
    rejects_uri: str | None,
    online: OnlineTarget,
    root: str | None = None,
    fmt: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    parts: int | None = None,
    s3: S3Access | None = None,
) -> JobResult:
    """The Glue job: online by PutRecord from each task, offline appended by Spark under
    ``offline_uri`` (``.../data`` partitioned year/month/day/hour; None: no offline store),
    rejects as JSON lines under ``rejects_uri``. A failing task raises SparkJobError (one line)
    before anything is written offline."""
    from pyspark import StorageLevel
    from pyspark.sql.pandas.types import from_arrow_schema

    started = time.perf_counter()
    rt = load_runtime(root, module)
    result = JobResult(
        rt.name,
        offline_uri=offline_uri,
        rejects_uri=rejects_uri,
        target_stores=list(online.stores) if online.enabled else [],
    )
    s3 = s3 or S3Access.from_environment()
    splits = plan_splits(sources, fmt, spark.sparkContext.defaultParallelism, parts, s3)
    fn = functools.partial(_sagemaker_partition, root, module, chunk_rows, online, s3)
    schema = from_arrow_schema(sagemaker_schema(rt))
    out = _splits_frame(spark, splits).mapInArrow(fn, schema)
    out = out.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts = {r[KIND]: r["count"] for r in collect(out.groupBy(KIND).count().collect)}
        result.written = int(counts.get(0, 0))
        result.rejected = int(counts.get(1, 0))
        result.read = result.written + result.rejected
        records = out.where(f"{KIND} = 0").drop(KIND, REJECT)
        if offline_uri is not None and result.written:
            records.write.mode("append").partitionBy(*PARTITIONS).parquet(
                offline_uri.rstrip("/") + "/data"
            )
        if rejects_uri is not None and result.rejected:
            out.where(f"{KIND} = 1").select(REJECT).coalesce(1).write.mode("append").text(
                rejects_uri.rstrip("/") + f"/run-{uuid.uuid4().hex[:12]}"
            )
    finally:
        out.unpersist()
    result.seconds = time.perf_counter() - started
    return result


def _root_of(module: str) -> str:
    """The directory (or zip) the generated package was imported from: the tasks put it first
    on their path (on Glue the ``--extra-py-files`` zip is there already)."""
    path = Path(str(importlib.import_module(module).__file__))
    return str(path.parents[module.count(".")])


def resolved_offline_uri(group: str, endpoint_url: str | None, region: str | None) -> str | None:
    """The group's offline folder (DescribeFeatureGroup's ResolvedOutputS3Uri; None when the
    group has no offline store)."""
    return describe_offline(group, endpoint_url, region)[0]


def describe_offline(
    group: str, endpoint_url: str | None, region: str | None
) -> tuple[str | None, str | None]:
    """The group's offline folder and table format ("Glue" or "Iceberg") as DescribeFeatureGroup
    gives them; (None, None) when the group has no offline store."""
    import boto3

    from fsgen.runtime.local_aws import local_client_kwargs

    kwargs: dict[str, Any] = local_client_kwargs(endpoint_url, region, service="sagemaker")
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    described = boto3.client("sagemaker", **kwargs).describe_feature_group(FeatureGroupName=group)
    offline = described.get("OfflineStoreConfig")
    if not offline:
        return None, None
    s3 = offline.get("S3StorageConfig", {})
    uri = s3.get("ResolvedOutputS3Uri") or s3.get("S3Uri")
    return (str(uri) if uri else None), str(offline.get("TableFormat") or "Glue")


# ------------------------------------------------------------------------------- command line


def main(
    module: str,
    default_sources: Sequence[str],
    argv: Sequence[str] | None = None,
    *,
    online_default: bool = True,
    offline_default: bool = True,
    builder: Callable[[], SparkSession] | None = None,
) -> int:
    """The Glue job's entry point: ``--source URI[,URI...] [--rejects URI]
    [--offline-uri URI] [--endpoint-url URL] [--s3-endpoint-url URL] [--region R] [--format F]
    [--chunk-rows N]``.
    Arguments Glue adds itself (``--JOB_NAME``, ``--job-bookmark-option``, ...) are ignored.
    Prints the counts as JSON; exit status 1 when a record was rejected; a job that fails
    prints one ``error:`` line and exits 1 too."""
    parser = argparse.ArgumentParser(description=f"Spark ingestion job ({module})")
    parser.add_argument("--source", default=",".join(default_sources))
    parser.add_argument("--rejects", default=None)
    parser.add_argument("--offline-uri", "--offline_uri", dest="offline_uri", default=None)
    parser.add_argument("--endpoint-url", "--endpoint_url", dest="endpoint_url", default=None)
    parser.add_argument("--region", default=None)
    parser.add_argument(
        "--s3-endpoint-url", "--s3_endpoint_url", dest="s3_endpoint_url", default=None
    )
    parser.add_argument("--format", default=None, choices=FORMATS)
    parser.add_argument("--chunk-rows", "--chunk_rows", dest="chunk_rows", type=int)
    args, _ = parser.parse_known_args(argv)
    sources = [s for s in str(args.source).split(",") if s]
    spark = builder() if builder is not None else session(app=module)
    rt = load_runtime(None, module)
    root = _root_of(module)
    offline_uri = args.offline_uri
    online = OnlineTarget(online_default, args.endpoint_url, args.region)
    if offline_uri is None and offline_default:
        offline_uri, table_format = describe_offline(rt.name, args.endpoint_url, args.region)
        if table_format == "Iceberg":
            # an Iceberg table lists only the files its commits add: SageMaker writes it
            offline_uri = None
            stores = ("OnlineStore", "OfflineStore") if online_default else ("OfflineStore",)
            online = OnlineTarget(True, args.endpoint_url, args.region, stores=stores)
    try:
        result = run_sagemaker(
            spark,
            module,
            sources,
            offline_uri=offline_uri,
            rejects_uri=args.rejects,
            online=online,
            root=root,
            fmt=args.format,
            chunk_rows=args.chunk_rows or CHUNK_ROWS,
            s3=S3Access.from_environment(args.s3_endpoint_url),
        )
    except (SourceError, SparkJobError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.to_dict(), sort_keys=True))
    return 1 if result.rejected else 0


__all__ = [
    "PARTITIONS",
    "JobResult",
    "OnlineTarget",
    "describe_offline",
    "main",
    "resolved_offline_uri",
    "run_sagemaker",
    "sagemaker_schema",
    "with_sagemaker_columns",
]
