"""Validate a raw record and compute its features: the one code path batch ingestion, the
stream handler and request-time computation all run.

A :class:`GroupRuntime` is built from plain data plus the featuredefs function objects, so
generated modules can construct it with an explicit, reviewable literal. Raw values are coerced
the way a CSV or JSON reader needs (``"42"`` is a fine int), with the same rules as the pydantic
input model of :mod:`fsgen.schema` (a differential test keeps the two equal).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from fsgen.runtime.encoding import (
    FRACTIONAL,
    INT64_MAX,
    INT64_MIN,
    INTEGRAL,
    decode_value,
    encode_value,
    format_event_time,
    parse_event_time,
)
from fsgen.runtime.errors import ConfigurationError

_MISSING = object()


class RecordError(ValueError):
    """A raw record failed validation: ``field`` says which input, the message says why.

    ``problems`` is every bad field of the record, (field, reason) in definition order; when
    there are several, ``field`` is the first and ``message`` its reason followed by
    ``; <field>: <reason>`` for each other one, so ``f"{field}: {message}"`` lists them all
    (the shape of a reject's ``field`` and ``reason``, and of a dead letter's)."""

    def __init__(
        self, field: str, message: str, problems: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self.problems = problems or ((field, message),)
        self.field = self.problems[0][0]
        self.message = "; ".join(
            [self.problems[0][1], *(f"{f}: {m}" for f, m in self.problems[1:])]
        )
        super().__init__(f"{self.field}: {self.message}")

    @classmethod
    def of(cls, problems: list[tuple[str, str]]) -> RecordError:
        """The error of a record with these (field, reason) problems (at least one)."""
        return cls(problems[0][0], problems[0][1], tuple(problems))


class TransformError(RuntimeError):
    """A transformation function raised for this record."""

    def __init__(self, feature: str, error: BaseException, where: str = "") -> None:
        text = f"{type(error).__name__}: {error}"
        super().__init__(f"feature {feature!r} raised {text}" + (f" ({where})" if where else ""))
        self.field = feature
        self.message = f"transformation raised {text}" + (f" at {where}" if where else "")
        self.error = error

    @classmethod
    def returned(cls, feature: str, shown: str, reason: str, where: str = "") -> TransformError:
        """A transformation that returned a value its feature cannot hold: it did not raise,
        so the reason says what it returned, not 'raised', and ``where`` the function is
        defined (there is no line that raised to point at)."""
        error = cls(feature, TypeError(f"returned {shown}: {reason}"))
        error.args = (f"feature {feature!r} returned {shown}: {reason}",)
        error.message = f"transformation returned {shown}: {reason}" + (
            f" ({feature} defined at {where})" if where else ""
        )
        return error


@dataclass(frozen=True)
class FieldDef:
    """A raw input field: ``type`` is int, float, str, bool, list[int], list[float], list[str]."""

    name: str
    type: str
    optional: bool = False


@dataclass(frozen=True)
class FeatureDef:
    """A stored feature: its function and where each parameter's value comes from."""

    name: str
    fn: Callable[..., object]
    kind: str
    collection: str | None = None
    dimension: int | None = None
    params: tuple[tuple[str, str], ...] = ()
    """(parameter name, input kind) with kind in raw, key, event_time, feature"""


def _is_missing(value: object) -> bool:
    return value is None or value is _MISSING or (isinstance(value, float) and math.isnan(value))


_INT_TEXT = re.compile(r"^[+-]?[0-9]+(?:_[0-9]+)*(?:\.0+)?$")
_FLOAT_TEXT = re.compile(
    r"^[+-]?(?:[0-9]+(?:_[0-9]+)*(?:\.(?:[0-9]+(?:_[0-9]+)*)?)?|\.[0-9]+(?:_[0-9]+)*)"
    r"(?:[eE][+-]?[0-9]+(?:_[0-9]+)*)?$"
)
_BOOL_TEXT = {
    "true": True,
    "false": False,
    "1": True,
    "0": False,
    "yes": True,
    "no": False,
    "t": True,
    "f": False,
    "y": True,
    "n": False,
    "on": True,
    "off": False,
}


def event_time_of(kind: str, value: date) -> object:
    """A Parquet (or DataFrame) timestamp or date given as an event time: the instant it holds,
    as the ISO-8601 text (String) or epoch seconds (Fractional) of it would be read -- an aware
    value by its offset, a naive one as UTC, a date as its midnight UTC. Digits finer than
    milliseconds stay in the text, so they are refused as text's are."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if kind == FRACTIONAL:
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.timestamp()
    nanos = getattr(value, "nanosecond", 0)  # a pandas Timestamp keeps nanoseconds
    return value.isoformat() if nanos else value.isoformat(timespec="microseconds")


_MIN_SECONDS = -62135596800.0  # 0001-01-01T00:00:00Z
_MAX_SECONDS = 253402300799.0  # 9999-12-31T23:59:59Z


def outside_years(kind: str, seconds: float) -> str:
    """The reason of an event time outside years 1..9999; for epoch seconds that would be a
    time of years 1..9999 in milliseconds (or microseconds), the likely unit mix-up too."""
    reason = "event time outside years 1..9999"
    if kind != FRACTIONAL or not math.isfinite(seconds):
        return reason
    for unit, scale in (("milliseconds", 1_000), ("microseconds", 1_000_000)):
        if _MIN_SECONDS <= seconds / scale <= _MAX_SECONDS and abs(seconds / scale) >= 1e8:
            return (
                f"{reason}: {seconds:g} epoch seconds; a Fractional event time is epoch "
                f"seconds, and this looks like epoch {unit} (divide by {scale:,})"
            )
    return reason


def coerce(type_name: str, value: object) -> object:
    """Coerce one raw value to ``type_name``; raise ValueError with a readable reason.

    The rules are pydantic's lax mode for the group's input model (see fsgen.schema): numeric
    text is accepted for numbers (ASCII digits, optional sign, underscores between digits),
    integral floats for ints, 0/1 and yes/no words (unpadded) for bools; a bool is no number
    (unlike pydantic's lax mode, whose input model fsgen.schema makes say so too); nothing
    becomes a string that was not one. A collection (List, Set, Vector raw field) is a list, or text
    holding a JSON array -- the encoding of a collection in a CSV cell.
    """
    if type_name.startswith("list["):
        inner = type_name[5:-1]
        if isinstance(value, str):
            value = _json_array(value, inner)
        if isinstance(value, bytes | dict) or not isinstance(value, Iterable):
            raise ValueError(f"expected a list of {inner}, got {_show(value)}")
        return [coerce(inner, v) for v in value]
    if type_name == "int":
        return _to_int(value)
    if type_name == "float":
        return _to_float(value)
    if type_name == "bool":
        return _to_bool(value)
    if isinstance(value, str):
        return value
    raise ValueError(f"expected a string, got {_show(value)}")


def _json_array(text: str, inner: str) -> object:
    """A collection written as text -- how a CSV cell holds one -- is a JSON array
    (``[9, 20, 22]``, ``["a", "b"]``); anything else is refused, naming that encoding."""
    try:
        decoded = json.loads(text)
    except ValueError:
        decoded = None
    if not isinstance(decoded, list):
        raise ValueError(
            f"expected a list of {inner} (as text: a JSON array such as [1, 2]), got {_show(text)}"
        )
    return decoded


_MAX_DIGITS = 4300
"""digits of the largest Decimal turned into an int (Python's own limit for int text)"""


def _not_a_number(value: object, expected: str) -> None:
    """JSON's true/false (and a Parquet boolean column) are no numbers, although Python's
    bool is an int: refuse them rather than read 1/0."""
    if isinstance(value, bool):
        raise ValueError(
            f"expected {expected}, got the boolean {'true' if value else 'false'} "
            "(a boolean is not a number: annotate the field bool, or give 1/0)"
        )


def _to_int(value: object) -> int:
    _not_a_number(value, "an integer")
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if (  # a Parquet DECIMAL(p, 0) column: how files carry integers beyond 64 bits
        isinstance(value, Decimal)
        and value.is_finite()
        and value == value.to_integral_value()
        and value.adjusted() < _MAX_DIGITS
    ):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if _INT_TEXT.match(text):
            return int(text.split(".")[0])
    raise ValueError(f"expected an integer, got {_show(value)}")


def _to_float(value: object) -> float:
    _not_a_number(value, "a number")
    number: float | None = None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, Decimal) and value.is_finite():
        number = float(value)
    elif isinstance(value, str) and _FLOAT_TEXT.match(value.strip()):
        number = float(value.strip())
    if number is None:
        raise ValueError(f"expected a number, got {_show(value)}")
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {_show(value)}")
    return number


def _to_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in _BOOL_TEXT:
        return _BOOL_TEXT[value.lower()]
    raise ValueError(f"expected a boolean, got {_show(value)}")


NOT_INT64 = "does not fit SageMaker's 64-bit Integral"


def _fits_int64(value: object) -> bool:
    """An Integral key part within 64 bits: the store (and SageMaker) hold no other."""
    return isinstance(value, int) and INT64_MIN <= value <= INT64_MAX


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class GroupRuntime:
    """Everything needed to turn raw records of one group into stored records.

    ``columns`` is the group's FeatureDefinitions in order: (name, kind, collection, dimension).
    ``features`` is in compute order (dependencies first).
    """

    name: str
    identifier: str
    keys: tuple[str, ...]
    event_time: str
    event_time_kind: str
    fields: tuple[FieldDef, ...]
    features: tuple[FeatureDef, ...]
    columns: tuple[tuple[str, str, str | None, int | None], ...]
    ttl_seconds: int | None = None
    nan_is_missing: bool = True
    """a transformation's NaN is a missing value (a row feature's); False: a reject (an
    aggregation's value function says "no contribution" with None, and NaN is a number no
    window can aggregate)"""
    _column_types: dict[str, tuple[str, str | None, int | None]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._column_types = {n: (k, c, d) for n, k, c, d in self.columns}

    # ---------------------------------------------------------------- raw -> record

    def validate(self, raw: Mapping[str, object]) -> dict[str, object]:
        """Check and coerce the raw fields; raise RecordError naming every bad field, in
        definition order.

        A missing value (absent, None, NaN, or empty text) of a required field is an error,
        whatever its type: a CSV cell cannot tell an empty string from no value, so a required
        String field is never empty, from any source. An optional field's missing value is
        None, except that an optional String field keeps empty text as ``""``."""
        if not isinstance(raw, Mapping):
            raise RecordError("<record>", f"expected an object with fields, got {_show(raw)}")
        out: dict[str, object] = {}
        problems: list[tuple[str, str]] = []
        for f in self.fields:
            value = raw.get(f.name, _MISSING)
            empty = isinstance(value, str) and value == ""
            if empty or _is_missing(value):
                if f.optional:
                    out[f.name] = "" if empty and f.type == "str" else None
                elif empty and f.type == "str" and f.name in self.keys:
                    problems.append((f.name, "record identifier is empty"))
                elif isinstance(value, float):
                    problems.append((f.name, "missing required field (NaN is no value)"))
                else:
                    problems.append((f.name, "missing required field"))
                continue
            if f.name == self.event_time and isinstance(value, date):
                value = event_time_of(self.event_time_kind, value)
            try:
                out[f.name] = coerce(f.type, value)
            except ValueError as exc:
                problems.append((f.name, str(exc)))
                continue
            if f.name in self.keys and f.type == "int" and not _fits_int64(out[f.name]):
                problems.append((f.name, f"integer {out[f.name]} {NOT_INT64}"))
                continue
            if f.name == self.event_time:
                try:
                    parse_event_time(self.event_time_kind, out[f.name])
                except (TypeError, ValueError) as exc:
                    problems.append((f.name, str(exc)))
        if problems:
            raise RecordError.of(problems)
        return out

    def transform(self, valid: Mapping[str, object]) -> dict[str, object]:
        """Compute every feature from validated raw fields, in dependency order."""
        values: dict[str, object] = {}
        for feat in self.features:
            args = {
                p: (values[p] if kind == "feature" else valid.get(p)) for p, kind in feat.params
            }
            try:
                result = feat.fn(**args)
            except ConfigurationError:
                raise  # not this record's fault: the run stops (fsgen.runtime.errors)
            except Exception as exc:
                raise TransformError(feat.name, exc, _user_frame(exc)) from exc
            values[feat.name] = self._check_value(feat, result)
        return values

    def _check_value(self, feat: FeatureDef, value: object) -> object:
        if _is_missing(value):
            if not self.nan_is_missing and isinstance(value, float):
                raise TransformError.returned(
                    feat.name,
                    "nan",
                    "a NaN cannot be aggregated (return None for an event that does not "
                    "contribute)",
                    _defined_at(feat.fn),
                )
            return None
        try:
            encode_value(feat.kind, value, feat.collection, feat.dimension)
        except (TypeError, ValueError) as exc:
            raise TransformError.returned(
                feat.name, _show(value), str(exc), _defined_at(feat.fn)
            ) from None
        if feat.collection is None:
            if feat.kind == INTEGRAL:
                return int(value)  # type: ignore[call-overload]
            if feat.kind == FRACTIONAL:
                return float(value)  # type: ignore[arg-type]
            return value
        items = list(value)  # type: ignore[call-overload]
        conv: Callable[[Any], object] = (
            int if feat.kind == INTEGRAL else float if feat.kind == FRACTIONAL else str
        )
        items = [conv(v) for v in items]
        if feat.collection == "Set":
            items = sorted(set(items))  # type: ignore[type-var]
        return items

    def process(self, raw: Mapping[str, object]) -> dict[str, object]:
        """Raw record -> stored record: identifier, keys, canonical event time, features."""
        valid = self.validate(raw)
        record: dict[str, object] = {}
        if len(self.keys) > 1:
            record[self.identifier] = composite_identifier([valid[k] for k in self.keys])
        for key in self.keys:
            record[key] = valid[key]
        seconds = parse_event_time(self.event_time_kind, valid[self.event_time])
        try:
            canonical = format_event_time(self.event_time_kind, seconds)
        except (ValueError, OverflowError):  # in UTC it falls outside years 1..9999
            raise RecordError(
                self.event_time, outside_years(self.event_time_kind, seconds)
            ) from None
        record[self.event_time] = canonical
        record.update(self.transform({**valid, self.event_time: canonical}))
        return record

    def event_seconds(self, record: Mapping[str, object]) -> float:
        return parse_event_time(self.event_time_kind, record[self.event_time])

    # ---------------------------------------------------------------- SageMaker records

    def to_sagemaker(self, record: Mapping[str, object]) -> list[dict[str, object]]:
        """A stored record as PutRecord's ``Record``; missing values are left out."""
        out: list[dict[str, object]] = []
        for name, kind, collection, dimension in self.columns:
            value = record.get(name)
            if _is_missing(value):
                continue
            encoded = encode_value(kind, value, collection, dimension)
            key = "ValueAsStringList" if collection else "ValueAsString"
            out.append({"FeatureName": name, key: encoded})
        return out

    def from_sagemaker(self, record: Iterable[Mapping[str, object]]) -> dict[str, object]:
        """GetRecord's ``Record`` back to native values (unknown names are ignored)."""
        out: dict[str, object] = {}
        for entry in record:
            name = str(entry["FeatureName"])
            if name not in self._column_types:
                continue
            kind, collection, _ = self._column_types[name]
            encoded = entry.get("ValueAsStringList") if collection else entry.get("ValueAsString")
            out[name] = decode_value(kind, encoded, collection)  # type: ignore[arg-type]
        return out

    def record_id(self, record: Mapping[str, object]) -> str:
        return str(record[self.identifier])


def composite_identifier(parts: list[object]) -> str:
    """A lossless, unambiguous record identifier for a composite key: each part is prefixed
    by its length, so ('1', '23') and ('12', '3') never collide."""
    return "".join(f"{len(str(p))}:{p};" for p in parts)


_RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))


def _user_frame(exc: BaseException) -> str:
    """file:line of the innermost frame outside this runtime, to point at the user's code
    (relative to the working directory when below it)."""
    tb = exc.__traceback__
    where = ""
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.startswith(_RUNTIME_DIR):
            where = f"{_shown_path(filename)}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def _defined_at(fn: Callable[..., object]) -> str:
    """file:line where ``fn`` is defined (its first decorator line, as the spec locates it)."""
    code = getattr(fn, "__code__", None)
    return f"{_shown_path(code.co_filename)}:{code.co_firstlineno}" if code else ""


def _shown_path(filename: str) -> str:
    """``filename`` relative to the working directory when below it."""
    try:
        shown = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if shown.startswith("..") else shown
