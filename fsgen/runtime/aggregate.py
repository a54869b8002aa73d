"""Time-window aggregation state: tiles, their partial states, merge, finalize.

Standard library only, and nothing from the rest of fsgen: the stream handler (in a Lambda)
updates this state per event, the online store keeps it encoded in String features, and the
generated inference parser decodes, merges and finalizes it at request time.

Semantics (README "Aggregations"), with times as integer epoch microseconds:

- A window w with hop h answers at query time T over ``[floor_h(T - w), T)``; lifetime has no
  start. An event at exactly T is not included.
- Tile k holds the partial state of the events in ``[k*h, (k+1)*h)``. Partials are *exact* and
  canonical: counts and sums are integers or dyadic rationals ``m * 2**e`` (every double is one),
  so merging in any order gives the same bits, and a sum or variance is rounded once, at
  finalization (a Fractional mean is that rounded sum divided by the count; a standard
  deviation the square root of the rounded variance). min/max are kept as values (never
  derived by subtraction); last / last-n keep the greatest ``(event time, sequence, content
  hash)`` keys; count-distinct keeps the n smallest distinct values, so
  ``min(distinct values, n)`` is exact.
- Order is total: ``(event time, sequence, content hash)``. An event whose sequence is not above
  the highest sequence already applied to the state is a replay and changes nothing.
- The *watermark* is the newest event time applied to the state. An event older than
  ``watermark - allowed lateness`` is rejected (:data:`LATE`); a late event within it updates the
  tile of its own event time. Tiles older than ``watermark - (largest window + lateness)`` are
  folded into the lifetime prefix (or dropped when the definition has no lifetime window).
- Events at exactly the watermark are kept raw (the *frontier*) until a newer event arrives, so
  a read at T equal to the watermark excludes them exactly. Reads are exact for every
  ``T >= watermark`` (serving reads at "now"); an earlier T is answered as of the watermark.

The parts: :mod:`~fsgen.runtime.aggdef` (the definitions), :mod:`~fsgen.runtime.aggexact` (exact
numbers), this module (partials and the mutable state), :mod:`~fsgen.runtime.aggcodec` (the
String encoding) and :mod:`~fsgen.runtime.aggread` (the read path). Their public names are all
importable from here.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from json.encoder import (  # type: ignore[attr-defined]
    c_make_encoder,
    encode_basestring_ascii,
)
from typing import Any

from fsgen.runtime import aggcodec as _codec
from fsgen.runtime.aggcodec import FORMAT_VERSION, MAX_RECORD_BYTES, encode_states
from fsgen.runtime.aggdef import (
    FRACTIONAL,
    FUNCTIONS,
    INT64_MAX,
    INT64_MIN,
    INTEGRAL,
    MICROS,
    SIZED,
    STRING,
    AggregationDef,
    AggregationError,
    Key,
    Partial,
    Value,
    output_kind,
    window_label,
)
from fsgen.runtime.aggexact import (
    _dy,
    _exact,
    _exact_sum,
    _norm,
    _ratio,
    _round,
    dyadic,
)

APPLIED, DUPLICATE, LATE, OTHER_SOURCE = "applied", "duplicate", "late", "other-source"

SOURCE_BITS = 38
"""a sequence's bits below its source part: ``sequence >> SOURCE_BITS`` names the source it
comes from (a Kinesis shard by its creation minute, see
:func:`fsgen.runtime.aggwrite.kinesis_sequence`; 0 for an emulator's small numbers; a replay's
start) and sequences compare as arrival order only within one source"""


def other_source(sequence: int, top: int) -> bool:
    """Whether an event whose sequence is not above a state's highest applied one (``top``)
    comes from a source older than the one that sequence came from, instead of being a replay
    of an event the state applied: a state cannot tell which events of another source it has,
    so such an event is refused, never taken for a replay (which would drop it unseen)."""
    return top >= 0 and sequence >> SOURCE_BITS < top >> SOURCE_BITS


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
#: the same as the C encoder object, built once (``JSONEncoder.encode`` builds one per call;
#: the circular-reference check it skips cannot apply to an event's identifier and values)
_HASH_ENCODER = (
    None
    if c_make_encoder is None
    else c_make_encoder(None, repr, encode_basestring_ascii, None, ":", ",", False, False, True)
)


def event_hash(identifier: object, event_time: int, values: Mapping[str, object]) -> str:
    """The stable content hash that breaks ties between equal (event time, sequence) keys."""
    return item_hash(identifier, event_time, sorted(values.items()))


def item_hash(identifier: object, event_time: int, items: Sequence[tuple[str, object]]) -> str:
    """:func:`event_hash` of the values given as (name, value) pairs sorted by name."""
    body = [identifier, event_time, items]
    payload = _HASH_JSON(body) if _HASH_ENCODER is None else "".join(_HASH_ENCODER(body, 0))
    return sha256(payload.encode("utf-8")).hexdigest()[:16]


# --------------------------------------------------------------------------- state


#: the state encoder without ``JSONEncoder.encode``'s per-call set-up: the stream encodes
#: every touched state once per batch (:data:`fsgen.runtime.aggcodec.STATE_ENCODER`)
_ENCODER = _codec.STATE_ENCODER


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
        """Apply one event as the stream does: APPLIED, DUPLICATE (a replay), OTHER_SOURCE (a
        sequence of an older source than the state's highest, :func:`other_source`) or LATE."""
        if sequence <= self.max_sequence:
            return OTHER_SOURCE if other_source(sequence, self.max_sequence) else DUPLICATE
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

    def apply_one(self, t: int, seq: int, content_hash: str, value: Value | None) -> None:
        """``apply_accepted([(t, seq, content_hash, value)])``, with no list built: the
        stream's common case, an entity's only event of a batch."""
        wm = self.watermark
        if wm is None or t > wm:
            self.watermark = t
            if self.frontier:
                assert wm is not None
                for fseq, fhash, fvalue in self.frontier:
                    self._add_to_tile(wm, fseq, fhash, fvalue)
                self.frontier = []
            self._evict()
            wm = t
        if value is not None:
            if t == wm:
                self.frontier.append([seq, content_hash, value])
            else:
                self._add_to_tile(t, seq, content_hash, value)
        if seq > self.max_sequence:
            self.max_sequence = seq

    def _add_to_tile(self, t: int, seq: int, content_hash: str, value: Value) -> None:
        d = self.definition
        hop = d.hop
        k = t // hop
        f = d.function  # the two commonest units built here, the rest by _unit
        unit = (
            1
            if f == "count"
            else [1, value]
            if f == "mean"
            else _unit(d, (t, seq, content_hash), value)
        )
        wm = self.watermark
        if wm is not None and (k + 1) * hop <= wm - d.retention:
            if d.has_lifetime:
                self.prefix = _merge(d, self.prefix, unit)
            return
        tiles = self.tiles
        old = tiles.get(k)
        tiles[k] = unit if old is None else _merge(d, old, unit)

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
        """The state as one String feature value (:func:`fsgen.runtime.aggcodec.encode`). The
        state is left canonical: equal to what decoding the string gives (tiles no read can
        need are dropped, see :func:`fsgen.runtime.aggcodec.needed`)."""
        d = self.definition
        keys, parts, prefix = _codec.needed(d, self.tiles, self.prefix)
        if len(keys) != len(self.tiles) or prefix is not self.prefix:
            self.tiles = dict(zip(keys, parts, strict=True))
            self.prefix = prefix
        if _ENCODER is None:
            return _codec.encode(
                d, self.watermark, self.max_sequence, keys, parts, self.frontier, prefix
            )
        body = _codec._body(
            d, self.watermark, self.max_sequence, keys, parts, self.frontier, prefix
        )
        return "".join(_ENCODER(body, 0))

    @classmethod
    def decode(cls, definition: AggregationDef, text: str | None) -> AggregationState:
        """The state a String feature holds; None or '' is the empty state."""
        if not text:
            return cls(definition)
        wm, max_seq, keys, cols, frontier, prefix = _codec.decode(definition, text)
        tiles = _codec.tiles_of(definition, keys, cols)
        return cls(definition, wm, max_seq, tiles, frontier, prefix)


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


def finalize_text(
    d: AggregationDef, text: str | None, query_time: int, names: Collection[str] | None = None
) -> dict[str, object]:
    """``AggregationState.decode(d, text).finalize(query_time)``, cached, of ``names`` only
    when given (:func:`fsgen.runtime.aggread.finalize_text`, which imports this module)."""
    from fsgen.runtime.aggread import finalize_text

    return finalize_text(d, text, query_time, names)


def finalize_record(
    definitions: Sequence[AggregationDef],
    record: Mapping[str, str | None],
    query_time: int,
    features: Collection[str] | None = None,
) -> dict[str, object]:
    """The aggregation features of an online record at ``query_time``, every one or those
    named in ``features`` (what the parser does, :func:`fsgen.runtime.aggread.finalize_record`,
    which imports this module)."""
    from fsgen.runtime.aggread import finalize_record

    return finalize_record(definitions, record, query_time, features)


__all__ = [
    "APPLIED",
    "DUPLICATE",
    "FORMAT_VERSION",
    "FRACTIONAL",
    "FUNCTIONS",
    "INT64_MAX",
    "INT64_MIN",
    "INTEGRAL",
    "LATE",
    "MAX_RECORD_BYTES",
    "MICROS",
    "OTHER_SOURCE",
    "SIZED",
    "SOURCE_BITS",
    "STRING",
    "AggregationDef",
    "AggregationError",
    "AggregationState",
    "Value",
    "coerce_value",
    "dyadic",
    "encode_states",
    "event_hash",
    "finalize_record",
    "finalize_text",
    "item_hash",
    "output_kind",
    "window_label",
]
