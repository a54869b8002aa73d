"""Aggregation definitions: the functions, windows and the :class:`AggregationDef` every part of
the state (:mod:`fsgen.runtime.aggregate`), its codec and its read path share.

Standard library only, and nothing from the rest of fsgen (see :mod:`fsgen.runtime.aggregate`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

INTEGRAL, FRACTIONAL, STRING = "Integral", "Fractional", "String"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MICROS = 1_000_000

#: function -> value kinds it accepts
FUNCTIONS: dict[str, tuple[str, ...]] = {
    "count": (INTEGRAL, FRACTIONAL, STRING),
    "sum": (INTEGRAL, FRACTIONAL),
    "mean": (INTEGRAL, FRACTIONAL),
    "min": (INTEGRAL, FRACTIONAL, STRING),
    "max": (INTEGRAL, FRACTIONAL, STRING),
    "variance": (INTEGRAL, FRACTIONAL),
    "variance_pop": (INTEGRAL, FRACTIONAL),
    "stddev": (INTEGRAL, FRACTIONAL),
    "stddev_pop": (INTEGRAL, FRACTIONAL),
    "last": (INTEGRAL, FRACTIONAL, STRING),
    "last_n": (INTEGRAL, FRACTIONAL, STRING),
    "count_distinct": (INTEGRAL, STRING),
}
#: functions that take ``n``
SIZED = frozenset({"last_n", "count_distinct"})

Value = int | float | str
Key = tuple[int, int, str]  # (event time µs, sequence, content hash)
#: a partial state: JSON-native (ints, floats, strings and lists of them); None is empty
Partial = Any


class AggregationError(ValueError):
    """An event or a state string that cannot be used (bad value, corrupt or oversized state)."""


def output_kind(function: str, value_kind: str) -> tuple[str, bool]:
    """(scalar kind, is a list) of the features a function produces from ``value_kind``."""
    if function in ("count", "count_distinct"):
        return INTEGRAL, False
    if function in ("mean", "variance", "variance_pop", "stddev", "stddev_pop"):
        return FRACTIONAL, False
    return value_kind, function == "last_n"


def window_label(window_us: int | None) -> str:
    """The suffix of a window's feature name: 'lifetime', '30d', '12h', '5m', '90s'."""
    if window_us is None:
        return "lifetime"
    if window_us % MICROS:
        return f"{window_us}us"
    seconds = window_us // MICROS
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class AggregationDef:
    """One declared aggregation: a function over several windows sharing one tiled state."""

    name: str
    function: str
    value_kind: str
    windows: tuple[int | None, ...]  # µs, None = lifetime
    hop: int  # µs
    lateness: int  # µs
    n: int | None = None
    distinct: bool = False

    def __post_init__(self) -> None:
        if self.function not in FUNCTIONS:
            raise AggregationError(f"unknown aggregation function {self.function!r}")
        if self.hop <= 0 or self.lateness < 0:
            raise AggregationError("hop must be positive and lateness not negative")
        if any(w is not None and (w <= 0 or w % self.hop) for w in self.windows):
            raise AggregationError("every window must be a positive multiple of the hop")
        if (self.function in SIZED) != (self.n is not None) or (self.n is not None and self.n < 1):
            raise AggregationError(f"{self.function} needs n >= 1 exactly when it takes one")

    @cached_property
    def fingerprint(self) -> str:
        """What a stored state's meaning depends on (function, value kind, windows, hop,
        lateness, n, distinct), hashed short: a state is only read under the definition it was
        built for, so a changed hop or window is never read through old tiles."""
        shape = [self.function, self.value_kind, list(self.windows), self.hop, self.lateness]
        shape += [self.n, self.distinct]
        text = json.dumps(shape, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @cached_property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f"{self.name}_{window_label(w)}" for w in self.windows)

    @cached_property
    def state_column(self) -> str:
        return f"{self.name}__state"

    @property
    def value_column(self) -> str:
        return f"{self.name}__value"

    @cached_property
    def retention(self) -> int:
        """How far behind the watermark tiles are kept (largest finite window + lateness)."""
        finite = [w for w in self.windows if w is not None]
        return max(finite, default=0) + self.lateness

    @cached_property
    def has_lifetime(self) -> bool:
        return None in self.windows
