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
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsgen.runtime.pipeline import _MISSING

if TYPE_CHECKING:
    import pyarrow as pa

FORMATS = ("csv", "parquet", "jsonl")
_GZIP = b"\x1f\x8b"
_SHOWN = 2000
#: The longest JSON line read (bytes): a longer one is a reject, read past in blocks, never
#: held in memory whole. SageMaker's largest record is far smaller (PutRecord takes 350 KB).
MAX_LINE_BYTES = 16 * 1024 * 1024
"""characters of an unparsable row's text kept in its reject"""


class SourceError(ValueError):
    """The source cannot be read at all (raised before anything of it is written)."""


@dataclass(frozen=True)
class Reject:
    """A raw record that was not written: where it came from and why."""

    source: str
    row: int
    field: str
    reason: str
    record: object = None

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "row": self.row,
            "field": self.field,
            "reason": self.reason,
            "record": _jsonable(self.record),
        }

    def line(self) -> str:
        """The reject as one JSON line (the rejects file's format)."""
        return json.dumps(self.to_json(), ensure_ascii=False, allow_nan=True, sort_keys=True)

    def __str__(self) -> str:
        return f"{self.source}: row {self.row}: {self.field}: {self.reason}"


@dataclass
class Chunk:
    """Raw records of one slice of a source, column-wise.

    ``first_row`` is the record number of the first row; ``row_numbers`` (when rows are not
    consecutive) the number of each; ``rejected`` the rows the reader could not parse, already
    numbered. ``data`` is Arrow until a worker process converts it (so only Arrow buffers
    cross the process boundary)."""

    source: str
    first_row: int
    data: dict[str, list[object]] | pa.Table
    rows: int
    progress: int = 0
    row_numbers: list[int] | None = None
    rejected: list[Reject] = field(default_factory=list)

    @property
    def columns(self) -> dict[str, list[object]]:
        """The raw values, as the reader gave them (text for every CSV column)."""
        if not isinstance(self.data, dict):
            self.data = {n: _pylist(self.data.column(n)) for n in self.data.column_names}
        return self.data

    def typed_columns(self, types: dict[str, str]) -> dict[str, list[object]]:
        """The raw values, except that a text column of a field whose ``types`` entry is
        ``int`` or ``float`` comes parsed when every value is plain numeric text (see
        :func:`_parsed`), with the values ``int()`` / ``float()`` give. What the fast path of
        :mod:`fsgen.runtime.bulk` accepts from these it accepts from :attr:`columns` too,
        with the same results: it only saves making and parsing a string per value. The
        raw (text) columns are not kept: a reject's record is read back from the Arrow data.
        """
        if isinstance(self.data, dict):
            return self.data
        table = self.data
        return {
            n: _parsed(table.column(n), types.get(n)) or _pylist(table.column(n))
            for n in table.column_names
        }

    def row_number(self, index: int) -> int:
        if self.row_numbers is not None:
            return self.row_numbers[index]
        return self.first_row + index

    def event_seconds(self, name: str) -> list[float] | None:
        """Epoch seconds of column ``name`` when every value is a canonical event time
        (see :func:`iso_seconds`), else None."""
        if isinstance(self.data, dict) or name not in self.data.column_names:
            return None
        return iso_seconds(self.data.column(name))

    def raw(self, index: int) -> dict[str, object]:
        if not isinstance(self.data, dict):  # one row: no need to convert every column
            row = self.data.slice(index, 1)
            return {n: _pylist(row.column(n))[0] for n in row.column_names}
        return {n: v[index] for n, v in self.columns.items() if v[index] is not _MISSING}


def _pylist(column: Any) -> list[object]:
    """Python values of a column; null-free int64 and float64 columns go through NumPy,
    which gives the same ``int`` and ``float`` objects (bit for bit) faster than Arrow's
    ``to_pylist`` (for text, ``to_pylist`` is the faster: measured with pyarrow 26)."""
    import pyarrow as pa

    if column.null_count == 0 and column.type in (pa.int64(), pa.float64()):
        return column.to_numpy().tolist()  # type: ignore[no-any-return]
    return column.to_pylist()  # type: ignore[no-any-return]


_CANONICAL_TIME = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(?:\.(?:[1-9][0-9]{2}|0[1-9][0-9]|00[1-9]))?Z$"
)
"""the canonical stored event time: 'YYYY-MM-DDTHH:MM:SS[.mmm]Z', no '.000'"""
_EXACT = 2**53 // 1_000_000
"""seconds below which microseconds are exact in a double (years before 2255)"""


def iso_seconds(column: Any) -> list[float] | None:
    """Epoch seconds of a text column of canonical event times, parsed by Arrow, exactly
    as :func:`fsgen.runtime.bulk._iso_column` computes them; None when a value is not
    canonical, not a real date and time (Arrow's ISO-8601 cast checks the day of the month,
    hour, minute and second), before year 1, or beyond what a double holds exactly in
    microseconds -- the row path then decides."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if column.type != pa.string() or column.null_count or not len(column):
        return None
    if not pc.all(pc.match_substring_regex(column, _CANONICAL_TIME)).as_py():
        return None
    try:
        stamps = pc.cast(pc.utf8_slice_codeunits(column, 0, 19), pa.timestamp("s"))
    except pa.ArrowInvalid:
        return None
    whole = stamps.cast(pa.int64()).to_numpy()
    if whole.min() < _MIN_SECONDS:
        return None
    lengths = pc.utf8_length(column)
    if pc.max(lengths).as_py() == 20:  # no milliseconds (the usual case)
        return whole.astype("float64").tolist()  # type: ignore[no-any-return]
    if np.abs(whole).max() >= _EXACT:
        return None
    millis_text = pc.utf8_slice_codeunits(column, 20, 23)
    millis = pc.cast(pc.if_else(pc.equal(lengths, 24), millis_text, "0"), pa.int64())
    micros = whole * 1_000_000 + millis.to_numpy() * 1000  # exact: below 2**53
    return (micros.astype("float64") / 1_000_000).tolist()  # type: ignore[no-any-return]


_MIN_SECONDS = -62135596800  # 0001-01-01T00:00:00Z


_PLAIN_TEXT = {
    "int": (r"^-?[0-9]+$", "int64"),
    "float": (r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$", "float64"),
}
"""numeric text that Arrow's cast parses exactly as ``int()`` / ``float()`` do (both round
decimal text correctly; Arrow refuses a leading '+' for integers)"""


def _parsed(column: Any, type_name: str | None) -> list[object] | None:
    """A null-free text column of ``int`` or ``float`` text parsed by Arrow (None when the
    field is of another type, or a value is not plain numeric text, or beyond int64)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    plain = _PLAIN_TEXT.get(type_name or "")
    if plain is None or column.type != pa.string() or column.null_count or not len(column):
        return None
    pattern, target = plain
    if not pc.all(pc.match_substring_regex(column, pattern)).as_py():
        return None
    try:
        return pc.cast(column, target).to_numpy().tolist()  # type: ignore[no-any-return]
    except pa.ArrowInvalid:  # an integer beyond int64
        return None


# ------------------------------------------------------------------------------- entry


def source_name(source: object) -> str:
    return str(source) if isinstance(source, str | os.PathLike) else "<DataFrame>"


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
        f"{source}: cannot tell the format from the name; use .csv, .parquet or .jsonl "
        "(or give the format)"
    )


def read_source(
    source: object, chunk_rows: int = 100_000, fmt: str | None = None
) -> Iterator[Chunk]:
    """Chunks of a CSV, Parquet or JSON-lines file (local path or ``s3://bucket/key``; the
    format by extension or ``fmt``) or of a pandas DataFrame. CSV values arrive as strings,
    exactly as written. Raises SourceError at once for an unreadable source."""
    if not isinstance(source, str | os.PathLike):
        return _read_frame(source, chunk_rows)
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
        return _read_csv(path, name, chunk_rows)
    if kind == "parquet":
        return _read_parquet(path, name, chunk_rows)
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


# ------------------------------------------------------------------------------- CSV


def _read_csv(path: Path, name: str, chunk_rows: int) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    header = _csv_header(path, name)
    if not header:
        return iter(())
    invalid: list[tuple[int, str, int, int]] = []

    def on_invalid(row: Any) -> str:
        text = row.text
        if text.startswith(_LONG_TEXT):  # a row the guard held back (see Utf8Guard)
            size, start = stream.long_rows[int(text[len(_LONG_TEXT) :].rstrip(","))]
            invalid.append((row.number, start, -size, MAX_ROW_BYTES))
            return "skip"
        if stream.escaped and _ESCAPE_TEXT in text:  # show the row's own bytes
            text = unescape(text.encode("utf-8")).decode("utf-8", errors="replace")
        invalid.append((row.number, text, row.actual_columns, row.expected_columns))
        return "skip"

    stream = Utf8Guard(path, len(header))
    try:
        reader = pacsv.open_csv(
            stream,
            # one thread: pyarrow knows each invalid row's line number only then (as fast
            # for this streaming reader, measured)
            read_options=pacsv.ReadOptions(block_size=8 << 20, use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.binary() for n in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[],
            ),
        )
    except pa.ArrowException as exc:
        stream.close()
        if "Empty CSV file" in str(exc):  # a header and no newline: no records
            return iter(())
        raise SourceError(f"{name}: {exc}") from None
    return _closing(_csv_chunks(reader, stream, name, chunk_rows, invalid), stream)


def _closing(chunks: Iterator[Chunk], stream: Utf8Guard) -> Iterator[Chunk]:
    """``chunks``, closing the file when they end (or the reader stops early)."""
    try:
        yield from chunks
    finally:
        stream.close()


MAX_ROW_BYTES = 8 << 20
"""The longest CSV row read (bytes, its line break excluded); a longer one is a reject,
read past, never held in memory whole (pyarrow cannot parse a row over its block size)."""
_ESCAPE_TEXT = "\ufdd0"
"""A Unicode noncharacter (reserved for a program's internal use): the escape of
:class:`Utf8Guard`"""
_ESCAPE = _ESCAPE_TEXT.encode("utf-8")
_LONG_TEXT = _ESCAPE_TEXT + "long row "
"""the start of the stand-in for a row over MAX_ROW_BYTES (a literal escape in the file is
doubled, so no row of the file reads like it)"""
_ESCAPES = {0xDC00 + b: f"{_ESCAPE_TEXT}{b:02x}" for b in range(128, 256)}
_ESCAPED = re.compile(re.escape(_ESCAPE) + b"(" + re.escape(_ESCAPE) + b"|[0-9a-f]{2})")


class Utf8Guard:
    """The CSV file as pyarrow reads it: its bytes, except that in a block that is not valid
    UTF-8 (or holds the escape character) each invalid byte becomes the escape plus two hex
    digits and a literal escape is doubled, so pyarrow only ever sees valid UTF-8.

    Why: pyarrow decodes the text of a row with the wrong number of values as UTF-8 before
    calling the invalid-row handler, and fails (taking the whole read down) when it is not.
    With the guard such a row is a reject like any other; :func:`unescape` gives the exact
    bytes back, so a value that was not UTF-8 is still rejected as such and a value that was
    is unchanged. Valid blocks (nearly every file) pass through as they are. The header line
    passes verbatim (it was checked to be UTF-8)."""

    BLOCK = 8 << 20

    def __init__(self, path: Path, columns: int = 1) -> None:
        self._fh = path.open("rb")
        self._out = bytearray(self._fh.readline())
        self._carry = b""
        """the current line's bytes, held until its end is read (at most MAX_ROW_BYTES)"""
        self._skipping = False
        self._stub_tail = b"," * columns  # one value more than the header: an invalid row
        self._eof = False
        self.escaped = False
        """whether any block was escaped (else no value can hold an escape)"""
        self.long_rows: list[tuple[int, str]] = []
        """(size in bytes, start as text) of each row longer than MAX_ROW_BYTES"""

    def read(self, size: int = -1) -> bytes:
        """Whole lines only (the last one at the end of the file), so that a line longer
        than :data:`MAX_ROW_BYTES` -- which pyarrow cannot read, failing the whole file --
        is found before any of it is passed on, and replaced by a short invalid row that
        the invalid-row handler turns into that row's reject."""
        while not self._eof and (size < 0 or len(self._out) < size):
            block = self._fh.read(self.BLOCK)
            if not block:
                self._eof = True
                data, self._carry = self._carry, b""
                self._out += self._guard(data)
                break
            if self._skipping:  # inside a long row: drop it up to its end
                end = _line_end(block)
                self.long_rows[-1] = (
                    self.long_rows[-1][0] + (len(block) if end < 0 else end),
                    self.long_rows[-1][1],
                )
                if end < 0:
                    continue
                self._skipping = False
                block = block[end:]
            data = self._carry + block
            last = max(data.rfind(b"\n"), data.rfind(b"\r"))
            if last < 0:  # the current line goes on
                if len(data) > MAX_ROW_BYTES:
                    self._out += self._long_row(data, len(data))
                    self._carry, self._skipping = b"", True
                else:
                    self._carry = data
                continue
            complete, self._carry = data[: last + 1], data[last + 1 :]
            first = _line_end(complete)
            if first > MAX_ROW_BYTES:  # lines after the first are within one block
                self._out += self._long_row(complete, first)
                complete = complete[first:]
            self._out += self._guard(complete)
        take = len(self._out) if size < 0 else min(size, len(self._out))
        out = bytes(self._out[:take])
        del self._out[:take]
        return out

    def _long_row(self, data: bytes, size: int) -> bytes:
        start = data[:_SHOWN].decode("utf-8", errors="replace")
        self.long_rows.append((size, start + "..."))
        return (f"{_LONG_TEXT}{len(self.long_rows) - 1}").encode() + self._stub_tail

    def _guard(self, data: bytes) -> bytes:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            if _ESCAPE_TEXT not in text:
                return data
        self.escaped = True
        text = data.decode("utf-8", errors="surrogateescape")
        return text.replace(_ESCAPE_TEXT, _ESCAPE_TEXT * 2).translate(_ESCAPES).encode("utf-8")

    def tell(self) -> int:
        """Bytes of the file read so far."""
        return self._fh.tell()

    @property
    def closed(self) -> bool:
        return self._fh.closed

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self._fh.close()


def _line_end(data: bytes) -> int:
    """Index of the first line break (``\\n`` or ``\\r``, as pyarrow reads them) in
    ``data``, or -1."""
    ends = [i for i in (data.find(b"\n"), data.find(b"\r")) if i >= 0]
    return min(ends) if ends else -1


def _has_escape(column: Any) -> bool:
    import pyarrow.compute as pc

    return bool(pc.any(pc.match_substring(column, _ESCAPE_TEXT)).as_py())


def unescape(data: bytes) -> bytes:
    """The file's own bytes of text read through :class:`Utf8Guard`."""
    return _ESCAPED.sub(
        lambda m: _ESCAPE if m.group(1) == _ESCAPE else bytes.fromhex(m.group(1).decode("ascii")),
        data,
    )


def _csv_header(path: Path, name: str) -> list[str]:
    import csv

    with path.open("rb") as fh:
        first = fh.readline()  # the header's own bytes (values below may be any bytes)
    try:
        header = next(csv.reader([first.decode("utf-8-sig")]), None) or []
    except UnicodeDecodeError as exc:
        raise SourceError(f"{name}: the header is not UTF-8 text: {exc}") from None
    except csv.Error as exc:
        raise SourceError(f"{name}: the header does not parse: {exc}") from None
    if len(set(header)) != len(header):
        raise SourceError(f"{name}: duplicate column names in the header")
    if any(h == "" for h in header):
        raise SourceError(f"{name}: the header has an empty column name")
    return header


def _csv_chunks(
    reader: Any, stream: Any, name: str, chunk_rows: int, invalid: list[tuple[int, str, int, int]]
) -> Iterator[Chunk]:
    """Chunks of ``chunk_rows`` records; rows pyarrow skipped as invalid are rejects in the
    chunk whose rows surround them, and the record numbers of the others account for them."""
    import pyarrow as pa

    numbering = _Numbering()
    bad: dict[int, tuple[str, int, int]] = {}
    pending: list[pa.RecordBatch] = []
    size = 0
    while True:
        try:
            batch = reader.read_next_batch()
            done = False
        except StopIteration:
            done = True
        except pa.ArrowException as exc:
            raise SourceError(f"{name}: near row {numbering.next_row}: {exc}") from None
        else:
            pending.append(batch)
            size += batch.num_rows
        for number, text, got, want in invalid:  # line N holds record N-1 (line 1: header)
            bad[number - 1] = (text, got, want)
            numbering.skip(number - 1)
        invalid.clear()
        while size >= chunk_rows or (done and size):
            take = min(size, chunk_rows)
            table = pa.Table.from_batches(pending, schema=reader.schema)
            numbers = numbering.take(take)
            mine = {r: bad.pop(r) for r in sorted(bad) if r < numbers[-1]}
            yield _csv_chunk(
                name, table.slice(0, take), numbers, mine, stream.tell(), stream.escaped
            )
            rest = table.slice(take)
            pending, size = rest.to_batches(), rest.num_rows
        if done:
            if bad:
                yield _csv_chunk(name, None, [], bad, stream.tell(), stream.escaped)
            return


class _Numbering:
    """Record numbers of the rows pyarrow returns, given the rows it skipped."""

    def __init__(self) -> None:
        self.next_row = 1
        self.skipped: list[int] = []

    def skip(self, row: int) -> None:
        self.skipped.append(row)  # pyarrow reports them in file order

    def take(self, n: int) -> list[int]:
        skipped = self.skipped
        row = self.next_row
        if not skipped or skipped[-1] < row or skipped[0] >= row + n:
            # no skipped row before or inside this range (the usual case): consecutive
            self.skipped = [r for r in skipped if r >= row] if skipped else skipped
            self.next_row = row + n
            return list(range(row, row + n))
        out: list[int] = []
        i = 0
        while len(out) < n:
            while i < len(skipped) and skipped[i] < row:
                i += 1
            if i < len(skipped) and skipped[i] == row:
                i += 1
                row += 1
                continue
            out.append(row)
            row += 1
        self.skipped = skipped[i:]
        self.next_row = row
        return out


def _csv_chunk(
    name: str,
    table: Any,
    numbers: list[int],
    bad: dict[int, tuple[str, int, int]],
    position: int,
    escapes: bool = False,
) -> Chunk:
    import pyarrow as pa

    rejected = [
        Reject(
            name,
            row,
            "<record>",
            f"row has {got} values but the header has {want} columns"
            if got >= 0
            else f"row is {-got:,} bytes, longer than the {want:,} bytes a CSV row may have",
            text if len(text) <= _SHOWN else text[:_SHOWN] + "...",
        )
        for row, (text, got, want) in sorted(bad.items())
    ]
    if table is None or table.num_rows == 0:
        first = rejected[0].row if rejected else 1
        return Chunk(name, first, {}, 0, position, [], rejected)
    columns: list[Any] = []
    broken: set[int] = set()
    for i, column in enumerate(table.columns):
        escaped = escapes and _has_escape(column)
        try:
            if escaped:
                raise pa.ArrowInvalid("escaped bytes")
            columns.append(column.cast(pa.string()))
        except pa.ArrowInvalid:
            values = column.to_pylist()
            if escaped:
                values = [unescape(v) if _ESCAPE in v else v for v in values]
            for j, v in enumerate(values):
                try:
                    v.decode("utf-8")
                except UnicodeDecodeError as exc:
                    if j not in broken:
                        broken.add(j)
                        rejected.append(
                            Reject(
                                name,
                                numbers[j],
                                table.column_names[i],
                                f"not UTF-8 text: {exc}",
                                v.decode("utf-8", errors="replace"),
                            )
                        )
            text = [v.decode("utf-8", errors="replace") for v in values]
            columns.append(pa.chunked_array([pa.array(text, pa.string())]))
    out = pa.Table.from_arrays(columns, names=table.column_names)
    if broken:
        keep = [j for j in range(out.num_rows) if j not in broken]
        out = out.take(pa.array(keep, pa.int64()))
        numbers = [numbers[j] for j in keep]
        rejected.sort(key=lambda r: r.row)
    first = numbers[0] if numbers else 1
    consecutive = not numbers or numbers[-1] - first == len(numbers) - 1
    return Chunk(
        name,
        first,
        out,
        out.num_rows,
        position,
        None if consecutive else numbers,
        rejected,
    )


# ------------------------------------------------------------------------------- Parquet


def _read_parquet(path: Path, name: str, chunk_rows: int) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        names = pf.schema_arrow.names
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:  # a name not UTF-8
        raise SourceError(f"{name}: not a readable Parquet file: {exc}") from None
    if len(set(names)) != len(names):
        raise SourceError(f"{name}: duplicate column names in the Parquet schema")
    bad = _check_parquet(pf, name)
    return _parquet_chunks(pf, name, chunk_rows, path.stat().st_size, bad)


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
    pf: Any, name: str, chunk_rows: int, size: int, bad: dict[int, tuple[str, str]]
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
        table = pa.Table.from_batches([batch])
        mine = sorted(r for r in bad if row <= r < row + table.num_rows) if bad else []
        if not mine:
            yield Chunk(name, row, table, table.num_rows, size * done // total)
        else:
            yield _without_rows(name, table, row, mine, bad, size * done // total)
        row += batch.num_rows


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
    loads = json.loads
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
                value = loads(text)
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


def _read_frame(frame: object, chunk_rows: int) -> Iterator[Chunk]:
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise SourceError(
            f"cannot ingest a {type(frame).__name__}: give a path to a CSV, "
            "Parquet or JSON-lines file, or a pandas DataFrame"
        )
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        raise SourceError("the DataFrame has duplicate column names")
    return _frame_chunks(frame, names, chunk_rows)


def _frame_chunks(frame: Any, names: list[str], chunk_rows: int) -> Iterator[Chunk]:
    for start in range(0, len(frame), chunk_rows):
        part = frame.iloc[start : start + chunk_rows]
        columns = {name: _plain(part[col]) for name, col in zip(names, frame.columns, strict=True)}
        yield Chunk("<DataFrame>", start + 1, columns, len(part), start + len(part))


def _plain(series: Any) -> list[object]:
    """Python values of a column; pandas' missing markers (NA, NaT) become None."""
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


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is _MISSING:
        return None
    return str(value)


__all__ = [
    "FORMATS",
    "Chunk",
    "Reject",
    "SourceError",
    "format_of",
    "read_source",
    "rows_chunk",
    "source_name",
]
