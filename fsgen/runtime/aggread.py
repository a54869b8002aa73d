"""The read path of aggregation states: a record's String features -> its final feature values.

Standard library only (see :mod:`fsgen.runtime.aggregate`). The generated inference parser,
``fsgen get`` and the skew check read through :func:`finalize_record`; a state is parsed once
into columns (:func:`fsgen.runtime.aggcodec.decode`) and finalized on them, and its answers
are cached by the state string.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fsgen.runtime import aggcodec
from fsgen.runtime.aggdef import INTEGRAL, AggregationDef, Partial
from fsgen.runtime.aggexact import _round
from fsgen.runtime.aggregate import (
    AggregationState,
    _final,
    _final_many,
    _merge,
    _unit,
)


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
        return cls(d, *aggcodec.decode(d, text))

    def finalize(self, query_time: int, names: Collection[str] | None = None) -> dict[str, object]:
        """:meth:`AggregationState.finalize` on the columns, of the features ``names`` only
        (all when None): the frontier (when counted) is one more part at the watermark's tile,
        the newest; the prefix one more, the oldest."""
        d, wm = self.definition, self.watermark
        t = query_time if wm is None or query_time > wm else wm
        tail: Partial = None
        if wm is not None and t > wm:
            for seq, content_hash, value in self.frontier:
                tail = _merge(d, tail, _unit(d, (wm, seq, content_hash), value))
        k_query, keys = t // d.hop, self.keys
        answers: dict[int | None, object] = {}
        out: dict[str, object] = {}
        for name, w in zip(d.feature_names, d.windows, strict=True):
            if names is not None and name not in names:
                continue
            if w not in answers:
                if w is None:
                    answers[w] = self._answer(0, self.prefix, tail)
                else:
                    first = k_query - w // d.hop
                    start = bisect_left(keys, first)
                    own = tail if wm is not None and wm // d.hop >= first else None
                    answers[w] = self._answer(start, None, own)
            out[name] = answers[w]
        return out

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


#: Answers by (definition, state string): the state's watermark and its answers by (query
#: tile, read after the watermark). A served record is read many times between two writes,
#: and its answer depends on the read time only through those two (see
#: :func:`finalize_text`). The decoded columns are not kept: thousands of cached states' lists
#: would stay tracked by the garbage collector, and its passes over them are what made a cold
#: read's p99 several times its median; a read at a new tile decodes the string again.
_CACHE: dict[
    tuple[AggregationDef, str], tuple[int | None, dict[tuple[int, bool], dict[str, object]]]
] = {}
CACHE_ENTRIES = 4096


def finalize_text(
    d: AggregationDef,
    text: str | None,
    query_time: int,
    names: Collection[str] | None = None,
) -> dict[str, object]:
    """``AggregationState.decode(d, text).finalize(query_time)``, cached; of the features
    ``names`` only when given (a full finalize's values of them).

    The answer at T depends on T only through ``t = max(T, watermark)``: which tile t falls in
    (every window starts ``w / hop`` tiles before it and every stored event is before t) and
    whether t is past the watermark (the frontier's events count then). So the key (state
    string, tile of t, t > watermark) gives the same answer, bit for bit, as decoding and
    finalizing again; lists are copied so a caller cannot change a cached answer."""
    need = d.feature_names if names is None else [n for n in d.feature_names if n in names]
    if not text:
        empty = AggregationState(d).finalize(query_time)
        return {k: empty[k] for k in need}
    state: _Read | None = None
    entry = _CACHE.get((d, text))
    if entry is None:
        state = _Read.of(d, text)
        if len(_CACHE) >= CACHE_ENTRIES:
            _CACHE.clear()
        entry = _CACHE[(d, text)] = (state.watermark, {})
    wm, answers = entry
    t = query_time if wm is None or query_time > wm else wm
    key = (t // d.hop, wm is not None and t > wm)
    answer = answers.get(key)
    if answer is None:
        state = state or _Read.of(d, text)
        answer = answers[key] = state.finalize(query_time, names)
    missing = [n for n in need if n not in answer]
    if missing:  # an earlier read asked for other windows of this state
        state = state or _Read.of(d, text)
        answer.update(state.finalize(query_time, missing))
    return {k: list(v) if type(v) is list else v for k in need for v in (answer[k],)}


def finalize_record(
    definitions: Sequence[AggregationDef],
    record: Mapping[str, str | None],
    query_time: int,
    features: Collection[str] | None = None,
) -> dict[str, object]:
    """The aggregation features of an online record at ``query_time`` (what the parser
    does): every one, or those named in ``features`` (the other aggregations' states are not
    decoded, and no window is finalized that was not asked)."""
    out: dict[str, object] = {}
    for d in definitions:
        if features is not None and not any(n in features for n in d.feature_names):
            continue
        out.update(finalize_text(d, record.get(d.state_column), query_time, features))
    return out


__all__ = ["CACHE_ENTRIES", "finalize_record", "finalize_text"]
