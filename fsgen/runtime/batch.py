"""Batch ingestion as generated batch jobs run it: read raw rows, validate and transform each
with the group's :class:`GroupRuntime`, hand stored records to a writer, and reject the rest
with their row number, field and reason (DESIGN semantics 6).

Standard library only; pyarrow (Parquet) and boto3 (s3://) are imported when a source needs
them. A writer is any object with ``put_records(group, records)``: ``fsgen.store.LocalStore``,
:class:`fsgen.runtime.writers.PutRecordWriter`, or :class:`JsonlWriter`.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from fsgen.runtime.pipeline import GroupRuntime, RecordError, TransformError

Record = dict[str, object]
FORMATS = ("csv", "parquet", "jsonl")


class Writer(Protocol):
    """Where stored records go; must write all of ``records`` or raise."""

    def put_records(self, group: str, records: list[Record]) -> object: ...


@dataclass(frozen=True)
class Reject:
    """A raw record that was not written: where it came from and why."""

    source: str
    row: int
    field: str
    message: str
    record: Mapping[str, object] | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "row": self.row,
            "field": self.field,
            "reason": self.message,
            "record": _jsonable(self.record),
        }

    def __str__(self) -> str:
        return f"{self.source}: row {self.row}: {self.field}: {self.message}"


@dataclass
class BatchResult:
    group: str
    source: str
    read: int = 0
    valid: int = 0
    written: int = 0
    rejects: list[Reject] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.rejects)

    @property
    def ok(self) -> bool:
        return not self.rejects

    def to_json(self) -> dict[str, object]:
        return {
            "group": self.group,
            "source": self.source,
            "read": self.read,
            "valid": self.valid,
            "written": self.written,
            "rejected": self.rejected,
        }


@dataclass(frozen=True)
class RawRow:
    """One row of a source: its 1-based record number and data, or why it is unreadable."""

    row: int
    data: Mapping[str, object] | None
    error: str | None = None


# --------------------------------------------------------------------------- reading


def infer_format(source: str | os.PathLike[str]) -> str:
    lower = str(source).lower()
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    return "csv"


def read_rows(source: str | os.PathLike[str], format: str | None = None) -> Iterator[RawRow]:
    """Rows of a CSV, Parquet or JSON-lines file, local or ``s3://bucket/key``.

    Row numbers count records from 1 (for CSV the header is not a record, so row N is on
    line N+1).
    """
    fmt = format or infer_format(source)
    if fmt not in FORMATS:
        raise ValueError(f"unknown source format {fmt!r}; use one of {', '.join(FORMATS)}")
    data = _open_bytes(str(source))
    if fmt == "csv":
        yield from _csv_rows(data)
    elif fmt == "jsonl":
        yield from _jsonl_rows(data)
    else:
        yield from _parquet_rows(data)


def _open_bytes(source: str) -> BinaryIO:
    if source.startswith("s3://"):
        import boto3  # only when reading from S3

        bucket, _, key = source[5:].partition("/")
        if not bucket or not key:
            raise ValueError(f"{source!r} is not an s3://bucket/key URI")
        body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        return io.BytesIO(body)
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"source {source!r} does not exist or is not a file")
    return path.open("rb")


def _csv_rows(data: BinaryIO) -> Iterator[RawRow]:
    with io.TextIOWrapper(data, encoding="utf-8-sig", newline="") as text:
        reader = csv.DictReader(text)
        width = len(reader.fieldnames or [])
        for number, row in enumerate(reader, start=1):
            extra = row.pop(None, None)  # type: ignore[call-overload]
            if extra:
                yield RawRow(
                    number,
                    row,
                    f"row has {width + len(extra)} values but the header has {width} columns",
                )
            elif None in row.values():
                present = sum(v is not None for v in row.values())
                yield RawRow(
                    number, row, f"row has {present} values but the header has {width} columns"
                )
            else:
                yield RawRow(number, row)


def _jsonl_rows(data: BinaryIO) -> Iterator[RawRow]:
    number = 0
    with data:
        for line in data:
            if not line.strip():
                continue
            number += 1
            try:
                value = json.loads(line)
            except ValueError as exc:
                yield RawRow(number, None, f"invalid JSON: {exc}")
                continue
            if isinstance(value, dict):
                yield RawRow(number, value)
            else:
                yield RawRow(number, None, f"expected a JSON object, got {type(value).__name__}")


def _parquet_rows(data: BinaryIO) -> Iterator[RawRow]:
    import pyarrow.parquet as pq  # only for Parquet sources

    with data:
        table = pq.read_table(data)
    number = 0
    for batch in table.to_batches():
        for row in batch.to_pylist():
            number += 1
            yield RawRow(number, {k: _native(v) for k, v in row.items()})


def _native(value: object) -> object:
    """Parquet timestamps/dates as the ISO-8601 text an event-time field expects."""
    if isinstance(value, datetime):
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        text = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return text.replace(".000Z", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


# --------------------------------------------------------------------------- processing


def process_rows(
    runtime: GroupRuntime,
    rows: Iterable[RawRow | Mapping[str, object]],
    *,
    source: str = "<rows>",
) -> tuple[list[Record], list[Reject]]:
    """Validate and transform rows; every row ends up in exactly one of the two lists."""
    records: list[Record] = []
    rejects: list[Reject] = []
    for number, row in enumerate(rows, start=1):
        raw = row if isinstance(row, RawRow) else RawRow(number, row)
        if raw.error is not None or raw.data is None:
            rejects.append(Reject(source, raw.row, "<record>", raw.error or "unreadable", raw.data))
            continue
        try:
            records.append(runtime.process(raw.data))
        except (RecordError, TransformError) as exc:
            rejects.append(Reject(source, raw.row, exc.field, exc.message, raw.data))
    return records, rejects


def run(
    runtime: GroupRuntime,
    source: str | os.PathLike[str],
    writer: Writer | None,
    *,
    rejects: str | os.PathLike[str] | list[Reject] | None = None,
    format: str | None = None,
    batch_size: int = 5000,
) -> BatchResult:
    """Ingest one source: write good records in batches of ``batch_size``, collect rejects.

    ``writer=None`` validates and transforms only (a dry run). ``rejects`` is a JSON-lines path
    (written atomically, only when there are rejects) or a list to extend.
    """
    result = BatchResult(group=runtime.name, source=str(source))
    chunk: list[RawRow] = []

    def flush() -> None:
        records, bad = process_rows(runtime, chunk, source=str(source))
        if records and writer is not None:
            writer.put_records(runtime.name, records)
        result.valid += len(records)
        result.written += len(records) if writer is not None else 0
        result.rejects.extend(bad)
        chunk.clear()

    for raw in read_rows(source, format):
        result.read += 1
        chunk.append(raw)
        if len(chunk) >= batch_size:
            flush()
    flush()
    if isinstance(rejects, list):
        rejects.extend(result.rejects)
    elif rejects is not None and result.rejects:
        write_rejects(rejects, result.rejects)
    return result


def write_rejects(path: str | os.PathLike[str], rejects: Sequence[Reject]) -> None:
    """Rejects as JSON lines, written to a temp file and renamed (never half-written)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            for reject in rejects:
                fh.write(json.dumps(reject.to_json(), sort_keys=True) + "\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class JsonlWriter:
    """Appends stored records as JSON lines to a file (``--output``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("", encoding="utf-8")

    def put_records(self, group: str, records: list[Record]) -> int:
        with self.path.open("a", encoding="utf-8", newline="\n") as fh:
            for record in records:
                fh.write(json.dumps(record, sort_keys=True) + "\n")
        return len(records)


def project_writer(group: str, project: str | None = None) -> Writer:
    """The configured backend's writer for the project at or above ``project`` (or the
    working directory): the local store, or PutRecord against SageMaker for ``aws``."""
    from fsgen.config import load_config
    from fsgen.loader import load

    config = load_config(Path(project) if project else None)
    backend = os.environ.get("FSGEN_BACKEND") or config.backend
    spec = load(config.root)
    if backend == "aws":
        from fsgen.backends.aws import clients
        from fsgen.bind import group_runtime
        from fsgen.runtime.writers import PutRecordWriter

        aws = config.aws
        _, runtime_client = clients(aws.region, aws.endpoint_url, aws.runtime_endpoint_url)
        return PutRecordWriter({group: group_runtime(spec.group(group))}, client=runtime_client)
    from fsgen.store import LocalStore  # type: ignore[import-not-found,unused-ignore]

    store: Writer = LocalStore.open(config, spec)
    return store


# --------------------------------------------------------------------------- command line


def main(
    runtime: GroupRuntime,
    default_sources: Sequence[str],
    argv: Sequence[str] | None = None,
    writer_factory: Callable[[str, str | None], Writer] = project_writer,
) -> int:
    """``python -m <generated batch job> [SOURCE] [--rejects PATH] ...``; exit 1 on rejects."""
    parser = argparse.ArgumentParser(
        prog=f"batch job of {runtime.name}",
        description=f"Validate, transform and write raw records of feature group {runtime.name}.",
    )
    parser.add_argument(
        "source",
        nargs="?",
        default=None,
        help="CSV, Parquet or JSON-lines file, local or s3:// "
        f"(default: {', '.join(default_sources) or 'none'})",
    )
    parser.add_argument("--format", choices=FORMATS, default=None)
    parser.add_argument("--rejects", default=None, help="write rejected rows here (JSON lines)")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--dry-run", action="store_true", help="validate and transform only")
    out.add_argument("--output", default=None, help="write stored records as JSON lines")
    parser.add_argument("--project", default=None, help="project directory for the writer")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    source = args.source or (default_sources[0] if default_sources else None)
    if source is None:
        parser.error("no SOURCE given and the group declares no batch source")
    writer: Writer | None
    try:
        if args.dry_run:
            writer = None
        elif args.output:
            writer = JsonlWriter(args.output)
        else:
            writer = writer_factory(runtime.name, args.project)
        started = time.perf_counter()
        result = run(runtime, source, writer, rejects=args.rejects, format=args.format)
        _audit_local(writer, result, args.rejects, time.perf_counter() - started)
    except Exception as exc:  # a command line reports; FSGEN_DEBUG=1 shows the traceback
        if os.environ.get("FSGEN_DEBUG"):
            raise
        print(
            f"error: {type(exc).__name__}: {exc}"
            if not isinstance(exc, OSError | ValueError)
            else f"error: {exc}",
            file=sys.stderr,
        )
        return 1
    for reject in result.rejects[:20]:
        print(f"rejected: {reject}", file=sys.stderr)
    if result.rejected > 20:
        print(f"... and {result.rejected - 20} more rejects", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_json(), sort_keys=True))
    else:
        print(
            f"{runtime.name}: read {result.read}, valid {result.valid}, written "
            f"{result.written}, rejected {result.rejected}",
            file=sys.stderr,
        )
    return 0 if result.ok else 1


def _audit_local(
    writer: Writer | None, result: BatchResult, rejects: str | None, seconds: float
) -> None:
    """A run that wrote into the local store joins its audit trail (``fsgen history``)."""
    root = getattr(writer, "root", None)
    if root is None or not type(writer).__module__.startswith("fsgen.store"):
        return  # a dry run, --output or PutRecord: there is no local audit trail to write
    from fsgen.audit import record_batch_job  # type: ignore[import-not-found,unused-ignore]

    record_batch_job(Path(root), result, rejects if result.rejects else None, seconds)


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)
