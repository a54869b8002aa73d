"""What both Spark jobs share (:mod:`fsgen.runtime.sparkstage`, ``fsgen ingest --engine
spark``; :mod:`fsgen.runtime.sparkjob`, the Glue job): the session, the plan of the sources as
:class:`Split` s, one split's processing by the batch pipeline's own code, and the errors a
task reports.

A split ``(file, part, parts)`` reads the file with the pipeline's own reader
(:func:`fsgen.runtime.sources.read_source`, same chunk size) and processes the chunks
``part, part + parts, ...`` with :func:`fsgen.runtime.ingest.prepare_chunk` -- the same
validation, block transform (:func:`fsgen.runtime.bulk.process_block`) and featuredefs
functions as ``fsgen ingest``. Every split sees the whole file, so a reject's row number is
the file's row number and a malformed CSV row is numbered as ``fsgen ingest`` numbers it;
the chunks a split skips are parsed by Arrow, never converted to Python or transformed.
Files are split this way when there are fewer files than cores; with many files (the usual
Glue input) each file is one split. An ``s3://`` object is downloaded by the task that reads
it (boto3, :class:`S3Access`) into a temporary file deleted when its split ends.

A failure inside a task that is not a rejected row -- an unreadable file, the featuredefs
not importing on the worker, a staging or PutRecord write failing -- is raised as
:class:`TaskError`, one line naming the file, chunk and rows and the cause;
:func:`collect` finds it in Spark's error and raises :class:`SparkJobError` with that line
(never a Py4J trace).

Standard library at import time; pyarrow and pyspark are imported when a job runs (pyspark
only on the driver and in :func:`session`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import importlib
import math
import os
import re
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fsgen.runtime.bulk import BlockResult
from fsgen.runtime.errors import ConfigurationError
from fsgen.runtime.ingest import needed_columns, prepare_chunk
from fsgen.runtime.pipeline import GroupRuntime
from fsgen.runtime.sinks import RecordRejected, check_value_sizes
from fsgen.runtime.sources import FORMATS, Chunk, Reject, SourceError, format_of, read_source

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark import RDD
    from pyspark.sql import SparkSession

CHUNK_ROWS = 100_000
"""Records per chunk: ``fsgen ingest``'s, so both number and order chunks alike."""
SPLIT_BYTES = 32 << 20
"""A file is split into at most one part per ``SPLIT_BYTES`` (and per core)."""
SECONDS = "_fsgen_seconds"
INSTALL = "pip install 'fsgen[spark]'"

_ARROW = {"Integral": "int64", "Fractional": "float64", "String": "string"}

T = TypeVar("T")
_FSGEN = str(Path(__file__).resolve().parents[1]) + os.sep


class SparkUnavailable(ConfigurationError):
    """pyspark or Java is missing, or the JVM did not start."""


class TaskError(Exception):
    """A Spark task failed for a reason no row is to blame for; the message is one line."""


class SparkJobError(ConfigurationError):
    """The Spark job failed: the failing task's one-line :class:`TaskError` (or the first
    line of Spark's error when no task reported one). Nothing was committed locally."""


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


def session(
    master: str | None = None,
    app: str = "fsgen-ingest",
    *,
    default_master: str = "local[2]",
    config: Mapping[str, str] | None = None,
    log_level: str = "FATAL",
) -> SparkSession:
    """The active SparkSession, or a new one (``master``, else ``FSGEN_SPARK_MASTER``, else
    ``default_master``): UI off, UTC, Python workers on this interpreter, plus ``config``.
    ``log_level`` FATAL: a failed task is reported in one line, not logged."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable(f"the spark engine needs pyspark: {INSTALL}") from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    find_java()
    master = master or os.environ.get("FSGEN_SPARK_MASTER", default_master)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName(app)
    if master.startswith("local"):  # the driver listens on loopback only
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config(
            "spark.driver.host", "127.0.0.1"
        )
    settings = {
        **_quiet_driver_logs(),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        **(config or {}),
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: say which Java and master
        java = os.environ.get("JAVA_HOME") or shutil.which("java")
        raise SparkUnavailable(f"cannot start Spark ({master}, Java {java}): {exc}") from None
    spark.sparkContext.setLogLevel(log_level)
    return spark


def _quiet_driver_logs() -> dict[str, str]:
    """The driver JVM's log4j2 configuration (errors only, on stderr), set before it starts,
    so Spark's start-up lines do not precede fsgen's output; absent from a Glue job's zip,
    whose session Glue starts."""
    conf = Path(__file__).with_name("log4j2.properties")
    if not conf.is_file():
        return {}
    return {"spark.driver.extraJavaOptions": f"-Dlog4j.configurationFile={conf.as_uri()}"}


# ------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Split:
    """Chunks ``part, part + parts, ...`` of source file number ``order``."""

    source: str
    fmt: str
    order: int
    part: int
    parts: int


@dataclass(frozen=True)
class S3Access:
    """How the driver lists and the tasks read ``s3://`` sources (None: boto3's own
    configuration, ``AWS_ENDPOINT_URL_S3`` included; a loopback endpoint without configured
    credentials gets the dummy ones, as every local client of fsgen does)."""

    endpoint_url: str | None = None
    region: str | None = None

    @classmethod
    def from_environment(cls, endpoint_url: str | None = None) -> S3Access:
        """The endpoint the driver's boto3 would use, made explicit for the tasks (a Spark
        worker does not see variables the driver set after the JVM started)."""
        variable = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        return cls(endpoint_url or variable, os.environ.get("AWS_DEFAULT_REGION"))

    def client(self) -> Any:
        import boto3

        from fsgen.runtime.local_aws import local_client_kwargs

        kwargs: dict[str, Any] = local_client_kwargs(self.endpoint_url, self.region)
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        return boto3.client("s3", **kwargs)


def expand_sources(sources: Sequence[str], s3: S3Access | None = None) -> list[str]:
    """Files of each source in order: a file, a glob, a directory or an ``s3://`` prefix
    ending in ``/`` (its objects with a known extension, sorted)."""
    out: list[str] = []
    for source in sources:
        if source.startswith("s3://"):
            out.extend(_s3_objects(source, s3 or S3Access()) if source.endswith("/") else [source])
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


def _s3_objects(prefix: str, s3: S3Access) -> list[str]:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = prefix[5:].partition("/")
    try:
        pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
        names = [o["Key"] for page in pages for o in page.get("Contents", [])]
    except (BotoCoreError, ClientError) as exc:
        raise SourceError(f"{prefix}: cannot list: {exc}") from None
    return [f"s3://{bucket}/{k}" for k in sorted(names) if _known(k.rsplit("/", 1)[-1])]


def plan_splits(
    sources: Sequence[str],
    fmt: str | None,
    parallelism: int,
    parts: int | None = None,
    s3: S3Access | None = None,
) -> list[Split]:
    """The splits of ``sources``: each file in ``parts`` strides (default: one per
    ``SPLIT_BYTES`` of a local file, at most ``parallelism`` and one when there are at least
    as many files as cores)."""
    files = expand_sources(sources, s3)
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


def splits_rdd(spark: SparkSession, splits: Sequence[Split]) -> RDD[Split]:
    """One Spark partition per split (a plain RDD: no SQL plan, schema parsing or Arrow
    exchange for what is a handful of small objects)."""
    return spark.sparkContext.parallelize(list(splits), len(splits))


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
    cannot hold is refused the way the local store's sink refuses it, and so is a value longer
    than PutRecord takes (which the local commit of staged tables, unlike the store's own
    sink, does not check again)."""
    import pyarrow as pa

    check_value_sizes(rt, block.columns)
    schema = record_schema(rt)
    try:
        arrays = [pa.array(block.columns[f.name], type=f.type) for f in list(schema)[:-1]]
    except (TypeError, ValueError, OverflowError) as exc:  # pyarrow: a value beyond int64
        raise RecordRejected(f"{rt.name}: records the store cannot hold: {exc}") from None
    arrays.append(pa.array(block.seconds, type=pa.float64()))
    return pa.Table.from_arrays(arrays, schema=schema)


@dataclass
class ChunkOutput:
    """One processed chunk of a split (``where``: its file, chunk and rows, for errors)."""

    order: int
    chunk: int
    read: int
    records: pa.Table | None
    rejects: list[Reject]
    where: str


def process_split(
    rt: GroupRuntime, split: Split, chunk_rows: int, s3: S3Access | None = None
) -> Iterator[ChunkOutput]:
    """The split's chunks, validated and transformed by the batch pipeline's own code;
    anything but a rejected row raises :class:`TaskError`."""
    with _readable(split, s3 or S3Access()) as path:
        where = split.source
        try:
            chunks = read_source(path, chunk_rows, split.fmt, needed_columns(rt))
            for i, chunk in enumerate(chunks):
                if i % split.parts != split.part:
                    continue
                where = _where(split.source, i, chunk)
                if path != split.source:  # a downloaded object: rejects name its URI
                    _rename(chunk, split.source)
                prepared = prepare_chunk(rt, chunk, records_of)
                table = prepared.data if prepared.accepted else None
                out = ChunkOutput(split.order, i, prepared.read, table, prepared.rejects, where)  # type: ignore[arg-type]
                yield out
        except SourceError as exc:
            raise TaskError(str(exc).replace(path, split.source)) from None
        except TaskError:
            raise
        except Exception as exc:
            raise task_error(where, exc) from None


def _where(source: str, index: int, chunk: Chunk) -> str:
    last = chunk.row_number(chunk.rows - 1) if chunk.rows else chunk.first_row
    for reject in chunk.rejected:
        last = max(last, reject.row)
    return f"{source}: chunk {index} (rows {chunk.first_row}-{last})"


def _rename(chunk: Chunk, source: str) -> None:
    chunk.source = source
    chunk.rejected = [dataclasses.replace(r, source=source) for r in chunk.rejected]


@contextlib.contextmanager
def _readable(split: Split, s3: S3Access) -> Iterator[str]:
    """The split's file as a local path: itself, or its ``s3://`` object downloaded into a
    temporary directory removed when the split is done (a Spark worker lives for many
    tasks)."""
    if not split.source.startswith("s3://"):
        yield split.source
        return
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = split.source[5:].partition("/")
    if not bucket or not key:
        raise TaskError(f"{split.source!r} is not an s3://bucket/key URI")
    with tempfile.TemporaryDirectory(prefix="fsgen-s3-") as tmp:
        path = os.path.join(tmp, "object" + "".join(Path(key).suffixes))
        try:
            s3.client().download_file(bucket, key, path)
        except (BotoCoreError, ClientError) as exc:
            raise TaskError(f"{split.source}: cannot read: {_one_line(str(exc))}") from None
        yield path


def task_error(where: str, exc: BaseException) -> TaskError:
    """``where: Type: message (at file:line)`` -- the innermost frame of the cause outside
    fsgen, which for a featuredefs module that fails to import on a worker is its line."""
    frames = traceback.extract_tb(exc.__traceback__)
    at = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    if frames and frames[-1].filename.startswith(_FSGEN):  # fsgen's own message says it all
        at = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        at = f" (at {exc.filename}:{exc.lineno})"
    return TaskError(f"{where}: {type(exc).__name__}: {_one_line(str(exc))}{at}")


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "(no message)"


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


def task_runtime(root: str | None, module: str) -> GroupRuntime:
    """:func:`load_runtime` in a task: a module that does not import there is a
    :class:`TaskError` naming it."""
    try:
        return load_runtime(root, module)
    except Exception as exc:
        raise task_error(f"{module}: cannot import on a Spark worker", exc) from None


# ------------------------------------------------------------------------------- errors


_TASK_ERROR = re.compile(r"(?:^|\.)TaskError: (.*)$", re.MULTILINE)
_PYTHON_ERROR = re.compile(r"^(\w+(?:\.\w+)*(?:Error|Exception)): (.*)$", re.MULTILINE)


def collect(action: Callable[[], T]) -> T:
    """Run a Spark action; a failed task's :class:`TaskError` comes back as one
    :class:`SparkJobError` line (Spark repeats it; the first is the task's own)."""
    try:
        return action()
    except Exception as exc:
        raise SparkJobError(job_error(exc)) from None


def job_error(exc: BaseException) -> str:
    """The one line to show for a failed Spark action."""
    text = str(exc)
    found = _TASK_ERROR.search(text)
    if found:
        return found.group(1).strip()
    python = [m for m in _PYTHON_ERROR.finditer(text) if "py4j" not in m.group(1).lower()]
    if python:  # a Python worker's own failure (e.g. it crashed): its last line
        return f"a Spark task failed: {python[0].group(1)}: {_one_line(python[0].group(2))}"
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    return f"the Spark job failed: {first}"


__all__ = [
    "CHUNK_ROWS",
    "INSTALL",
    "SECONDS",
    "ChunkOutput",
    "S3Access",
    "SparkJobError",
    "SparkUnavailable",
    "Split",
    "TaskError",
    "collect",
    "expand_sources",
    "find_java",
    "load_runtime",
    "plan_splits",
    "process_split",
    "record_schema",
    "records_of",
    "session",
    "splits_rdd",
    "task_error",
    "task_runtime",
]
