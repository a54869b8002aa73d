"""Lossless value encoding to and from SageMaker's ``ValueAsString`` / ``ValueAsStringList``.

Invariant (DESIGN semantics 2): ``decode_value(t, encode_value(t, v)) == v`` bit for bit.
Floats use ``repr`` (the shortest string that round-trips), ints plain decimal, strings as is.
Sets are stored sorted and de-duplicated so every path writes the same string list.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

INTEGRAL = "Integral"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
FRACTIONAL = "Fractional"
STRING = "String"

Scalar = int | float | str
Value = Scalar | list[Scalar] | None


def encode_scalar(kind: str, value: object) -> str:
    if kind == INTEGRAL:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise TypeError(f"expected an integer, got {value!r}")
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"integer {value} does not fit SageMaker's 64-bit Integral")
        return str(int(value))
    if kind == FRACTIONAL:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected a number, got {value!r}")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"expected a finite number, got {value!r}")
        return repr(number)
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def decode_scalar(kind: str, text: str) -> Scalar:
    if kind == INTEGRAL:
        return int(text)
    if kind == FRACTIONAL:
        return float(text)
    return text


def encode_value(
    kind: str, value: object, collection: str | None = None, dimension: int | None = None
) -> str | list[str]:
    """Encode a feature value; collections become a list of strings."""
    if collection is None:
        return encode_scalar(kind, value)
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise TypeError(f"expected a {collection} of {kind}, got {value!r}")
    items = [encode_scalar(kind, v) for v in value]  # type: ignore[attr-defined]
    if collection == "Set":
        unique = {decode_scalar(kind, s): s for s in items}
        items = [unique[k] for k in sorted(unique)]  # type: ignore[type-var]
    if collection == "Vector" and dimension is not None and len(items) != dimension:
        raise ValueError(f"expected a vector of dimension {dimension}, got {len(items)} values")
    return items


def decode_value(kind: str, encoded: str | list[str], collection: str | None = None) -> Value:
    if collection is None:
        if not isinstance(encoded, str):
            raise TypeError(f"expected ValueAsString, got {encoded!r}")
        return decode_scalar(kind, encoded)
    if isinstance(encoded, str):
        raise TypeError(f"expected ValueAsStringList, got {encoded!r}")
    return [decode_scalar(kind, s) for s in encoded]


_FRACTION = re.compile(r"[.,]([0-9]+)")
"""the seconds' fraction of an ISO-8601 time (a date has neither '.' nor ',')"""


def parse_event_time(kind: str, value: object) -> float:
    """Epoch seconds of an event time given as ISO-8601 (String) or epoch seconds (Fractional)."""
    if kind == FRACTIONAL:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected epoch seconds, got {value!r}")
        if not math.isfinite(float(value)):
            raise ValueError(f"expected finite epoch seconds, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO-8601 timestamp, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        raise ValueError(
            f"expected an ISO-8601 timestamp like 2024-01-31T12:00:00Z, got {value!r}"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    fraction = _FRACTION.search(value)  # Python keeps 6 digits and drops the rest unread
    if parsed.microsecond % 1000 or (fraction and fraction.group(1)[3:].strip("0")):
        raise ValueError(
            f"timestamp {value!r} is more precise than milliseconds, which SageMaker cannot store"
        )
    return parsed.timestamp()


def format_event_time(kind: str, seconds: float) -> str | float:
    """The canonical stored form: 'YYYY-MM-DDTHH:MM:SS[.mmm]Z' for String, seconds for
    Fractional. Formats SageMaker's PutRecord accepts."""
    if kind == FRACTIONAL:
        return seconds
    whole, millis = divmod(round(seconds * 1000), 1000)
    t = datetime.fromtimestamp(whole, tz=UTC)
    # not strftime: its %Y drops the zero padding of years before 1000 on some platforms
    text = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"
