"""Raw records in chunks, as every reader yields them: :class:`Chunk` (column lists of one
slice of a source, each row with its record number), :class:`Reject` (a record not written,
and why) and :class:`SourceError` (a source that cannot be read at all); and the parsing of
Arrow text columns the fast path uses (:func:`iso_seconds`, :func:`parsed_numbers`), which
gives exactly what the row path's parsing gives.

pyarrow is imported only when a chunk holds Arrow data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fsgen.runtime.pipeline import _MISSING

if TYPE_CHECKING:
    import pyarrow as pa

SHOWN = 2000
"""characters of an unparsable row's text kept in its reject"""


class SourceError(ValueError):
    """The source cannot be read at all (raised before anything of it is written)."""


def repeated_columns(names: list[str]) -> str:
    """The column names given more than once, in order of first repeat: '' when none."""
    seen: set[str] = set()
    repeated: list[str] = []
    for n in names:
        if n in seen and n not in repeated:
            repeated.append(n)
        seen.add(n)
    return ", ".join(repeated)


@dataclass(frozen=True)
class Needed:
    """The columns a source must have for ``group``: its required raw input fields. A
    source whose header (CSV) or schema (Parquet, DataFrame) lacks one would reject every
    row for it, so it is one :class:`SourceError` instead, before anything is written.
    Extra columns are allowed; optional fields may be absent (they read as missing)."""

    group: str
    columns: tuple[str, ...]
    instants: tuple[str, ...] = ()
    """columns a reader leaves as timestamps (the event time: the pipeline reads the instant
    it holds, :func:`fsgen.runtime.pipeline.event_time_of`); every other timestamp or date
    column is read as ISO-8601 text"""

    def check(self, source: str, what: str, have: list[str]) -> None:
        present = set(have)
        lacking = [c for c in self.columns if c not in present]
        if lacking:
            raise SourceError(
                f"{source}: {what} lacks column(s) {', '.join(lacking)} needed by group "
                f"{self.group} (has: {', '.join(have) or 'no columns'})"
            )


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
        :func:`parsed_numbers`), with the values ``int()`` / ``float()`` give. What the fast path of
        :mod:`fsgen.runtime.bulk` accepts from these it accepts from :attr:`columns` too,
        with the same results: it only saves making and parsing a string per value. The
        raw (text) columns are not kept: a reject's record is read back from the Arrow data.
        """
        if isinstance(self.data, dict):
            return self.data
        table = self.data
        return {
            n: parsed_numbers(table.column(n), types.get(n)) or _text(table.column(n), types.get(n))
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


def _text(column: Any, type_name: str | None) -> list[object]:
    """Python values of a column; for a ``str`` field, a null-free Arrow string column is a
    :class:`~fsgen.runtime.bulk.PlainColumn` (every value a str), carrying the column."""
    import pyarrow as pa

    from fsgen.runtime.bulk import PlainColumn

    values = _pylist(column)
    if type_name == "str" and column.type == pa.string() and not column.null_count:
        return PlainColumn(values, "str", column)
    return values


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


def parsed_numbers(column: Any, type_name: str | None) -> list[object] | None:
    """A null-free text column of ``int`` or ``float`` text parsed by Arrow (None when the
    field is of another type, or a value is not plain numeric text, or beyond int64)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from fsgen.runtime.bulk import PlainColumn

    plain = _PLAIN_TEXT.get(type_name or "")
    if plain is None or column.type != pa.string() or column.null_count or not len(column):
        return None
    pattern, target = plain
    if not pc.all(pc.match_substring_regex(column, pattern)).as_py():
        return None
    try:
        numbers = pc.cast(column, target).to_numpy()
    except pa.ArrowInvalid:  # an integer beyond int64
        return None
    if target == "float64" and not np.isfinite(numbers).all():  # '1e400': the fast path decides
        return numbers.tolist()  # type: ignore[no-any-return]
    return PlainColumn(numbers.tolist(), type_name or "")


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
