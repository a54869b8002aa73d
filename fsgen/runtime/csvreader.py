"""The CSV reader: a file in chunks of text columns, through pyarrow's streaming reader
behind :class:`Utf8Guard`, so that no row can fail the whole file -- a row with too few or
too many values, a value that is not UTF-8, a row over :data:`MAX_ROW_BYTES` each become
that row's reject, and the record numbers of the other rows account for them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fsgen.runtime.chunks import SHOWN as _SHOWN
from fsgen.runtime.chunks import Chunk, Needed, Reject, SourceError, repeated_columns


def read_csv(
    path: Path, name: str, chunk_rows: int, needed: Needed | None = None
) -> Iterator[Chunk]:
    """The file's chunks; raises :class:`SourceError` at once when the file cannot be
    read, or when its header lacks a column ``needed`` names (an empty file has no records
    and needs none)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    header = _csv_header(path, name)
    if not header:
        return iter(())
    if needed is not None:
        needed.check(name, "header", header)
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
    if repeated := repeated_columns(header):
        raise SourceError(f"{name}: duplicate column names in the header: {repeated}")
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


__all__ = ["MAX_ROW_BYTES", "Utf8Guard", "read_csv", "unescape"]
