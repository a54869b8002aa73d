"""Aggregation declarations: parsing ``@group.aggregation(...)`` metadata and its validation rules.

Codes (stable, README "Validation"):

- FS130 unknown aggregation function
- FS131 windows and hop: unreadable duration, no window, a repeated window, a window that is not
  a multiple of the hop
- FS132 allowed lateness: unreadable, negative, or longer than the smallest window
- FS133 the function's return annotation (the aggregated value) does not fit the aggregation,
  or the declared dtype is not what the aggregation produces
- FS134 ``n`` / ``distinct`` missing or given where they mean nothing
- FS135 a group that declares both row features and aggregations
- FS230 the state's worst-case size exceeds a 350 KB SageMaker record
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fsgen.errors import Diagnostic
from fsgen.runtime.aggregate import FUNCTIONS, MAX_RECORD_BYTES, SIZED, output_kind, window_label
from fsgen.spec import AggregationSpec, GroupSpec, ProjectSpec, WindowSpec
from fsgen.types import DType, Fractional, Integral, List, Scalar, String

if TYPE_CHECKING:
    from fsgen.authoring import AggregationDecl

Report = Callable[[tuple[str, str, str | None]], None]
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_VALUE_TYPES = {"int": Integral, "bool": Integral, "float": Fractional, "str": String}
_SCALARS = {Scalar.INTEGRAL: Integral, Scalar.FRACTIONAL: Fractional, Scalar.STRING: String}
#: worst-case encoded bytes of one tile's partial, per function (values assumed <= 64 bytes)
_TILE_BYTES = {
    "count": 32,
    "sum": 64,
    "mean": 80,
    "variance": 150,
    "variance_pop": 150,
    "stddev": 150,
    "stddev_pop": 150,
    "min": 88,
    "max": 88,
    "last": 150,
}
_ENTRY_BYTES = 150  # one [time, sequence, hash, value] entry of last_n
_DISTINCT_BYTES = 70  # one value of count_distinct


@dataclass
class ParsedAggregation:
    value_dtype: DType | None = None
    windows: tuple[WindowSpec, ...] = ()
    hop_seconds: int = 3600
    lateness_seconds: int = 3600
    problems: list[tuple[str, str, str | None]] = field(default_factory=list)


def duration_seconds(value: str | int, *, allow_zero: bool = False) -> int:
    """'7d' -> 604800; ints are seconds. Raises ValueError with a readable message."""
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration: use a number with s, m, h, d or w")
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError(f"{value!r} must be {'>= 0' if allow_zero else 'positive'}")
    return seconds


_FUNCTION_ALIASES = {
    "avg": "mean",
    "average": "mean",
    "std": "stddev",
    "stdev": "stddev",
    "var": "variance",
    "nunique": "count_distinct",
    "distinct_count": "count_distinct",
    "approx_count_distinct": "count_distinct",
    "latest": "last",
    "last_value": "last",
    "minimum": "min",
    "maximum": "max",
    "total": "sum",
}
"""other systems' names for fsgen's functions (SQL, pandas, Tecton, Chronon)"""
_NO_EQUIVALENT = frozenset({"median", "percentile", "quantile", "mode", "approx_percentile"})
"""functions fsgen does not have and whose near names (median ~ mean) would mislead"""


def _close_function(name: object) -> str | None:
    """The function a misspelt or foreign name (``avg``, ``man``) most likely means."""
    if not isinstance(name, str):
        return None
    lower = name.strip().lower()
    if lower in FUNCTIONS:
        return lower
    if lower in _NO_EQUIVALENT:
        return None
    if lower in _FUNCTION_ALIASES:
        return _FUNCTION_ALIASES[lower]
    close = difflib.get_close_matches(lower, list(FUNCTIONS), n=1, cutoff=0.7)
    return close[0] if close else None


def parse_aggregation(decl: AggregationDecl, annotation: str | None) -> ParsedAggregation:
    """Normalize a declaration's metadata; every problem is reported, none raised."""
    out = ParsedAggregation()
    what = f"aggregation {decl.name!r}"
    problem = out.problems.append
    if decl.function not in FUNCTIONS:
        close = _close_function(decl.function)
        problem(
            (
                "FS130",
                f"{what}: unknown function {decl.function!r}",
                (f"did you mean {close!r}? " if close else "") + "one of " + ", ".join(FUNCTIONS),
            )
        )
    try:
        out.hop_seconds = duration_seconds(decl.hop)
    except ValueError as exc:
        problem(("FS131", f"{what}: hop {exc}", None))
    out.windows = _windows(decl, out.hop_seconds, problem)
    if decl.lateness is None:
        # the default is the hop: a bad hop is FS131 already, and a window shorter than the
        # hop is no multiple of it (FS131); neither is the author's lateness to blame
        out.lateness_seconds = out.hop_seconds
    else:
        try:
            out.lateness_seconds = duration_seconds(decl.lateness, allow_zero=True)
        except ValueError as exc:
            problem(("FS132", f"{what}: lateness {exc}", None))
    finite = [w.seconds for w in out.windows if w.seconds is not None]
    if decl.lateness is not None and finite and out.lateness_seconds > min(finite):
        problem(
            (
                "FS132",
                f"{what}: allowed lateness {out.lateness_seconds}s is longer than its smallest "
                f"window ({min(finite)}s)",
                "an event that late could never count in that window",
            )
        )
    _sized(decl, what, problem)
    out.value_dtype = _value_dtype(decl, annotation, what, problem)
    return out


def _windows(decl: AggregationDecl, hop: int, problem: Report) -> tuple[WindowSpec, ...]:
    what = f"aggregation {decl.name!r}"
    if not decl.windows:
        problem(("FS131", f"{what} declares no windows", "e.g. windows=['1d', '7d', 'lifetime']"))
    found: dict[str, WindowSpec] = {}
    for raw in decl.windows:
        if raw == "lifetime":
            spec = WindowSpec(label="lifetime", seconds=None)
        else:
            try:
                seconds = duration_seconds(raw)
            except ValueError as exc:
                hint = "a window is a duration ('1h', '7d') or 'lifetime' (lowercase)"
                problem(("FS131", f"{what}: window {exc}", hint))
                continue
            if seconds % hop:
                problem(
                    (
                        "FS131",
                        f"{what}: window {raw!r} ({seconds}s) is not a multiple of the hop "
                        f"({hop}s)",
                        "windows start on hop boundaries: choose a hop that divides every window",
                    )
                )
            spec = WindowSpec(label=window_label(seconds * 1_000_000), seconds=seconds)
        if spec.label in found:
            problem(("FS131", f"{what}: window {raw!r} is declared twice", None))
        found[spec.label] = spec
    return tuple(sorted(found.values(), key=lambda w: (w.seconds is None, w.seconds or 0)))


def _sized(decl: AggregationDecl, what: str, problem: Report) -> None:
    if decl.function in SIZED:
        n = decl.n
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            problem(("FS134", f"{what}: {decl.function} needs n, a positive int, got {n!r}", None))
    elif decl.n is not None:
        problem(("FS134", f"{what}: n is only for last_n and count_distinct", None))
    if decl.distinct and decl.function != "last_n":
        problem(("FS134", f"{what}: distinct=True is only for last_n", None))


def _value_dtype(
    decl: AggregationDecl, annotation: str | None, what: str, problem: Report
) -> DType | None:
    text = (annotation or "").replace(" ", "").removesuffix("|None").removeprefix("None|")
    value = _VALUE_TYPES.get(text)
    if value is None:
        problem(
            (
                "FS133",
                f"{what}: the function must return the value to aggregate, annotated int, "
                f"float, str or bool (optionally '| None'), got {annotation or 'no annotation'}",
                None,
            )
        )
        return None
    if decl.function not in FUNCTIONS:
        return value
    if value.scalar.value not in FUNCTIONS[decl.function]:
        problem(("FS133", f"{what}: {decl.function} cannot aggregate {value} values", None))
        return value
    scalar, is_list = output_kind(decl.function, value.scalar.value)
    expected = _SCALARS[Scalar(scalar)]
    expected = List(expected) if is_list else expected
    if decl.dtype != expected:
        problem(
            (
                "FS133",
                f"{what}: {decl.function} of {value} values produces {expected}, "
                f"declared {decl.dtype}",
                f"declare @...aggregation({expected}, ...)",
            )
        )
    return value


# --------------------------------------------------------------------------- project rules


def _d(
    agg: AggregationSpec | GroupSpec, code: str, message: str, hint: str | None = None
) -> Diagnostic:
    loc = agg.location
    return Diagnostic(path=loc.path, line=loc.line, code=code, message=message, hint=hint)


def state_bytes(agg: AggregationSpec) -> int:
    """Worst-case encoded size of one entity's state: every retained tile present."""
    finite = [w.seconds for w in agg.windows if w.seconds is not None]
    tiles = (max(finite, default=0) + agg.lateness_seconds) // agg.hop_seconds + 2
    if agg.function == "last_n":
        per_tile = (agg.n or 1) * _ENTRY_BYTES
    elif agg.function == "count_distinct":
        per_tile = (agg.n or 1) * _DISTINCT_BYTES
    else:
        per_tile = _TILE_BYTES.get(agg.function, 150)
    return 64 + tiles * (per_tile + 12) + per_tile


def rule_aggregations(spec: ProjectSpec) -> Iterator[Diagnostic]:
    from fsgen.validate import FEATURE_NAME

    for g in spec.groups:
        if not g.aggregations:
            continue
        if g.features:
            yield _d(
                g,
                "FS135",
                f"group {g.name!r} declares both row features and aggregations",
                hint="declare the aggregations on a group of their own over the same events: "
                "its records are events offline and aggregation states online",
            )
        taken = {f.name: f.location for f in g.features}
        total = 0
        for agg in g.aggregations:
            for name in (*agg.feature_names, agg.state_column, agg.value_column):
                if not FEATURE_NAME.match(name):
                    yield _d(
                        agg,
                        "FS102",
                        f"aggregation {agg.name!r} produces the column {name!r}, which is not a "
                        "valid SageMaker feature name",
                        hint="at most 64 letters, digits, '-' or '_': shorten the name",
                    )
            for name in agg.feature_names:
                if name in taken:
                    yield _d(
                        agg,
                        "FS101",
                        f"duplicate feature name {name!r} in group {g.name!r}",
                        hint=f"also produced at {taken[name]}",
                    )
                taken.setdefault(name, agg.location)
            size = state_bytes(agg)
            total += size
            if size > MAX_RECORD_BYTES:
                yield _d(
                    agg,
                    "FS230",
                    f"aggregation {agg.name!r}: its state can reach {size:,} bytes; a SageMaker "
                    f"record holds at most 350 KB ({MAX_RECORD_BYTES:,} bytes)",
                    hint="use a coarser hop, shorter windows or a smaller n",
                )
        if total > MAX_RECORD_BYTES and all(
            state_bytes(a) <= MAX_RECORD_BYTES for a in g.aggregations
        ):
            yield _d(
                g,
                "FS230",
                f"group {g.name!r}: its aggregation states together can reach {total:,} bytes; "
                f"a SageMaker record holds at most 350 KB ({MAX_RECORD_BYTES:,} bytes)",
                hint="split the aggregations over several groups or coarsen their hops",
            )
        for agg in g.aggregations:
            if not agg.description.strip():
                yield _d(agg, "FS108", f"aggregation {agg.name!r} has no description")
            if len(agg.description) > 255:
                yield _d(agg, "FS202", f"description of aggregation {agg.name!r} is too long")


__all__ = [
    "ParsedAggregation",
    "duration_seconds",
    "parse_aggregation",
    "rule_aggregations",
    "state_bytes",
]
