"""Column-at-a-time processing of many raw records: the same results as
:meth:`GroupRuntime.process` row by row, without its per-row overhead.

Invariant (proven by a hypothesis differential test in ``tests/store``): for every block,
:func:`process_block` returns exactly the records and the rejections that calling
``GroupRuntime.process`` on each row returns. It gets there by taking a fast path only when it
can prove the block is "easy" (every value already of the plain type the row path would
produce, every transformation returning plain finite values); anything else -- a missing
value, a string that needs coercion in an unusual way, a function that raises -- sends the
whole block through ``GroupRuntime.process`` one row at a time. Transformations are pure
functions by contract, so calling them again on the slow path is harmless.

Standard library only, like the rest of :mod:`fsgen.runtime`.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fsgen.runtime.encoding import FRACTIONAL, INT64_MAX, INT64_MIN, INTEGRAL, STRING
from fsgen.runtime.pipeline import (
    _MISSING,
    FeatureDef,
    GroupRuntime,
    RecordError,
    TransformError,
    coerce,
    composite_identifier,
)

Columns = Mapping[str, Sequence[object]]


@dataclass
class BlockResult:
    """Processed rows of one block, column-wise.

    ``columns`` holds one list per stored column (``GroupRuntime.columns`` order) with a value
    per accepted row; ``rows`` are the block-relative indexes of those rows, ``seconds`` their
    event times as epoch seconds; ``errors`` the rejected rows as (index, error).
    """

    columns: dict[str, list[object]]
    rows: list[int]
    seconds: list[float]
    errors: list[tuple[int, RecordError | TransformError]] = field(default_factory=list)
    fast: bool = False


class _Slow(Exception):
    """The block is not provably easy: process it row by row."""


class PlainColumn(list):  # type: ignore[type-arg]
    """A column its reader has proven plain for ``type_name``: every value is what
    ``coerce(type_name, raw)`` gives for its raw value and none is missing (``str``: every
    value a str; ``int``: an int within int64; ``float``: a finite float), so the fast path
    takes it as it is, without checking each value again. ``source``: the reader's own
    column holding the same values (an Arrow column), which a sink may store instead of
    converting the list back. The fast path never changes a list it is given."""

    __slots__ = ("source", "type_name")

    def __init__(self, values: list[object], type_name: str, source: object = None) -> None:
        super().__init__(values)
        self.type_name = type_name
        self.source = source


def row_of(columns: Columns, index: int) -> dict[str, object]:
    """The raw record at ``index`` as the row path sees it (absent values stay absent)."""
    return {
        name: values[index] for name, values in columns.items() if values[index] is not _MISSING
    }


def process_block(rt: GroupRuntime, columns: Columns, n: int, min_block: int = 64) -> BlockResult:
    """Process ``n`` raw records given as columns; see the module docstring for the invariant.

    A block that is not provably easy is halved until the halves are, or until they are
    ``min_block`` rows or fewer, which go row by row: one bad record costs a few small
    blocks, not the whole chunk."""
    try:
        return _fast(rt, columns, n)
    except _Slow:
        pass
    if n <= min_block:
        return process_rows(rt, [row_of(columns, i) for i in range(n)])
    half = n // 2
    result = BlockResult({c[0]: [] for c in rt.columns}, [], [], [])
    for start, stop in ((0, half), (half, n)):
        part = {name: values[start:stop] for name, values in columns.items()}
        _extend(result, process_block(rt, part, stop - start, min_block), start)
    return result


def fast_block(
    rt: GroupRuntime, columns: Columns, n: int, seconds: list[float] | None = None
) -> BlockResult | None:
    """The block by the fast path when it is provably easy as a whole, else None (nothing
    rejected: a caller then processes it with :func:`process_block`). ``seconds``: the
    event times' epoch seconds when the caller has already parsed them, each a canonical
    'YYYY-MM-DDTHH:MM:SS[.mmm]Z' (as :func:`fsgen.runtime.chunks.iso_seconds` does)."""
    try:
        return _fast(rt, columns, n, seconds)
    except _Slow:
        return None


def process_rows(rt: GroupRuntime, rows: Sequence[Mapping[str, object]]) -> BlockResult:
    """The reference path: ``GroupRuntime.process`` on each row, gathered column-wise."""
    names = [c[0] for c in rt.columns]
    out: dict[str, list[object]] = {name: [] for name in names}
    accepted: list[int] = []
    seconds: list[float] = []
    errors: list[tuple[int, RecordError | TransformError]] = []
    for i, raw in enumerate(rows):
        try:
            record = rt.process(raw)
        except (RecordError, TransformError) as exc:
            errors.append((i, exc))
            continue
        for name in names:
            out[name].append(record.get(name))
        accepted.append(i)
        seconds.append(rt.event_seconds(record))
    return BlockResult(out, accepted, seconds, errors)


# ------------------------------------------------------------------------------- fast path


def _fast(
    rt: GroupRuntime, columns: Columns, n: int, parsed: list[float] | None = None
) -> BlockResult:
    valid: dict[str, list[object]] = {}
    for f in rt.fields:
        values = columns.get(f.name)
        if values is None:
            if not f.optional:
                raise _Slow
            valid[f.name] = [None] * n
            continue
        valid[f.name] = _coerce_column(f.type, values, n)
    for f in rt.fields:  # a required text field's empty value is missing: the row path says so
        if f.type == "str" and not f.optional and "" in valid[f.name]:  # == in C
            raise _Slow
    times = valid[rt.event_time]
    if rt.event_time_kind == FRACTIONAL:
        seconds = [float(v) for v in times]  # type: ignore[arg-type]
        canonical: list[object] = list(seconds)
    elif parsed is not None and len(parsed) == n:
        seconds, canonical = parsed, times
    else:
        seconds, canonical = _iso_column(times)
    out: dict[str, list[object]] = {}
    if len(rt.keys) > 1:
        key_cols = [valid[k] for k in rt.keys]
        out[rt.identifier] = [
            composite_identifier(list(parts)) for parts in zip(*key_cols, strict=True)
        ]
    for f in rt.fields:  # an Integral key part outside int64: the row path rejects it
        if f.name in rt.keys and f.type == "int" and n:
            ints = valid[f.name]
            if not isinstance(ints, PlainColumn) and not (
                INT64_MIN <= min(ints) and max(ints) <= INT64_MAX  # type: ignore[operator, type-var]
            ):
                raise _Slow
    for key in rt.keys:
        out[key] = valid[key]
    out[rt.event_time] = canonical
    inputs = {**valid, rt.event_time: canonical}
    computed: dict[str, list[object]] = {}
    for feat in rt.features:
        args = [computed[p] if kind == "feature" else inputs[p] for p, kind in feat.params]
        computed[feat.name] = _check_column(rt, feat, _call_column(feat, args, n))
    out.update(computed)
    names = [c[0] for c in rt.columns]
    return BlockResult({name: out[name] for name in names}, list(range(n)), seconds, fast=True)


def _coerce_column(type_name: str, values: Sequence[object], n: int) -> list[object]:
    if len(values) != n:
        raise _Slow
    if isinstance(values, PlainColumn) and values.type_name == type_name:
        return values  # proven by its reader: the same values, unchecked and uncopied
    kinds = set(map(type, values))
    if type_name == "str":
        if kinds <= {str}:
            return list(values)
        raise _Slow
    if type_name == "int":
        if kinds <= {int}:
            return list(values)
        if kinds <= {str} and _ascii(values):
            try:
                return list(map(int, values))  # type: ignore[arg-type]
            except ValueError:
                raise _Slow from None
        raise _Slow
    if type_name == "float":
        if kinds <= {float}:
            out = list(values)
        elif kinds <= {int, float} or (kinds <= {str} and _ascii(values)):
            try:
                out = list(map(float, values))  # type: ignore[arg-type]
            except (ValueError, OverflowError):
                raise _Slow from None
        else:
            raise _Slow
        if not all(map(math.isfinite, out)):  # type: ignore[arg-type]
            raise _Slow
        return out
    # bool and list types: the row path's own coercion, value by value
    coerced: list[object] = []
    for v in values:
        if v is None or v is _MISSING or (isinstance(v, float) and math.isnan(v)) or v == "":
            raise _Slow
        try:
            coerced.append(coerce(type_name, v))
        except ValueError:
            raise _Slow from None
    return coerced


def _ascii(values: Sequence[object]) -> bool:
    """int() and float() also take non-ASCII digits ('\u0663'), which the row path's
    coercion (ASCII numerals only) refuses: such text goes the slow way."""
    return all(map(str.isascii, values))  # type: ignore[arg-type]


_HOUR = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):\Z", re.ASCII)
_MILLIS = re.compile(r"(\d\d):(\d\d)\.(\d{3})Z\Z", re.ASCII)
_MMSS = {f"{m:02d}:{s:02d}Z": m * 60 + s for m in range(60) for s in range(60)}


def _iso_column(values: Sequence[object]) -> tuple[list[float], list[object]]:
    """Epoch seconds of canonical 'YYYY-MM-DDTHH:MM:SS[.mmm]Z' strings; anything else
    (another offset, lower-case z, '.000', a space) is left to the row path.

    The 'YYYY-MM-DDTHH:' prefix is validated once per distinct hour; the 'MM:SSZ' rest is
    one lookup in a table of the 3,600 valid values."""
    hours: dict[str, int] = {}
    seconds: list[float] = []
    append = seconds.append
    mmss = _MMSS
    for text in values:
        prefix = text[:14]  # type: ignore[index]
        base = hours.get(prefix)  # type: ignore[call-overload]
        if base is None:
            base = hours[prefix] = _hour_base(prefix)  # type: ignore[index, arg-type]
        offset = mmss.get(text[14:])  # type: ignore[index]
        if offset is not None:
            append(float(base + offset))
            continue
        m = _MILLIS.match(text, 14)  # type: ignore[call-overload]
        if m is None or int(m[1]) > 59 or int(m[2]) > 59 or m[3] == "000":
            raise _Slow  # the canonical form drops '.000'
        whole = base + int(m[1]) * 60 + int(m[2])
        append((whole * 1_000_000 + int(m[3]) * 1000) / 1_000_000)
    return seconds, list(values)


def _hour_base(prefix: str) -> int:
    m = _HOUR.match(prefix)
    if m is None or int(m[4]) > 23:
        raise _Slow
    try:
        day = datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=UTC)
    except ValueError:
        raise _Slow from None
    return int(day.timestamp()) + int(m[4]) * 3600


def _call_column(feat: FeatureDef, args: list[list[object]], n: int) -> list[object]:
    fn = feat.fn
    try:
        if _positional(feat):
            return list(map(fn, *args)) if args else [fn() for _ in range(n)]
        names = [p for p, _ in feat.params]
        return [fn(**dict(zip(names, row, strict=True))) for row in zip(*args, strict=True)]
    except Exception:
        raise _Slow from None


_POSITIONAL: dict[Callable[..., object], bool] = {}


def _positional(feat: FeatureDef) -> bool:
    """Can the function be called positionally in ``feat.params`` order?"""
    key = feat.fn
    if key not in _POSITIONAL:
        try:
            params = list(inspect.signature(feat.fn).parameters.values())
        except (TypeError, ValueError):
            params = []
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        _POSITIONAL[key] = len(params) == len(feat.params) and all(
            p.kind in kinds and p.name == name
            for p, (name, _) in zip(params, feat.params, strict=True)
        )
    return _POSITIONAL[key]


_PLAIN: dict[str, type] = {INTEGRAL: int, FRACTIONAL: float, STRING: str}
_NONE = type(None)


def _check_column(rt: GroupRuntime, feat: FeatureDef, values: list[object]) -> list[object]:
    """What ``GroupRuntime._check_value`` returns for each value, or _Slow."""
    if feat.collection is not None:
        try:
            return [rt._check_value(feat, v) for v in values]
        except TransformError:
            raise _Slow from None
    plain = _PLAIN[feat.kind]
    kinds = set(map(type, values))
    if not kinds <= {plain, _NONE}:
        raise _Slow
    if plain is int:
        ints = [v for v in values if v is not None] if _NONE in kinds else values
        if ints and not (INT64_MIN <= min(ints) and max(ints) <= INT64_MAX):  # type: ignore[operator, type-var]
            raise _Slow  # the row path rejects values outside int64
    if plain is float:
        finite = math.isfinite
        if _NONE in kinds:
            if not all(v is None or finite(v) for v in values):  # type: ignore[arg-type]
                raise _Slow
        elif not all(map(finite, values)):  # type: ignore[arg-type]
            raise _Slow
    return values


def process_many(
    rt: GroupRuntime, rows: Sequence[Mapping[str, object]], block_size: int = 2048
) -> BlockResult:
    """Row dicts in, :class:`BlockResult` out (indexes relative to ``rows``)."""
    result = BlockResult({c[0]: [] for c in rt.columns}, [], [], [])
    for start in range(0, len(rows), block_size):
        part = rows[start : start + block_size]
        names: dict[str, None] = {}
        for row in part:
            names.update(dict.fromkeys(row))
        columns = {name: [row.get(name, _MISSING) for row in part] for name in names}
        _extend(result, process_block(rt, columns, len(part)), start)
    return result


def _extend(into: BlockResult, block: BlockResult, offset: int) -> None:
    for name, values in block.columns.items():
        into.columns[name].extend(values)
    into.rows.extend(i + offset for i in block.rows)
    into.seconds.extend(block.seconds)
    into.errors.extend((i + offset, e) for i, e in block.errors)


__all__ = [
    "BlockResult",
    "PlainColumn",
    "fast_block",
    "process_block",
    "process_many",
    "process_rows",
    "row_of",
]
