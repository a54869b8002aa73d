"""The stream step's pre-built JSON encoders give exactly what ``json.dumps`` gives: the
content hash (:func:`fsgen.runtime.aggregate.event_hash`, and :func:`item_hash` of sorted
pairs, which the stream calls) against the hash of ``json.dumps`` with its definition's
arguments, and a state's string against ``json.dumps`` of its body (format 3)."""

from __future__ import annotations

import hashlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st
from test_aggregation_property import DEFS

from fsgen.runtime import aggcodec
from fsgen.runtime.aggregate import (
    INTEGRAL,
    STRING,
    AggregationState,
    event_hash,
    item_hash,
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)


def oracle_hash(identifier: object, event_time: int, values: dict[str, object]) -> str:
    payload = json.dumps(
        [identifier, event_time, sorted(values.items())], separators=(",", ":"), default=repr
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.text(), st.integers()),
    st.integers(-(2**62), 2**62),
    st.dictionaries(st.text(min_size=1, max_size=8), scalars, max_size=4),
)
def test_the_content_hash_is_that_of_json_dumps(
    identifier: object, event_time: int, values: dict[str, object]
) -> None:
    expected = oracle_hash(identifier, event_time, values)
    assert event_hash(identifier, event_time, values) == expected
    assert item_hash(identifier, event_time, sorted(values.items())) == expected


def test_a_value_json_cannot_encode_hashes_by_its_repr() -> None:
    values = {"v": {1, 2}}
    assert event_hash("c", 1, values) == oracle_hash("c", 1, values)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(range(len(DEFS))),
    st.lists(
        st.tuples(
            st.integers(0, 40 * 3_600_000_000),
            st.one_of(st.floats(-1e6, 1e6), st.integers(-1000, 1000)),
        ),
        max_size=12,
    ),
)
def test_a_state_string_is_json_dumps_of_its_body(
    which: int, events: list[tuple[int, float]]
) -> None:
    d = DEFS[which]
    state = AggregationState(d)
    for seq, (t, value) in enumerate(events):
        v: object = value
        if d.value_kind == INTEGRAL:
            v = int(value)
        elif d.value_kind == STRING:
            v = f"s{int(value) % 5}é"
        else:
            v = float(value)
        state.apply(t, seq, f"h{seq}", v)  # type: ignore[arg-type]
    text = state.encode()
    body = aggcodec._body(
        d,
        state.watermark,
        state.max_sequence,
        sorted(state.tiles),
        [state.tiles[k] for k in sorted(state.tiles)],
        state.frontier,
        state.prefix,
    )
    expected = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    assert text == expected
    assert AggregationState.decode(d, text).encode() == text
