"""Batch ingestion: read a source in chunks, validate and transform every record with the
group's :class:`~fsgen.runtime.pipeline.GroupRuntime`, hand accepted records to a writer and
rejected ones to a rejects file.

The core, :func:`ingest_chunks`, takes (runtime, chunks, writer): the in-process ``fsgen
ingest`` path and a generated batch job (which builds its own GroupRuntime literal) both call
it, so there is one ingestion loop. Records go through :func:`fsgen.runtime.bulk.process_block`,
which returns exactly what ``GroupRuntime.process`` returns row by row (a differential test
proves it) -- only faster.

Accounting invariant: ``read == written + rejected`` for every run. A record is rejected for
failed validation, a transformation that raised, or an event time outside years 1..9999
(which no partition path can hold); each rejection is one JSON line: source, row (1 = first
record; for CSV the line after the header), field, reason, and the raw record.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pyarrow as pa

from fsgen.errors import IngestError
from fsgen.runtime.bulk import BlockResult, process_block
from fsgen.runtime.pipeline import _MISSING, GroupRuntime

if TYPE_CHECKING:
    import pandas as pd

MIN_SECONDS = -62135596800.0  # 0001-01-01T00:00:00Z
MAX_SECONDS = 253402300799.0  # 9999-12-31T23:59:59Z
BLOCK_ROWS = 4096


@dataclass
class Chunk:
    """Raw records of one slice of a source, column-wise.

    ``first_row`` is the 1-based row number of the first record; ``rejected`` holds records
    the reader could not even parse (bad JSON lines), already numbered."""

    source: str
    first_row: int
    data: dict[str, list[object]] | pa.Table
    rows: int
    progress: int = 0
    row_numbers: list[int] | None = None
    rejected: list[Reject] = field(default_factory=list)

    @property
    def columns(self) -> dict[str, list[object]]:
        """Python values per column (an Arrow table is converted once, where it is used:
        in the worker process, so only Arrow buffers cross the process boundary)."""
        if not isinstance(self.data, dict):
            self.data = {n: _pylist(self.data.column(n)) for n in self.data.column_names}
        return self.data

    def row_number(self, index: int) -> int:
        if self.row_numbers is not None:
            return self.row_numbers[index]
        return self.first_row + index

    def raw(self, index: int) -> dict[str, object]:
        return {n: v[index] for n, v in self.columns.items() if v[index] is not _MISSING}


def _pylist(column: pa.ChunkedArray) -> list[object]:
    """Python values of a column; null-free strings (every CSV column) go through NumPy,
    which gives the same ``str`` objects faster than Arrow's ``to_pylist``."""
    if column.null_count == 0 and column.type == pa.string():
        return column.to_numpy(zero_copy_only=False).tolist()  # type: ignore[no-any-return]
    return column.to_pylist()  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Reject:
    source: str
    row: int
    field: str
    reason: str
    record: object

    def to_json(self) -> str:
        return json.dumps(
            {
                "source": self.source,
                "row": self.row,
                "field": self.field,
                "reason": self.reason,
                "record": self.record,
            },
            default=str,
            ensure_ascii=False,
            allow_nan=True,
        )


@dataclass
class IngestResult:
    """What one ingestion did. ``read == written + rejected`` always holds."""

    group: str
    source: str
    run_id: str
    read: int = 0
    written: int = 0
    rejected: int = 0
    rejects_path: Path | None = None
    samples: list[Reject] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.rejected == 0

    def summary(self) -> str:
        text = (
            f"{self.group}: read {self.read:,}, written {self.written:,}, "
            f"rejected {self.rejected:,}"
        )
        if self.rejected and self.rejects_path is not None:
            text += f" (see {self.rejects_path})"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "group": self.group,
            "source": self.source,
            "run_id": self.run_id,
            "read": self.read,
            "written": self.written,
            "rejected": self.rejected,
            "rejects_path": str(self.rejects_path) if self.rejects_path else None,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class Processed:
    """A chunk after validation and transformation, ready for the writer.

    ``table`` holds the accepted records (stored columns, Arrow types of the offline store),
    ``seconds`` their event times, ``online`` the indexes of the rows the online store must
    apply (see :func:`fsgen.store.online.latest_rows`), ``rejects`` the rejected records."""

    table: pa.Table
    seconds: np.ndarray
    online: np.ndarray
    rejects: list[Reject]
    read: int
    progress: int = 0


class RecordWriter(Protocol):
    """Where accepted records go: one call per chunk, all-or-nothing."""

    def write(self, rt: GroupRuntime, processed: Processed) -> None: ...


class RejectSink:
    """Appends rejections to a JSON-lines file (created on the first rejection) and keeps the
    first few as samples."""

    def __init__(self, path: Path | None, keep: int = 20) -> None:
        self.path = path
        self.keep = keep
        self.samples: list[Reject] = []
        self.kept: list[Reject] | None = None
        self.count = 0
        self._fh: io.TextIOWrapper | None = None

    def add(self, reject: Reject) -> None:
        self.count += 1
        if self.kept is not None:
            self.kept.append(reject)
        if len(self.samples) < self.keep:
            self.samples.append(reject)
        if self.path is not None:
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = self.path.open("w", encoding="utf-8")  # type: ignore[assignment]
            assert self._fh is not None
            self._fh.write(reject.to_json() + "\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


# ------------------------------------------------------------------------------- the loop


def ingest_chunks(
    rt: GroupRuntime,
    chunks: Iterable[Chunk],
    writer: RecordWriter,
    rejects: RejectSink,
    result: IngestResult,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 0,
    close_fds: Sequence[int] = (),
) -> IngestResult:
    """Process and write every chunk, in source order; count into ``result``.

    ``workers > 0`` validates and transforms chunks in that many forked processes (the
    runtime and its functions are inherited, never pickled) while this process writes; the
    results are written in source order, so the outcome is the same as ``workers=0``.
    ``close_fds`` are closed in the workers (the store's lock file: a worker outliving a
    killed writer must not keep its lock)."""
    for processed in _processed(rt, chunks, workers, tuple(close_fds)):
        for reject in processed.rejects:
            rejects.add(reject)
        if processed.table.num_rows:
            writer.write(rt, processed)
        result.read += processed.read
        result.written += processed.table.num_rows
        if progress is not None:
            progress(processed.read, processed.progress)
    result.rejected = rejects.count
    result.samples = list(rejects.samples)
    return result


def _processed(
    rt: GroupRuntime, chunks: Iterable[Chunk], workers: int, close_fds: tuple[int, ...]
) -> Iterator[Processed]:
    if workers <= 0:
        for chunk in chunks:
            yield process_to_table(rt, chunk)
        return
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_worker_init, initargs=(rt, close_fds)
    ) as pool:
        pending: deque[Future[Processed]] = deque()
        for chunk in chunks:
            pending.append(pool.submit(_worker_process, chunk))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


_WORKER_RUNTIME: list[GroupRuntime] = []


def _worker_init(rt: GroupRuntime, close_fds: tuple[int, ...]) -> None:
    import os

    for fd in close_fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    _WORKER_RUNTIME[:] = [rt]


def _worker_process(chunk: Chunk) -> Processed:
    return process_to_table(_WORKER_RUNTIME[0], chunk)


def process_to_table(rt: GroupRuntime, chunk: Chunk) -> Processed:
    """Validate, transform and lay out one chunk (pure: no store access)."""
    from fsgen.store.offline import records_table
    from fsgen.store.online import latest_rows

    sink = RejectSink(None, keep=0)
    sink.kept = list(chunk.rejected)
    block = process_chunk(rt, chunk, sink)
    table = records_table(rt, block.columns)
    seconds = np.asarray(block.seconds, dtype="float64")
    return Processed(
        table,
        seconds,
        latest_rows(rt, table, seconds),
        sink.kept,
        chunk.rows + len(chunk.rejected),
        chunk.progress,
    )


def process_chunk(rt: GroupRuntime, chunk: Chunk, rejects: RejectSink) -> BlockResult:
    """Validate and transform a chunk block by block; rejections go to ``rejects``."""
    columns = chunk.columns
    out = BlockResult({c[0]: [] for c in rt.columns}, [], [], [])
    for start in range(0, chunk.rows, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, chunk.rows)
        cols = (
            {n: v[start:stop] for n, v in columns.items()}
            if (start or stop < chunk.rows)
            else columns
        )
        block = process_block(rt, cols, stop - start)
        for i, err in block.errors:
            rejects.add(
                Reject(
                    chunk.source,
                    chunk.row_number(start + i),
                    err.field,
                    err.message,
                    chunk.raw(start + i),
                )
            )
        bad = _outside_years(block.seconds)
        if bad:
            for j in bad:
                i = block.rows[j]
                rejects.add(
                    Reject(
                        chunk.source,
                        chunk.row_number(start + i),
                        rt.event_time,
                        "event time outside years 1..9999",
                        chunk.raw(start + i),
                    )
                )
            block = _drop(block, set(bad))
        for name, values in block.columns.items():
            out.columns[name].extend(values)
        out.rows.extend(start + i for i in block.rows)
        out.seconds.extend(block.seconds)
    return out


def _outside_years(seconds: list[float]) -> list[int]:
    """Positions of event times outside years 1..9999 (NaN included)."""
    secs = np.asarray(seconds, dtype="float64")
    return np.flatnonzero(~((secs >= MIN_SECONDS) & (secs <= MAX_SECONDS))).tolist()  # type: ignore[no-any-return]


def _drop(block: BlockResult, positions: set[int]) -> BlockResult:
    keep = [j for j in range(len(block.rows)) if j not in positions]
    return BlockResult(
        {n: [v[j] for j in keep] for n, v in block.columns.items()},
        [block.rows[j] for j in keep],
        [block.seconds[j] for j in keep],
    )


# ------------------------------------------------------------------------------- sources


def read_source(
    source: object, chunk_rows: int = 100_000, fmt: str | None = None
) -> Iterator[Chunk]:
    """Chunks of a CSV, Parquet or JSON-lines file (by extension or ``fmt``), or of a pandas
    DataFrame. CSV values arrive as strings, exactly as a CSV reader gives them."""
    if not isinstance(source, str | Path):
        return _read_frame(source, chunk_rows)
    path = Path(source)
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    kind = fmt or _format_of(path)
    if kind == "csv":
        return _read_csv(path, chunk_rows)
    if kind == "parquet":
        return _read_parquet(path, chunk_rows)
    if kind == "jsonl":
        return _read_jsonl(path, chunk_rows)
    raise IngestError(f"{path}: unknown format {kind!r} (csv, parquet or jsonl)")


def _format_of(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if ".csv" in suffixes or ".tsv" in suffixes:
        return "csv"
    if ".parquet" in suffixes or ".pq" in suffixes:
        return "parquet"
    if ".jsonl" in suffixes or ".ndjson" in suffixes or ".json" in suffixes:
        return "jsonl"
    raise IngestError(f"{path}: cannot tell the format from the name; use .csv, .parquet or .jsonl")


def _read_csv(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    with path.open(newline="", encoding="utf-8-sig") as fh:
        header = next(csv.reader(fh), None)
    if not header:
        return
    if len(set(header)) != len(header):
        raise IngestError(f"{path}: duplicate column names in the header")
    stream = pa.input_stream(str(path))
    try:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(block_size=8 << 20, use_threads=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[],
            ),
        )
    except pa.ArrowInvalid as exc:
        raise IngestError(f"{path}: {exc}") from None
    row = 1
    pending: list[pa.RecordBatch] = []
    size = 0
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except pa.ArrowInvalid as exc:
            raise IngestError(f"{path}: near row {row + size}: {exc}") from None
        pending.append(batch)
        size += batch.num_rows
        while size >= chunk_rows:
            table = pa.Table.from_batches(pending)
            yield _chunk_of(str(path), row, table.slice(0, chunk_rows), stream.tell())
            row += chunk_rows
            rest = table.slice(chunk_rows)
            pending, size = rest.to_batches(), rest.num_rows
    if size:
        yield _chunk_of(str(path), row, pa.Table.from_batches(pending), stream.tell())


def _chunk_of(
    source: str, first_row: int, table: pa.Table | pa.RecordBatch, position: int
) -> Chunk:
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    return Chunk(source, first_row, table, table.num_rows, position)


def _read_parquet(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise IngestError(f"{path}: not a readable Parquet file: {exc}") from None
    row = 1
    done = 0
    total = max(pf.metadata.num_rows, 1)
    size = path.stat().st_size
    for batch in pf.iter_batches(batch_size=chunk_rows):
        done += batch.num_rows
        yield _chunk_of(str(path), row, batch, size * done // total)
        row += batch.num_rows


def _read_jsonl(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    loads = json.loads
    rows: list[dict[str, object]] = []
    numbers: list[int] = []
    rejected: list[Reject] = []
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            text = line.strip()
            if not text:
                continue
            try:
                value = loads(text)
            except ValueError as exc:
                raw = text.decode("utf-8", errors="replace")
                rejected.append(Reject(str(path), number, "<record>", f"invalid JSON: {exc}", raw))
            else:
                if isinstance(value, dict):
                    rows.append(value)
                    numbers.append(number)
                else:
                    rejected.append(
                        Reject(
                            str(path),
                            number,
                            "<record>",
                            f"expected a JSON object with fields, got {type(value).__name__}",
                            value,
                        )
                    )
            if len(rows) + len(rejected) >= chunk_rows:
                yield _rows_chunk(str(path), rows, numbers, rejected, fh.tell())
                rows, numbers, rejected = [], [], []
        if rows or rejected:
            yield _rows_chunk(str(path), rows, numbers, rejected, fh.tell())


def _rows_chunk(
    source: str,
    rows: list[dict[str, object]],
    numbers: list[int],
    rejected: list[Reject],
    position: int,
) -> Chunk:
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
        row_numbers=numbers,
        rejected=rejected,
    )


def _read_frame(frame: object, chunk_rows: int) -> Iterator[Chunk]:
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise IngestError(
            f"cannot ingest a {type(frame).__name__}: give a path to a CSV, "
            "Parquet or JSON-lines file, or a pandas DataFrame"
        )
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        raise IngestError("the DataFrame has duplicate column names")
    for start in range(0, len(frame), chunk_rows):
        part = frame.iloc[start : start + chunk_rows]
        columns = {name: _plain(part[col]) for name, col in zip(names, frame.columns, strict=True)}
        yield Chunk("<DataFrame>", start + 1, columns, len(part), start + len(part))


def _plain(series: pd.Series) -> list[object]:
    """Python values of a column; pandas' missing markers (NA, NaT) become None."""
    values = series.tolist()
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
    "Chunk",
    "IngestResult",
    "Processed",
    "RecordWriter",
    "Reject",
    "RejectSink",
    "ingest_chunks",
    "process_chunk",
    "read_source",
]
