"""Readers of raw records: a CSV, Parquet or JSON-lines file (local or ``s3://``) or a pandas
DataFrame, in :class:`Chunk` s of column lists, each row with its 1-based record number.

A reader never aborts a run for one bad row: a CSV row with too few or too many values, a JSON
line that is not an object, a CSV value that is not UTF-8 become rejects with their row
number, in the chunk that holds them. What makes a whole file unreadable (no such file, an
unknown format, duplicate column names, a compressed file named like a plain one, a Parquet
footer that does not parse) is one :class:`SourceError` raised before the first chunk, so
before anything is written. ``read == written + rejected`` holds for every source.

pyarrow is imported when a CSV or Parquet source is read, boto3 for ``s3://``, pandas for a
DataFrame; nothing from outside :mod:`fsgen.runtime`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsgen.runtime.chunks import SHOWN as _SHOWN
from fsgen.runtime.chunks import Chunk, Needed, Reject, SourceError, repeated_columns
from fsgen.runtime.csvreader import MAX_ROW_BYTES, Utf8Guard, read_csv
from fsgen.runtime.pipeline import _MISSING
from fsgen.runtime.streamrecords import DECODER, RepeatedKey

if TYPE_CHECKING:
    pass

FORMATS = ("csv", "parquet", "jsonl")
_GZIP = b"\x1f\x8b"
#: The longest JSON line read (bytes): a longer one is a reject, read past in blocks, never
#: held in memory whole. SageMaker's largest record is far smaller (PutRecord takes 350 KB).
MAX_LINE_BYTES = 16 * 1024 * 1024
"""characters of an unparsable row's text kept in its reject"""

# ------------------------------------------------------------------------------- entry


DATAFRAME_SOURCE = "<DataFrame>"
"""the source name of an in-memory DataFrame (a file's is its path as given)"""


def source_name(source: object) -> str:
    return str(source) if isinstance(source, str | os.PathLike) else DATAFRAME_SOURCE


def format_of(source: str | os.PathLike[str]) -> str:
    """csv, parquet or jsonl from the file name."""
    suffixes = [s.lower() for s in Path(str(source)).suffixes]
    if ".csv" in suffixes or ".tsv" in suffixes:
        return "csv"
    if ".parquet" in suffixes or ".pq" in suffixes:
        return "parquet"
    if ".jsonl" in suffixes or ".ndjson" in suffixes or ".json" in suffixes:
        return "jsonl"
    raise SourceError(
        f"{source}: cannot tell the format from the name (.csv, .parquet or .jsonl); "
        "give it with --format csv|parquet|jsonl (the Python API: fmt=)"
    )


def read_source(
    source: object, chunk_rows: int = 100_000, fmt: str | None = None, needed: Needed | None = None
) -> Iterator[Chunk]:
    """Chunks of a CSV, Parquet or JSON-lines file (local path or ``s3://bucket/key``; the
    format by extension or ``fmt``) or of a pandas DataFrame. CSV values arrive as strings,
    exactly as written. Raises SourceError at once for an unreadable source, and for a CSV
    header, Parquet schema or DataFrame that lacks a column ``needed`` names. JSON lines have
    no header: there a missing field is each record's own reject."""
    if not isinstance(source, str | os.PathLike):
        return _read_frame(source, chunk_rows, needed)
    name = str(source)
    kind = fmt or format_of(name)
    if kind not in FORMATS:
        raise SourceError(f"{name}: unknown format {kind!r} (csv, parquet or jsonl)")
    path = _local_path(name)
    if not path.is_file():
        raise SourceError(f"{name}: no such file")
    if kind != "parquet" and _starts_with(path, _GZIP):
        raise SourceError(
            f"{name}: the file is gzip-compressed; decompress it first (CSV and JSON lines "
            "are read as plain text)"
        )
    if kind == "csv":
        return read_csv(path, name, chunk_rows, needed)
    if kind == "parquet":
        return _read_parquet(path, name, chunk_rows, needed)
    return _read_jsonl(path, name, chunk_rows)


def _starts_with(path: Path, magic: bytes) -> bool:
    with path.open("rb") as fh:
        return fh.read(len(magic)) == magic


def _local_path(source: str) -> Path:
    """The file itself, or an S3 object downloaded to a temporary file (deleted when the
    process exits; S3 sources are read whole before the first chunk)."""
    if not source.startswith("s3://"):
        return Path(source)
    bucket, _, key = source[5:].partition("/")
    if not bucket or not key:
        raise SourceError(f"{source!r} is not an s3://bucket/key URI")
    import atexit

    import boto3  # only when reading from S3

    fd, tmp = tempfile.mkstemp(prefix="fsgen-s3-", suffix=Path(key).suffix)
    os.close(fd)
    atexit.register(lambda: Path(tmp).unlink(missing_ok=True))
    boto3.client("s3").download_file(bucket, key, tmp)
    return Path(tmp)


# ------------------------------------------------------------------------------- Parquet


def _read_parquet(
    path: Path, name: str, chunk_rows: int, needed: Needed | None = None
) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        names = pf.schema_arrow.names
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:  # a name not UTF-8
        raise SourceError(f"{name}: not a readable Parquet file: {exc}") from None
    if repeated := repeated_columns(list(names)):
        raise SourceError(f"{name}: duplicate column names in the Parquet schema: {repeated}")
    if needed is not None:
        needed.check(name, "schema", list(names))
    bad = _check_parquet(pf, name)
    keep = needed.instants if needed is not None else ()
    return _parquet_chunks(pf, name, chunk_rows, path.stat().st_size, bad, keep)


def _check_parquet(pf: Any, name: str) -> dict[int, tuple[str, str]]:
    """Decode every page and check every value before the first chunk is written: a corrupt
    page anywhere in the file is one clear error up front, never a run aborted after earlier
    chunks were committed. Reads the file once more, a batch at a time (bounded memory).

    Returns the rows holding a string that is not UTF-8 (row -> (column, reason)): those are
    rejects, the other rows are read."""
    import pyarrow as pa

    row = 1
    bad: dict[int, tuple[str, str]] = {}
    try:
        for batch in pf.iter_batches(batch_size=65_536):
            try:
                batch.validate(full=True)
            except pa.ArrowInvalid as exc:
                found = _not_utf8(batch, row)
                if not found:
                    raise SourceError(
                        f"{name}: invalid Parquet data in rows {row}-"
                        f"{row + batch.num_rows - 1}: {exc}; nothing was written"
                    ) from None
                for r, problem in found.items():
                    bad.setdefault(r, problem)
            row += batch.num_rows
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise SourceError(
            f"{name}: unreadable Parquet data after row {row - 1}: {exc}; nothing was written"
        ) from None
    return bad


def _not_utf8(batch: Any, first_row: int) -> dict[int, tuple[str, str]]:
    """Rows of ``batch`` whose (top-level) string value is not UTF-8: row -> (column,
    reason); empty when what fails validation is something else (then the file is
    refused)."""
    import pyarrow as pa

    found: dict[int, tuple[str, str]] = {}
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if column.type not in (pa.string(), pa.large_string()):
            continue
        raw = column.view(pa.binary() if column.type == pa.string() else pa.large_binary())
        try:
            raw.cast(column.type)
            continue
        except pa.ArrowInvalid:
            pass
        for j, value in enumerate(raw.to_pylist()):
            if value is None:
                continue
            try:
                value.decode("utf-8")
            except UnicodeDecodeError as exc:
                found.setdefault(first_row + j, (name, f"not UTF-8 text: {exc}"))
    try:  # anything else wrong with the batch is a corrupt file
        pa.RecordBatch.from_arrays(
            [
                c.view(pa.binary() if c.type == pa.string() else pa.large_binary())
                if c.type in (pa.string(), pa.large_string())
                else c
                for c in batch.columns
            ],
            names=batch.schema.names,
        ).validate(full=True)
    except pa.ArrowInvalid:
        return {}
    return found


def _parquet_chunks(
    pf: Any,
    name: str,
    chunk_rows: int,
    size: int,
    bad: dict[int, tuple[str, str]],
    keep: tuple[str, ...] = (),
) -> Iterator[Chunk]:
    import pyarrow as pa

    row = 1
    done = 0
    total = max(pf.metadata.num_rows, 1)
    batches = pf.iter_batches(batch_size=chunk_rows)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
            raise SourceError(
                f"{name}: unreadable Parquet data after row {row - 1}: {exc}"
            ) from None
        done += batch.num_rows
        table = times_as_text(pa.Table.from_batches([batch]), keep)
        mine = sorted(r for r in bad if row <= r < row + table.num_rows) if bad else []
        if not mine:
            yield Chunk(name, row, table, table.num_rows, size * done // total)
        else:
            yield _without_rows(name, table, row, mine, bad, size * done // total)
        row += batch.num_rows


def _time_text(column: Any) -> Any:
    """An Arrow timestamp or date column as ISO-8601 text: a timestamp in UTC with a ``Z``
    (one without a zone is read as UTC, like ISO text without an offset), in milliseconds
    when that loses nothing (else its own precision, which event-time parsing refuses); a
    date as ``YYYY-MM-DD``. Other columns are returned as they are."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_date(kind):
        return pc.strftime(column, format="%Y-%m-%d")
    if not pa.types.is_timestamp(kind):
        return column
    for unit in ("s", "ms", "us"):
        try:
            column = column.cast(pa.timestamp(unit, kind.tz and "UTC"), safe=True)
            break
        except pa.ArrowInvalid:
            continue
    return pc.strftime(column, format="%Y-%m-%dT%H:%M:%SZ")


def times_as_text(table: Any, keep: tuple[str, ...] = ()) -> Any:
    """``table`` with its timestamp and date columns as ISO-8601 text (:func:`_time_text`):
    a String feature fed by a date column gets the date. The columns of ``keep`` stay
    timestamps (the event time, :attr:`Needed.instants`, which the pipeline reads)."""
    import pyarrow as pa

    if not any(pa.types.is_timestamp(t) or pa.types.is_date(t) for t in table.schema.types):
        return table
    return pa.Table.from_arrays(
        [
            c if n in keep else _time_text(c)
            for n, c in zip(table.column_names, table.columns, strict=True)
        ],
        names=table.column_names,
    )


def _without_rows(
    name: str,
    table: Any,
    first: int,
    rows: list[int],
    bad: dict[int, tuple[str, str]],
    progress: int,
) -> Chunk:
    """The chunk of ``table`` (rows from ``first``) with ``rows`` as rejects."""
    import pyarrow as pa

    skip = {r - first for r in rows}
    keep = [j for j in range(table.num_rows) if j not in skip]
    shown = pa.Table.from_arrays(
        [c.cast(pa.binary()) if c.type == pa.string() else c for c in table.columns],
        names=table.column_names,
    )
    rejected = []
    for r in rows:
        record = {
            k: v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v
            for k, v in shown.slice(r - first, 1).to_pylist()[0].items()
        }
        rejected.append(Reject(name, r, bad[r][0], bad[r][1], record))
    kept = table.take(pa.array(keep, pa.int64()))
    numbers = [first + j for j in keep]
    start = numbers[0] if numbers else rows[0]
    return Chunk(name, start, kept, kept.num_rows, progress, numbers, rejected)


# ------------------------------------------------------------------------------- JSON lines


def _read_jsonl(path: Path, name: str, chunk_rows: int) -> Iterator[Chunk]:
    decode = DECODER.decode
    detect = json.detect_encoding
    rows: list[dict[str, object]] = []
    numbers: list[int] = []
    rejected: list[Reject] = []
    number = 0
    with path.open("rb") as fh:
        while line := fh.readline(MAX_LINE_BYTES + 1):
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                number += 1
                size = len(line) + _skip_line(fh)
                rejected.append(
                    Reject(
                        name,
                        number,
                        "<record>",
                        f"line of {size} bytes is longer than the limit of {MAX_LINE_BYTES}",
                        line[:_SHOWN].decode("utf-8", errors="replace"),
                    )
                )
                if len(rows) + len(rejected) >= chunk_rows:
                    yield rows_chunk(name, rows, numbers, rejected, fh.tell())
                    rows, numbers, rejected = [], [], []
                continue
            text = line.strip()
            if not text:
                continue
            number += 1
            try:
                value = decode(text.decode(detect(text), "surrogatepass"))  # json.loads'
            except RepeatedKey as exc:
                raw = text[:_SHOWN].decode("utf-8", errors="replace")
                rejected.append(Reject(name, number, "<record>", str(exc), raw))
            except (ValueError, RecursionError) as exc:
                raw = text[:_SHOWN].decode("utf-8", errors="replace")
                rejected.append(Reject(name, number, "<record>", f"invalid JSON: {exc}", raw))
            else:
                if isinstance(value, dict):
                    rows.append(value)
                    numbers.append(number)
                else:
                    rejected.append(
                        Reject(
                            name,
                            number,
                            "<record>",
                            f"expected a JSON object with fields, got {type(value).__name__}",
                            value,
                        )
                    )
            if len(rows) + len(rejected) >= chunk_rows:
                yield rows_chunk(name, rows, numbers, rejected, fh.tell())
                rows, numbers, rejected = [], [], []
        if rows or rejected:
            yield rows_chunk(name, rows, numbers, rejected, fh.tell())


def _skip_line(fh: Any) -> int:
    """Read past the rest of a line in blocks; returns the bytes skipped."""
    skipped = 0
    while block := fh.readline(1 << 20):
        skipped += len(block)
        if block.endswith(b"\n"):
            break
    return skipped


def rows_chunk(
    source: str,
    rows: list[dict[str, object]],
    numbers: list[int],
    rejected: list[Reject] | None = None,
    position: int = 0,
) -> Chunk:
    """A chunk of row dicts with their record numbers."""
    names: dict[str, None] = {}
    for r in rows:
        names.update(dict.fromkeys(r))
    columns: dict[str, list[object]] = {n: [r.get(n, _MISSING) for r in rows] for n in names}
    return Chunk(
        source,
        numbers[0] if numbers else 1,
        columns,
        len(rows),
        position,
        row_numbers=list(numbers),
        rejected=list(rejected or []),
    )


# ------------------------------------------------------------------------------- DataFrame


def _read_frame(frame: object, chunk_rows: int, needed: Needed | None = None) -> Iterator[Chunk]:
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise SourceError(
            f"cannot ingest a {type(frame).__name__}: give a path to a CSV, "
            "Parquet or JSON-lines file, or a pandas DataFrame"
        )
    names = [str(c) for c in frame.columns]
    if repeated := repeated_columns(names):
        raise SourceError(f"the DataFrame has duplicate column names: {repeated}")
    if needed is not None:
        needed.check(DATAFRAME_SOURCE, "DataFrame", names)
    return _frame_chunks(frame, names, chunk_rows, needed.instants if needed is not None else ())


def _frame_chunks(
    frame: Any, names: list[str], chunk_rows: int, keep: tuple[str, ...] = ()
) -> Iterator[Chunk]:
    for start in range(0, len(frame), chunk_rows):
        part = frame.iloc[start : start + chunk_rows]
        columns = {
            name: _plain(part[col], name in keep)
            for name, col in zip(names, frame.columns, strict=True)
        }
        yield Chunk(DATAFRAME_SOURCE, start + 1, columns, len(part), start + len(part))


def _plain(series: Any, instants: bool = False) -> list[object]:
    """Python values of a column; pandas' missing markers (NA, NaT) become None; a datetime
    column is ISO-8601 text, as a Parquet timestamp column is read (:func:`_time_text`)."""
    if series.dtype.kind == "M" and not instants:
        import pyarrow as pa

        return list(_time_text(pa.Array.from_pandas(series)).to_pylist())
    values: list[object] = series.tolist()
    if series.dtype.kind in "iufb" and not hasattr(series.dtype, "na_value"):
        return values
    return [
        None if (v is not None and not isinstance(v, list | dict | str) and _is_na(v)) else v
        for v in values
    ]


def _is_na(value: object) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


__all__ = [
    "FORMATS",
    "MAX_ROW_BYTES",
    "Chunk",
    "Needed",
    "Reject",
    "SourceError",
    "Utf8Guard",
    "format_of",
    "read_source",
    "rows_chunk",
    "source_name",
]
