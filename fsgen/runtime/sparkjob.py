"""What a generated Spark job (``generated/groups/<g>/spark_job.py``) runs: the batch pipeline
of :mod:`fsgen.runtime.ingest`, one Spark task per split of the sources.

The work is planned on the driver as :class:`Split` s: a source file and a stride. A split
``(file, part, parts)`` reads the file with the pipeline's own reader
(:func:`fsgen.runtime.sources.read_source`, same chunk size) and processes the chunks
``part, part + parts, ...`` with :func:`fsgen.runtime.ingest.prepare_chunk` -- the same
validation, block transform (:func:`fsgen.runtime.bulk.process_block`) and featuredefs
functions as ``fsgen ingest``. Every split sees the whole file, so a reject's row number is
the file's row number and a malformed CSV row is numbered as ``fsgen ingest`` numbers it;
the chunks a split skips are parsed by Arrow, never converted to Python or transformed.
Files are split this way when there are fewer files than cores; with many files (the usual
Glue input) each file is one split.

The splits run in ``mapInArrow``, with two destinations:

- **staged** (:func:`stage`, what ``fsgen ingest --engine spark`` uses): each chunk's stored
  records (Arrow IPC) and rejects (JSON lines) are written to a staging directory; the driver
  then commits them through the local store's sink in source order, so the store's commit
  protocol (one writer, atomic chunks) holds and the store, the rejects file and the counts
  equal ``fsgen ingest``'s;
- **SageMaker** (:func:`run_sagemaker`, the Glue job): each task writes its records to the
  online store by PutRecord (``TargetStores=["OnlineStore"]``, botocore standard retries,
  :class:`fsgen.runtime.sinks.PutRecordSink`) and returns them with ``write_time``,
  ``api_invocation_time``, ``is_deleted`` and the ``year/month/day/hour`` of their event time;
  Spark appends them to the offline store's S3 folder in SageMaker's layout (the Glue table's
  hourly partitions) and the rejects, as JSON lines, to the rejects folder. A retried task
  repeats its PutRecords, which changes nothing visible (same record, same event time).

Standard library at import time; pyarrow and pyspark are imported when a job runs (pyspark
only on the driver and in :func:`session`).
"""

from __future__ import annotations

import argparse
import functools
import glob
import importlib
import json
import math
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsgen.runtime.bulk import BlockResult
from fsgen.runtime.errors import ConfigurationError
from fsgen.runtime.ingest import BLOCK_ROWS, prepare_chunk
from fsgen.runtime.pipeline import GroupRuntime
from fsgen.runtime.sinks import PutRecordSink, RecordRejected, featurestore_client
from fsgen.runtime.sources import FORMATS, Reject, SourceError, format_of, read_source

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

CHUNK_ROWS = 100_000
"""Records per chunk: ``fsgen ingest``'s, so both number and order chunks alike."""
SPLIT_BYTES = 32 << 20
"""A file is split into at most one part per ``SPLIT_BYTES`` (and per core)."""
SECONDS = "_fsgen_seconds"
INSTALL = "pip install 'fsgen[spark]'"

_ARROW = {"Integral": "int64", "Fractional": "float64", "String": "string"}


class SparkUnavailable(ConfigurationError):
    """pyspark or Java is missing, or the JVM did not start."""


# ------------------------------------------------------------------------------- the session


def find_java() -> None:
    """``JAVA_HOME``, ``java`` on PATH, or a JDK under /usr/lib/jvm (17 first)."""
    if os.environ.get("JAVA_HOME") or shutil.which("java"):
        return
    homes = sorted(Path("/usr/lib/jvm").glob("*"), key=lambda p: ("17" not in p.name, p.name))
    for home in homes:
        if (home / "bin" / "java").is_file():
            os.environ["JAVA_HOME"] = str(home)
            return
    raise SparkUnavailable(
        "the spark engine needs Java 17: install it (Debian: apt-get install "
        "openjdk-17-jre-headless) or set JAVA_HOME"
    )


def session(master: str | None = None, app: str = "fsgen-ingest") -> SparkSession:
    """The active SparkSession, or a new one (``master``, else ``FSGEN_SPARK_MASTER``, else
    ``local[2]``): UI off, UTC, Python workers on this interpreter."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable(f"the spark engine needs pyspark: {INSTALL}") from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    find_java()
    master = master or os.environ.get("FSGEN_SPARK_MASTER", "local[2]")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName(app)
    if master.startswith("local"):  # the driver listens on loopback only
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config(
            "spark.driver.host", "127.0.0.1"
        )
    try:
        spark = (
            builder.config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate()
        )
    except Exception as exc:  # the JVM did not start: say which Java and master
        java = os.environ.get("JAVA_HOME") or shutil.which("java")
        raise SparkUnavailable(f"cannot start Spark ({master}, Java {java}): {exc}") from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# ------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Split:
    """Chunks ``part, part + parts, ...`` of source file number ``order``."""

    source: str
    fmt: str
    order: int
    part: int
    parts: int


def expand_sources(sources: Sequence[str]) -> list[str]:
    """Files of each source in order: a file, a glob, a directory or an ``s3://`` prefix
    ending in ``/`` (its objects with a known extension, sorted)."""
    out: list[str] = []
    for source in sources:
        if source.startswith("s3://"):
            out.extend(_s3_objects(source) if source.endswith("/") else [source])
        elif any(c in source for c in "*?["):
            out.extend(sorted(glob.glob(source)))
        elif Path(source).is_dir():
            out.extend(str(p) for p in sorted(Path(source).rglob("*")) if _known(p.name))
        else:
            out.append(source)
    if not out:
        raise SourceError(f"{', '.join(sources) or 'no source'}: no files to read")
    return out


def _known(name: str) -> bool:
    try:
        format_of(name)
    except SourceError:
        return False
    return not name.startswith((".", "_"))


def _s3_objects(prefix: str) -> list[str]:
    import boto3

    bucket, _, key = prefix[5:].partition("/")
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
    names = [o["Key"] for page in pages for o in page.get("Contents", [])]
    return [f"s3://{bucket}/{k}" for k in sorted(names) if _known(k.rsplit("/", 1)[-1])]


def plan_splits(
    sources: Sequence[str], fmt: str | None, parallelism: int, parts: int | None = None
) -> list[Split]:
    """The splits of ``sources``: each file in ``parts`` strides (default: one per
    ``SPLIT_BYTES`` of a local file, at most ``parallelism`` and one when there are at least
    as many files as cores)."""
    files = expand_sources(sources)
    out: list[Split] = []
    for order, name in enumerate(files):
        kind = fmt or format_of(name)
        if kind not in FORMATS:
            raise SourceError(f"{name}: unknown format {kind!r} (csv, parquet or jsonl)")
        n = parts or _parts(name, parallelism, len(files))
        out.extend(Split(name, kind, order, part, n) for part in range(n))
    return out


def _parts(name: str, parallelism: int, files: int) -> int:
    if files >= parallelism or name.startswith("s3://"):
        return 1
    try:
        size = Path(name).stat().st_size
    except OSError:
        return 1
    return max(1, min(parallelism, math.ceil(size / SPLIT_BYTES)))


# ------------------------------------------------------------------------------- one split


def record_schema(rt: GroupRuntime) -> pa.Schema:
    """The stored columns as Arrow types (the local offline store's), plus the event time in
    epoch seconds."""
    import pyarrow as pa

    fields = []
    for name, kind, collection, _ in rt.columns:
        typ = pa.type_for_alias(_ARROW[kind])
        fields.append(pa.field(name, pa.list_(typ) if collection else typ))
    return pa.schema([*fields, pa.field(SECONDS, pa.float64())])


def records_of(rt: GroupRuntime, block: BlockResult) -> pa.Table:
    """A processed block as Arrow (``prepare`` of the pipeline): a record the store's types
    cannot hold is refused the way the local store's sink refuses it."""
    import pyarrow as pa

    schema = record_schema(rt)
    try:
        arrays = [pa.array(block.columns[f.name], type=f.type) for f in list(schema)[:-1]]
    except (TypeError, ValueError, OverflowError) as exc:  # pyarrow: a value beyond int64
        raise RecordRejected(f"{rt.name}: records the store cannot hold: {exc}") from None
    arrays.append(pa.array(block.seconds, type=pa.float64()))
    return pa.Table.from_arrays(arrays, schema=schema)


@dataclass
class ChunkOutput:
    """One processed chunk of a split."""

    order: int
    chunk: int
    read: int
    records: pa.Table | None
    rejects: list[Reject]


def process_split(rt: GroupRuntime, split: Split, chunk_rows: int) -> Iterator[ChunkOutput]:
    """The split's chunks, validated and transformed by the batch pipeline's own code."""
    for i, chunk in enumerate(read_source(split.source, chunk_rows, split.fmt)):
        if i % split.parts != split.part:
            continue
        prepared = prepare_chunk(rt, chunk, records_of)
        table = prepared.data if prepared.accepted else None
        yield ChunkOutput(split.order, i, prepared.read, table, prepared.rejects)  # type: ignore[arg-type]


def load_runtime(root: str | None, module: str) -> GroupRuntime:
    """``RUNTIME`` of the generated module ``module`` of the project at ``root`` (a Spark
    Python worker is a fresh interpreter: it puts the project first on its path and forgets
    another project's generated package, as :mod:`fsgen.generated_imports` does)."""
    if root is not None:
        if root in sys.path:
            sys.path.remove(root)
        sys.path.insert(0, root)
        top = module.split(".", 1)[0]
        package = sys.modules.get(top)
        expected = [str((Path(root) / top).resolve())]
        paths = [str(Path(p).resolve()) for p in getattr(package, "__path__", [])]
        if package is not None and paths != expected:
            for name in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
                del sys.modules[name]
        importlib.invalidate_caches()
    runtime = importlib.import_module(module).RUNTIME
    assert isinstance(runtime, GroupRuntime)
    return runtime


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


# ------------------------------------------------------------------------------- staged


STAGED_SCHEMA = (
    "order long, chunk long, read long, accepted long, rejected long, "
    "records string, rejects string"
)


@dataclass(frozen=True)
class Staged:
    """One chunk's output in the staging directory (paths None when empty)."""

    order: int
    chunk: int
    read: int
    accepted: int
    rejected: int
    records: str | None
    rejects: str | None

    def table(self) -> pa.Table | None:
        if self.records is None:
            return None
        import pyarrow as pa

        with pa.memory_map(self.records) as source:
            return pa.ipc.open_file(source).read_all()

    def reject_list(self) -> list[Reject]:
        if self.rejects is None:
            return []
        with open(self.rejects, encoding="utf-8") as fh:
            return [Reject(**json.loads(line)) for line in fh]


def _stage_partition(
    root: str | None, module: str, chunk_rows: int, staging: str, batches: Iterator[Any]
) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    rt = load_runtime(root, module)
    rows: list[dict[str, object]] = []
    for split in _splits(batches):
        for out in process_split(rt, split, chunk_rows):
            stem = os.path.join(staging, f"{out.order:06d}-{out.chunk:09d}")
            records = rejects = None
            if out.records is not None:
                records = stem + ".arrow"
                with pa.OSFile(records, "wb") as sink:
                    with pa.ipc.new_file(sink, out.records.schema) as writer:
                        writer.write_table(out.records)
            if out.rejects:
                rejects = stem + ".rejects.jsonl"
                with open(rejects, "w", encoding="utf-8", errors="backslashreplace") as fh:
                    fh.writelines(
                        json.dumps(_reject_json(r), allow_nan=True) + "\n" for r in out.rejects
                    )
            accepted = out.records.num_rows if out.records is not None else 0
            rows.append(
                {
                    "order": out.order,
                    "chunk": out.chunk,
                    "read": out.read,
                    "accepted": accepted,
                    "rejected": len(out.rejects),
                    "records": records,
                    "rejects": rejects,
                }
            )
    if rows:
        yield pa.RecordBatch.from_pylist(rows, schema=_staged_arrow())


def _staged_arrow() -> pa.Schema:
    import pyarrow as pa

    names = ["order", "chunk", "read", "accepted", "rejected"]
    return pa.schema(
        [
            *(pa.field(n, pa.int64()) for n in names),
            ("records", pa.string()),
            ("rejects", pa.string()),
        ]
    )


def _reject_json(reject: Reject) -> dict[str, object]:
    return reject.to_json()


def stage(
    spark: SparkSession,
    module: str,
    sources: Sequence[str],
    staging: str | os.PathLike[str],
    *,
    root: str | None = None,
    fmt: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    parts: int | None = None,
) -> list[Staged]:
    """Run the job's splits into ``staging`` (a directory every Spark task can write: local
    mode); returns each chunk's output in source order. Raises SourceError before any task
    runs when a source is not there."""
    rt = load_runtime(root, module)
    del rt  # the module imports here, before a task does
    splits = plan_splits(sources, fmt, spark.sparkContext.defaultParallelism, parts)
    for s in splits:
        if not s.source.startswith("s3://") and not Path(s.source).is_file():
            raise SourceError(f"{s.source}: no such file")
    Path(staging).mkdir(parents=True, exist_ok=True)
    fn = functools.partial(_stage_partition, root, module, chunk_rows, str(staging))
    rows = _collect(_splits_frame(spark, splits).mapInArrow(fn, STAGED_SCHEMA))
    return sorted((Staged(**r.asDict()) for r in rows), key=lambda s: (s.order, s.chunk))


def _collect(frame: DataFrame) -> list[Any]:
    """Collect, turning a task's SourceError back into one (not a Py4J trace)."""
    try:
        return frame.collect()
    except Exception as exc:
        text = str(exc)
        marker = "SourceError: "
        if marker in text:
            raise SourceError(text.split(marker, 1)[1].splitlines()[0]) from None
        raise


# ------------------------------------------------------------------------------- SageMaker


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


def _sagemaker_partition(
    root: str | None,
    module: str,
    chunk_rows: int,
    online: OnlineTarget,
    batches: Iterator[Any],
) -> Iterator[pa.RecordBatch]:
    rt = load_runtime(root, module)
    sink: PutRecordSink | None = None
    if online.enabled:
        client = featurestore_client(online.endpoint_url, online.region, online.max_attempts)
        sink = PutRecordSink(client=client, target_stores=["OnlineStore"])
    for split in _splits(batches):
        for out in process_split(rt, split, chunk_rows):
            if out.rejects:
                yield _rejects_batch(rt, out.rejects)
            if out.records is None:
                continue
            if sink is not None:
                for start in range(0, out.records.num_rows, BLOCK_ROWS):
                    _put(rt, sink, out.records.slice(start, BLOCK_ROWS))
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
) -> JobResult:
    """The Glue job: online by PutRecord from each task, offline appended by Spark under
    ``offline_uri`` (``.../data`` partitioned year/month/day/hour; None: no offline store),
    rejects as JSON lines under ``rejects_uri``."""
    from pyspark import StorageLevel
    from pyspark.sql.pandas.types import from_arrow_schema

    started = time.perf_counter()
    rt = load_runtime(root, module)
    result = JobResult(rt.name, offline_uri=offline_uri, rejects_uri=rejects_uri)
    splits = plan_splits(sources, fmt, spark.sparkContext.defaultParallelism, parts)
    fn = functools.partial(_sagemaker_partition, root, module, chunk_rows, online)
    schema = from_arrow_schema(sagemaker_schema(rt))
    out = _splits_frame(spark, splits).mapInArrow(fn, schema)
    out = out.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts = {r[KIND]: r["count"] for r in _collect(out.groupBy(KIND).count())}
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
    import boto3

    from fsgen.runtime.local_aws import local_client_kwargs

    kwargs: dict[str, Any] = local_client_kwargs(endpoint_url, region, service="sagemaker")
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    described = boto3.client("sagemaker", **kwargs).describe_feature_group(FeatureGroupName=group)
    s3 = described.get("OfflineStoreConfig", {}).get("S3StorageConfig", {})
    uri = s3.get("ResolvedOutputS3Uri") or s3.get("S3Uri")
    return str(uri) if uri else None


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
    [--offline-uri URI] [--endpoint-url URL] [--region R] [--format F] [--chunk-rows N]``.
    Arguments Glue adds itself (``--JOB_NAME``, ``--job-bookmark-option``, ...) are ignored.
    Prints the counts as JSON; exit status 1 when a record was rejected."""
    parser = argparse.ArgumentParser(description=f"Spark ingestion job ({module})")
    parser.add_argument("--source", default=",".join(default_sources))
    parser.add_argument("--rejects", default=None)
    parser.add_argument("--offline-uri", "--offline_uri", dest="offline_uri", default=None)
    parser.add_argument("--endpoint-url", "--endpoint_url", dest="endpoint_url", default=None)
    parser.add_argument("--region", default=None)
    parser.add_argument("--format", default=None, choices=FORMATS)
    parser.add_argument("--chunk-rows", "--chunk_rows", dest="chunk_rows", type=int)
    args, _ = parser.parse_known_args(argv)
    sources = [s for s in str(args.source).split(",") if s]
    spark = builder() if builder is not None else session(app=module)
    rt = load_runtime(None, module)
    root = _root_of(module)
    offline_uri = args.offline_uri
    if offline_uri is None and offline_default:
        offline_uri = resolved_offline_uri(rt.name, args.endpoint_url, args.region)
    try:
        result = run_sagemaker(
            spark,
            module,
            sources,
            offline_uri=offline_uri,
            rejects_uri=args.rejects,
            online=OnlineTarget(online_default, args.endpoint_url, args.region),
            root=root,
            fmt=args.format,
            chunk_rows=args.chunk_rows or CHUNK_ROWS,
        )
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.to_dict(), sort_keys=True))
    return 1 if result.rejected else 0


__all__ = [
    "CHUNK_ROWS",
    "JobResult",
    "OnlineTarget",
    "SparkUnavailable",
    "Split",
    "Staged",
    "expand_sources",
    "main",
    "plan_splits",
    "process_split",
    "record_schema",
    "run_sagemaker",
    "session",
    "stage",
]
