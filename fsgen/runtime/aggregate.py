"""Time-window aggregation state: tiles, their partial states, merge, finalize and encoding.

Standard library only, and nothing from the rest of fsgen: the stream handler (in a Lambda)
updates this state per event, the online store keeps it encoded in String features, and the
generated inference parser decodes, merges and finalizes it at request time.

Semantics (README "Aggregations"), with times as integer epoch microseconds:

- A window w with hop h answers at query time T over ``[floor_h(T - w), T)``; lifetime has no
  start. An event at exactly T is not included.
- Tile k holds the partial state of the events in ``[k*h, (k+1)*h)``. Partials are *exact* and
  canonical: counts and sums are integers or dyadic rationals ``m * 2**e`` (every double is one),
  so merging in any order gives the same bits, and a mean, variance or sum is rounded once, at
  finalization. min/max are kept as values (never derived by subtraction); last / last-n keep
  the greatest ``(event time, sequence, content hash)`` keys; count-distinct keeps the n smallest
  distinct values, so ``min(distinct values, n)`` is exact.
- Order is total: ``(event time, sequence, content hash)``. An event whose sequence is not above
  the highest sequence already applied to the state is a replay and changes nothing.
- The *watermark* is the newest event time applied to the state. An event older than
  ``watermark - allowed lateness`` is rejected (:data:`LATE`); a late event within it updates the
  tile of its own event time. Tiles older than ``watermark - (largest window + lateness)`` are
  folded into the lifetime prefix (or dropped when the definition has no lifetime window).
- Events at exactly the watermark are kept raw (the *frontier*) until a newer event arrives, so
  a read at T equal to the watermark excludes them exactly. Reads are exact for every
  ``T >= watermark`` (serving reads at "now"); an earlier T is answered as of the watermark.
"""

from __future__ import annotations

import hashlib
import json
import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import accumulate, pairwise
from typing import Any

INTEGRAL, FRACTIONAL, STRING = "Integral", "Fractional", "String"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MICROS = 1_000_000
#: SageMaker's limit on one record (all features); the state strings of a group share it.
MAX_RECORD_BYTES = 350 * 1024
FORMAT_VERSION = 3

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

APPLIED, DUPLICATE, LATE = "applied", "duplicate", "late"

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


# --------------------------------------------------------------------------- exact numbers

Dyadic = tuple[int, int]  # m * 2**e, m odd or zero (then e == 0)


def _norm(m: int, e: int) -> Dyadic:
    if m == 0:
        return (0, 0)
    tz = (m & -m).bit_length() - 1
    return (m >> tz, e + tz)


def dyadic(x: int | float) -> Dyadic:
    if isinstance(x, int):
        return _norm(x, 0)
    num, den = x.as_integer_ratio()
    return _norm(num, 1 - den.bit_length())


def _add(a: Sequence[int], b: Sequence[int]) -> Dyadic:
    m1, e1 = a
    m2, e2 = b
    if m1 == 0:
        return (m2, e2)
    if m2 == 0:
        return (m1, e1)
    e = min(e1, e2)
    return _norm((m1 << (e1 - e)) + (m2 << (e2 - e)), e)


def _ratio(m: int, e: int, divisor: int = 1) -> float:
    """``m * 2**e / divisor`` rounded once to the nearest double (Python's int division)."""
    try:
        return (m << e) / divisor if e >= 0 else m / (divisor << -e)
    except OverflowError:
        return math.copysign(math.inf, m)


#: An exact number in compact form: an int; a double; a list of doubles whose exact sum it is
#: (non-overlapping, largest first, like math.fsum's partials); or [m, e] ints = m * 2**e when
#: it lies beyond the double range. Most tiles hold a double.
Exact = int | float | list[float] | list[int]


def _exact(m: int, e: int) -> Exact:
    """The compact form of ``m * 2**e``."""
    if m.bit_length() <= 53 and e >= -1074 and m.bit_length() + e <= 1024:
        return math.ldexp(m, e)
    sign, rest, out = (-1 if m < 0 else 1), abs(m), []
    try:
        while rest:
            shift = max(rest.bit_length() - 53, 0)
            top = rest >> shift
            if e + shift + (top & -top).bit_length() - 1 < -1074:
                return [m, e]  # a part below the smallest subnormal: no double holds it
            out.append(sign * math.ldexp(top, e + shift))
            rest -= top << shift
    except OverflowError:
        return [m, e]
    return out


def _dy(x: Exact) -> Dyadic:
    if isinstance(x, list):
        if x and isinstance(x[0], int):
            return (x[0], x[1])  # type: ignore[return-value]
        acc: Dyadic = (0, 0)
        for part in x:
            acc = _add(acc, dyadic(part))
        return acc
    return dyadic(x)


def _exact_sum(parts: Sequence[Exact], integral: bool) -> Exact:
    """The exact sum of exact numbers, in compact form (ints stay ints)."""
    if integral:
        return sum(parts)  # type: ignore[arg-type]
    acc: Dyadic = (0, 0)
    for x in parts:
        acc = _add(acc, _dy(x))
    return _exact(*acc)


def _round(parts: Sequence[Exact], integral: bool) -> int | float:
    """The exact sum of ``parts`` as an int, or rounded once to a double."""
    if integral:
        return sum(parts)  # type: ignore[arg-type]
    flat: list[float] = []
    for x in parts:
        if type(x) is float:
            flat.append(x)
        elif x and isinstance(x[0], float):  # type: ignore[index]
            flat += x  # type: ignore[arg-type]
        else:
            m, e = _dy(_exact_sum(parts, False))
            return _ratio(m, e)
    try:
        return math.fsum(flat)  # correctly rounded, whatever the order
    except OverflowError:
        m, e = _dy(_exact_sum(parts, False))
        return _ratio(m, e)


# --------------------------------------------------------------------------- partial states
# A partial is JSON-native (ints, strings, floats, lists) so a state encodes as compact JSON.
# Each function has unit (one event), merge (two partials, commutative and associative, with a
# canonical result) and final (partial -> feature value); None is the empty partial.


def _unit(d: AggregationDef, key: Key, value: Any) -> Partial:
    f = d.function
    if f == "count":
        return 1
    if f == "sum":
        return value
    if f == "mean":
        return [1, value]
    if f in ("variance", "variance_pop", "stddev", "stddev_pop"):
        if d.value_kind == INTEGRAL:
            return [1, value, value * value]
        m, e = dyadic(value)
        return [1, value, _exact(*_norm(m * m, 2 * e))]
    if f in ("min", "max"):
        return value
    if f in ("last", "last_n"):
        entry = [key[0], key[1], key[2], value]
        return entry if f == "last" else [entry]
    return [value]  # count_distinct


def _merge(d: AggregationDef, a: Partial, b: Partial) -> Partial:
    if a is None:
        return b
    if b is None:
        return a
    f = d.function
    if f == "count":
        return a + b
    integral = d.value_kind == INTEGRAL
    if f == "sum":
        return _exact_sum([a, b], integral)
    if f == "mean":
        return [a[0] + b[0], _exact_sum([a[1], b[1]], integral)]
    if f in ("variance", "variance_pop", "stddev", "stddev_pop"):
        return [
            a[0] + b[0],
            _exact_sum([a[1], b[1]], integral),
            _exact_sum([a[2], b[2]], integral),
        ]
    if f == "min":
        return min(a, b)
    if f == "max":
        return max(a, b)
    if f == "last":
        return a if a[:3] >= b[:3] else b
    if f == "last_n":
        merged = sorted([*a, *b], key=lambda x: x[:3], reverse=True)
        if d.distinct:
            seen: set[object] = set()
            unique = []
            for x in merged:
                if x[3] not in seen:
                    seen.add(x[3])
                    unique.append(x)
            merged = unique
        return merged[: d.n]
    return sorted({*a, *b})[: d.n]


def _final(d: AggregationDef, p: Partial) -> object:
    f = d.function
    if f == "count":
        return p or 0
    if f == "count_distinct":
        return len(p) if p else 0
    if f == "last_n":
        return [x[3] for x in p] if p else []
    integral = d.value_kind == INTEGRAL
    if f == "sum":
        if p is None:
            return 0 if integral else 0.0
        if integral:
            return p if INT64_MIN <= p <= INT64_MAX else None
        return _round([p], False)
    if p is None:
        return None
    if f in ("min", "max"):
        return p
    if f == "last":
        return p[3]
    if f == "mean":
        return _round([p[1]], integral) / p[0]
    n = p[0]
    sample = f in ("variance", "stddev")
    if sample and n < 2:
        return None
    m1, e1 = _dy(p[1])
    m2, e2 = _dy(p[2])
    base = min(e2, 2 * e1)
    num = n * (m2 << (e2 - base)) - ((m1 * m1) << (2 * e1 - base))
    var = _ratio(num, base, n * (n - 1) if sample else n * n)
    return math.sqrt(var) if f.startswith("stddev") else var


def _final_many(d: AggregationDef, parts: list[Partial]) -> object:
    """The feature value of merged partials ``parts``, oldest tile first (the read path)."""
    if not parts:
        return _final(d, None)
    f = d.function
    if f == "count":
        return sum(parts)
    if f == "sum":
        return (
            _final(d, _exact_sum(parts, True)) if d.value_kind == INTEGRAL else _round(parts, False)
        )
    if f == "mean":
        n = sum(p[0] for p in parts)
        return _round([p[1] for p in parts], d.value_kind == INTEGRAL) / n
    if f == "min":
        return min(parts)
    if f == "max":
        return max(parts)
    if f == "last":
        return parts[-1][3]
    if f == "last_n" and not d.distinct:
        out: list[object] = []
        for p in reversed(parts):
            out += [x[3] for x in p]
            if len(out) >= (d.n or 0):
                break
        return out[: d.n]
    acc: Partial = None
    for p in parts:
        acc = _merge(d, acc, p)
    return _final(d, acc)


def coerce_value(kind: str, value: object) -> Value | None:
    """The value an event contributes, canonical (-0.0 becomes 0.0); None contributes nothing.

    Raises AggregationError for a value of the wrong type or a non-finite number, which the
    caller rejects with the event's position.
    """
    if value is None:
        return None
    if kind == INTEGRAL:
        if isinstance(value, bool) or not isinstance(value, int):
            raise AggregationError(f"expected an integer to aggregate, got {value!r}")
        if not INT64_MIN <= value <= INT64_MAX:
            raise AggregationError(f"integer {value} does not fit 64 bits")
        return value
    if kind == FRACTIONAL:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise AggregationError(f"expected a number to aggregate, got {value!r}")
        number = float(value)
        if not math.isfinite(number):
            raise AggregationError(f"cannot aggregate the non-finite number {value!r}")
        return number + 0.0
    if not isinstance(value, str):
        raise AggregationError(f"expected a string to aggregate, got {value!r}")
    return value


#: ``json.dumps(x, separators=(",", ":"), default=repr)``, built once (a call of json.dumps
#: with arguments builds an encoder each time)
_HASH_JSON = json.JSONEncoder(separators=(",", ":"), default=repr).encode
#: the state encoder: compact, UTF-8 as is, no NaN (a partial never holds one)
_STATE_JSON = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False
).encode


def event_hash(identifier: object, event_time: int, values: Mapping[str, object]) -> str:
    """The stable content hash that breaks ties between equal (event time, sequence) keys."""
    payload = _HASH_JSON([identifier, event_time, sorted(values.items())])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


# --------------------------------------------------------------------------- state


@dataclass
class AggregationState:
    """The tiled state of one aggregation for one entity (one String feature online)."""

    definition: AggregationDef
    watermark: int | None = None
    max_sequence: int = -1
    tiles: dict[int, Partial] = field(default_factory=dict)
    frontier: list[list[Any]] = field(default_factory=list)  # [seq, hash, value] at watermark
    prefix: Partial = None
    evicted: int | None = field(default=None, repr=False, compare=False)
    """every tile below this index has been evicted (None: not known), so an event that does
    not move the eviction horizon past a tile boundary costs no scan of the tiles"""

    # ------------------------------------------------------------------ writing

    def apply(self, event_time: int, sequence: int, content_hash: str, value: Value | None) -> str:
        """Apply one event as the stream does: APPLIED, DUPLICATE (a replay) or LATE."""
        if sequence <= self.max_sequence:
            return DUPLICATE
        wm = self.watermark
        if wm is not None and event_time < wm - self.definition.lateness:
            return LATE
        self.max_sequence = sequence
        self._place(event_time, sequence, content_hash, value)
        return APPLIED

    def late_reason(self, event_time: int) -> str:
        d, wm = self.definition, self.watermark or 0
        return (
            f"event time {_iso(event_time)} is {_span(wm - event_time)} older than the newest "
            f"event ({_iso(wm)}) of this entity; aggregation {d.name!r} allows "
            f"{_span(d.lateness)}"
        )

    def _place(self, t: int, seq: int, content_hash: str, value: Value | None) -> None:
        wm = self.watermark
        if wm is None or t > wm:
            self._fold_frontier()
            self.watermark = t
            self._evict()
        if value is None:
            return
        if t == self.watermark:
            self.frontier.append([seq, content_hash, value])
            return
        self._add_to_tile(t, seq, content_hash, value)

    def apply_accepted(self, events: Sequence[tuple[int, int, str, Value | None]]) -> None:
        """Apply events the caller has accepted -- each sequence above the state's and the
        previous one's, none late -- in one pass: the watermark moves once, the frontier is
        folded and the tiles evicted once, each event lands once.

        It leaves the state :meth:`_place` of each event in turn leaves (the stream's arrival
        order): partials merge exactly and canonically, so a tile's or the prefix's content
        does not depend on the order its events came in, nor on whether an event went to its
        tile before that tile was folded into the prefix or straight there; the frontier
        keeps the events at the final watermark in the given order, which is theirs by
        sequence."""
        if not events:
            return
        if len(events) == 1:
            newest, top = events[0][0], events[0][1]
        else:
            newest, top = max([e[0] for e in events]), max([e[1] for e in events])
        wm = self.watermark
        if wm is None or newest > wm:
            self.watermark = newest  # the final horizon first: below it a unit goes to the prefix
            if self.frontier:
                assert wm is not None
                for seq, content_hash, value in self.frontier:
                    self._add_to_tile(wm, seq, content_hash, value)
                self.frontier = []
            self._evict()
            wm = newest
        frontier = self.frontier
        for t, seq, content_hash, value in events:
            if value is None:
                continue
            if t == wm:
                frontier.append([seq, content_hash, value])
            else:
                self._add_to_tile(t, seq, content_hash, value)
        if top > self.max_sequence:
            self.max_sequence = top

    def _add_to_tile(self, t: int, seq: int, content_hash: str, value: Value) -> None:
        d = self.definition
        k = t // d.hop
        unit = _unit(d, (t, seq, content_hash), value)
        if self.watermark is not None and (k + 1) * d.hop <= self.watermark - d.retention:
            if d.has_lifetime:
                self.prefix = _merge(d, self.prefix, unit)
            return
        self.tiles[k] = _merge(d, self.tiles.get(k), unit)

    def _fold_frontier(self) -> None:
        if self.watermark is None:
            return
        for seq, content_hash, value in self.frontier:
            self._add_to_tile(self.watermark, seq, content_hash, value)
        self.frontier = []

    def _evict(self) -> None:
        d = self.definition
        assert self.watermark is not None
        bound = (self.watermark - d.retention) // d.hop  # (k + 1) * hop <= horizon
        if self.evicted is not None and bound <= self.evicted:
            return  # tiles below it were evicted and none is added there (_add_to_tile)
        self.evicted = bound
        if not self.tiles or min(self.tiles) >= bound:
            return  # nothing to evict (min over the keys runs at C speed)
        for k in sorted([k for k in self.tiles if k < bound]):
            tile = self.tiles.pop(k)
            if d.has_lifetime:
                self.prefix = _merge(d, self.prefix, tile)

    @classmethod
    def rebuild(
        cls, definition: AggregationDef, events: Iterable[tuple[int, int, str, Value | None]]
    ) -> AggregationState:
        """The state from an event history (the batch backfill): every distinct event counts,
        in the total order, whatever order it arrived in; lateness does not apply."""
        state = cls(definition)
        for t, seq, content_hash, value in sorted(set(events), key=lambda e: e[:3]):
            state._place(t, seq, content_hash, value)
            state.max_sequence = max(state.max_sequence, seq)
        return state

    # ------------------------------------------------------------------ reading

    def finalize(self, query_time: int) -> dict[str, object]:
        """Feature name -> value at ``query_time`` (µs) for each window of the definition."""
        d = self.definition
        wm = self.watermark
        t = query_time if wm is None else max(query_time, wm)
        tiles = self.tiles
        if wm is not None and t > wm and self.frontier:
            tiles = dict(tiles)
            k = wm // d.hop
            for seq, content_hash, value in self.frontier:
                tiles[k] = _merge(d, tiles.get(k), _unit(d, (wm, seq, content_hash), value))
        keys = sorted(tiles)
        parts = [tiles[k] for k in keys]  # oldest first
        k_query = t // d.hop
        answers: dict[int | None, object] = {}
        for w in d.windows:
            if w is not None and w not in answers:
                answers[w] = _final_many(d, parts[bisect_left(keys, k_query - w // d.hop) :])
        if d.has_lifetime:
            answers[None] = _final_many(d, parts if self.prefix is None else [self.prefix, *parts])
        return {name: answers[w] for name, w in zip(d.feature_names, d.windows, strict=True)}

    # ------------------------------------------------------------------ encoding

    def encode(self) -> str:
        """The state as one String feature value: compact JSON, lossless (floats by repr),
        tiles column-wise (see :func:`_body`). The state is left canonical: equal to what
        decoding the string gives (tiles no read can need are dropped, see :meth:`_needed`)."""
        keys, parts, prefix = self._needed()
        if len(keys) != len(self.tiles) or prefix is not self.prefix:
            self.tiles = dict(zip(keys, parts, strict=True))
            self.prefix = prefix
        return _STATE_JSON(_body(self, keys, parts, prefix))

    def _needed(self) -> tuple[list[int], list[Partial], Partial]:
        """The tiles (keys, partials, oldest first) and prefix a read can still need. For last /
        last_n, entries behind the newest n (the frontier aside, which a read at the watermark
        excludes) can never be an answer again, nor can a late event landing behind them; so the
        encoded state is canonical and small."""
        d = self.definition
        tiles = self.tiles
        keys = sorted(tiles)
        parts = [tiles[k] for k in keys]
        if d.function not in ("last", "last_n"):
            return keys, parts, self.prefix
        need, found = d.n or 1, 0
        seen: set[object] = set()
        for i in range(len(keys) - 1, -1, -1):
            entries = [parts[i]] if d.function == "last" else parts[i]
            if d.distinct:
                seen.update(x[3] for x in entries)
                found = len(seen)
            else:
                found += len(entries)
            if found >= need:
                return keys[i:], parts[i:], None
        return keys, parts, self.prefix

    @classmethod
    def decode(cls, definition: AggregationDef, text: str | None) -> AggregationState:
        """The state a String feature holds; None or '' is the empty state."""
        if not text:
            return cls(definition)
        read = _Read.of(definition, text)
        width = _WIDTH.get(definition.function, 0)
        parts = read.cols[0] if not width else [list(p) for p in zip(*read.cols, strict=True)]
        tiles = dict(zip(read.keys, parts, strict=True))
        return cls(definition, read.watermark, read.max_sequence, tiles, read.frontier, read.prefix)


#: functions whose tile partial is a fixed-length list, by its length: the encoding stores
#: such tiles as that many columns (one list of counts, one of sums, ...), every other
#: function's partials as one column
_WIDTH = {"mean": 2, "variance": 3, "variance_pop": 3, "stddev": 3, "stddev_pop": 3, "last": 4}


def _body(state: AggregationState, keys: list[int], parts: list[Partial], prefix: Partial) -> list:
    """The JSON body of a state, format 3: ``[3, fingerprint, watermark, max sequence, tile
    keys as differences (the first one as is), columns, frontier, prefix]``. Flat columns of
    numbers decode into few Python objects (cheap to parse, little for the garbage collector)
    and let a read sum a window's slice at C speed."""
    width = _WIDTH.get(state.definition.function, 0)
    if not width:
        cols: list[list[Any]] = [parts]
    elif parts:
        cols = [list(c) for c in zip(*parts, strict=True)]
    else:
        cols = [[] for _ in range(width)]
    deltas = [b - a for a, b in pairwise(keys)]
    return [
        FORMAT_VERSION,
        state.definition.fingerprint,
        state.watermark,
        state.max_sequence,
        keys[:1] + deltas,
        cols,
        state.frontier,
        prefix,
    ]


@dataclass
class _Read:
    """A decoded state as the read path keeps it: tile keys and the partials column-wise."""

    definition: AggregationDef
    watermark: int | None
    max_sequence: int
    keys: list[int]
    cols: list[list[Any]]
    frontier: list[list[Any]]
    prefix: Partial

    @classmethod
    def of(cls, d: AggregationDef, text: str) -> _Read:
        """Parse a state string; refuses an unreadable one, another format or another
        definition's state (with the backfill hint)."""
        try:
            body = json.loads(text)
            version = body[0] if isinstance(body, list) and body else None
        except (ValueError, TypeError, RecursionError) as exc:
            raise AggregationError(f"state of {d.name!r} is not readable: {exc}") from None
        if version != FORMAT_VERSION:
            raise AggregationError(
                f"state of {d.name!r} has format {version!r}, not {FORMAT_VERSION}; "
                "rebuild the states with a backfill (fsgen ingest of the group's events)"
            )
        try:
            _, built_for, wm, max_seq, deltas, cols, frontier, prefix = body
            keys = list(accumulate(deltas))
            width = _WIDTH.get(d.function, 0) or 1
            if len(cols) != width or any(len(c) != len(keys) for c in cols):
                raise ValueError("its tile columns do not match its tiles")
        except (ValueError, TypeError) as exc:
            raise AggregationError(f"state of {d.name!r} is not readable: {exc}") from None
        if built_for != d.fingerprint:
            raise AggregationError(
                f"state of {d.name!r} was built for another definition of it (its "
                "function, windows, hop or lateness changed since); rebuild the states with a "
                "backfill (fsgen ingest of the group's events)"
            )
        return cls(d, wm, max_seq, keys, cols, frontier, prefix)

    def finalize(self, query_time: int) -> dict[str, object]:
        """:meth:`AggregationState.finalize` on the columns: the frontier (when counted) is
        one more part at the watermark's tile, the newest; the prefix one more, the oldest."""
        d, wm = self.definition, self.watermark
        t = query_time if wm is None or query_time > wm else wm
        tail: Partial = None
        if wm is not None and t > wm:
            for seq, content_hash, value in self.frontier:
                tail = _merge(d, tail, _unit(d, (wm, seq, content_hash), value))
        k_query, keys = t // d.hop, self.keys
        answers: dict[int | None, object] = {}
        for w in d.windows:
            if w in answers:
                continue
            if w is None:
                answers[w] = self._answer(0, self.prefix, tail)
            else:
                first = k_query - w // d.hop
                start = bisect_left(keys, first)
                own = tail if wm is not None and wm // d.hop >= first else None
                answers[w] = self._answer(start, None, own)
        return {name: answers[w] for name, w in zip(d.feature_names, d.windows, strict=True)}

    def _answer(self, start: int, head: Partial, tail: Partial) -> object:
        """One window's value from the tiles ``start:``, plus ``head`` (older than every tile)
        and ``tail`` (newer), each None when absent."""
        d, cols = self.definition, self.cols
        f = d.function
        extra = [p for p in (head, tail) if p is not None]
        if f == "count":
            return sum(cols[0][start:]) + sum(extra)
        if f == "sum":
            if d.value_kind == INTEGRAL:
                return _final(d, sum(cols[0][start:]) + sum(extra))
            return _round(cols[0][start:] + extra, False)
        if f == "mean":
            n = sum(cols[0][start:]) + sum(p[0] for p in extra)
            if not n:
                return None
            sums = cols[1][start:] + [p[1] for p in extra]
            return _round(sums, d.value_kind == INTEGRAL) / n
        if f in ("min", "max"):
            values = cols[0][start:] + extra
            return (min(values) if f == "min" else max(values)) if values else None
        if f == "last":
            if tail is not None:
                return tail[3]
            if start < len(cols[3]):
                return cols[3][-1]
            return head[3] if head is not None else None
        parts = (
            cols[0][start:]
            if len(cols) == 1
            else [list(p) for p in zip(*(c[start:] for c in cols), strict=True)]
        )
        if head is not None:
            parts.insert(0, head)
        if tail is not None:
            parts.append(tail)
        return _final_many(d, parts)


def _iso(micros: int) -> str:
    """An epoch-microsecond time as ISO-8601 UTC (for messages)."""
    from datetime import UTC, datetime, timedelta

    try:
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    except OverflowError:
        return f"{micros} µs"
    return moment.isoformat().replace("+00:00", "Z")


def _span(micros: int) -> str:
    """A duration for messages, exact: ``4h10m``, ``15m``, ``1h0.000001s``."""
    whole, frac = divmod(micros, MICROS)
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size:
            out.append(f"{whole // size}{unit}")
            whole %= size
    if frac:
        out.append(f"{whole}.{frac:06d}".rstrip("0") + "s")
    elif whole or not out:
        out.append(f"{whole}s")
    return "".join(out)


def encode_states(states: Sequence[AggregationState]) -> dict[str, str]:
    """State column -> encoded state for one record; refuses a record over 350 KB."""
    out = {s.definition.state_column: s.encode() for s in states}
    size = sum(len(k) + len(v.encode("utf-8")) for k, v in out.items())
    if size > MAX_RECORD_BYTES:
        raise AggregationError(
            f"aggregation state is {size} bytes; a SageMaker record holds at most "
            f"{MAX_RECORD_BYTES} (use a coarser hop or shorter windows)"
        )
    return out


#: Decoded states by (definition, state string), each with its answers by (query tile, read
#: after the watermark): a served record is read many times between two writes, and its
#: answer depends on the read time only through those two (see :func:`finalize_text`).
_CACHE: dict[
    tuple[AggregationDef, str], tuple[_Read, dict[tuple[int, bool], dict[str, object]]]
] = {}
CACHE_ENTRIES = 4096


def finalize_text(d: AggregationDef, text: str | None, query_time: int) -> dict[str, object]:
    """``AggregationState.decode(d, text).finalize(query_time)``, cached.

    The answer at T depends on T only through ``t = max(T, watermark)``: which tile t falls in
    (every window starts ``w / hop`` tiles before it and every stored event is before t) and
    whether t is past the watermark (the frontier's events count then). So the key (state
    string, tile of t, t > watermark) gives the same answer, bit for bit, as decoding and
    finalizing again; lists are copied so a caller cannot change a cached answer."""
    if not text:
        return AggregationState(d).finalize(query_time)
    entry = _CACHE.get((d, text))
    if entry is None:
        if len(_CACHE) >= CACHE_ENTRIES:
            _CACHE.clear()
        entry = _CACHE[(d, text)] = (_Read.of(d, text), {})
    state, answers = entry
    wm = state.watermark
    t = query_time if wm is None or query_time > wm else wm
    key = (t // d.hop, wm is not None and t > wm)
    answer = answers.get(key)
    if answer is None:
        answer = answers[key] = state.finalize(query_time)
    return {k: list(v) if type(v) is list else v for k, v in answer.items()}


def finalize_record(
    definitions: Sequence[AggregationDef], record: Mapping[str, str | None], query_time: int
) -> dict[str, object]:
    """Every aggregation feature of an online record at ``query_time`` (what the parser does)."""
    out: dict[str, object] = {}
    for d in definitions:
        out.update(finalize_text(d, record.get(d.state_column), query_time))
    return out


__all__ = [
    "APPLIED",
    "DUPLICATE",
    "FUNCTIONS",
    "LATE",
    "MAX_RECORD_BYTES",
    "SIZED",
    "AggregationDef",
    "AggregationError",
    "AggregationState",
    "coerce_value",
    "dyadic",
    "encode_states",
    "event_hash",
    "finalize_record",
    "finalize_text",
    "output_kind",
    "window_label",
]
