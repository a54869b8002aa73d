"""A state string parses to exactly what ``json.loads`` gives it, whichever parser reads it:
orjson where it is installed (with the run-of-digits guard that sends integers beyond 64 bits
to json), json's scanner where it is not (a Lambda deployment zip). Compared by type and, for
floats, bit for bit, on arbitrary JSON documents, on the texts real states encode to, and on
text neither parser accepts (the same error either way)."""

from __future__ import annotations

import json
import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_aggregation_property import DEFS

from fsgen.runtime import aggcodec
from fsgen.runtime.aggdef import AggregationError
from fsgen.runtime.aggregate import INTEGRAL, STRING, AggregationState

# orjson is a dependency of fsgen: the fast path is the one under test
assert aggcodec._fast_loads is not None


def same(a: object, b: object) -> bool:
    """Equal in type and value, floats bit for bit (so -0.0 is not 0.0), recursively."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)  # type: ignore[arg-type]
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))  # type: ignore[arg-type]
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)  # type: ignore[attr-defined]
    return a == b


digits = st.text("0123456789", min_size=1, max_size=40)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # beyond 64 bits too: orjson would read those as floats
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=1e-5, max_value=1e-2),  # reprs like 0.00012345678901234567
    st.text(),
    digits,  # strings that look like long integers
)
documents = st.recursive(scalars, lambda inner: st.lists(inner, max_size=6), max_leaves=40)


@settings(max_examples=600, deadline=None)
@given(documents, st.sampled_from([(",", ":"), (", ", ": ")]))
def test_any_json_text_parses_as_json_loads_parses_it(doc: object, separators: tuple) -> None:
    text = json.dumps(doc, separators=separators, ensure_ascii=False)
    assert same(aggcodec._parsed(text), json.loads(text))
    ascii_text = json.dumps(doc, separators=separators)  # \\u escapes, lone surrogates too
    assert same(aggcodec._parsed(ascii_text), json.loads(ascii_text))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=50))
def test_floats_parse_to_the_same_double(values: list[float]) -> None:
    text = "[" + ",".join(map(repr, values)) + "]"
    assert same(aggcodec._parsed(text), values)


@pytest.mark.parametrize(
    "text",
    [
        "[1,12345678901234567890]",  # beyond 64 bits
        "[-99999999999999999999999]",
        "[1,18446744073709551616]",
        "[1e400,-1e400]",  # json reads infinities; orjson refuses them
        "[NaN,Infinity]",
        '["\\ud800"]',  # a lone surrogate escape
        " [1] ",
        "[0.00012345678901234567]",
    ],
)
def test_what_orjson_reads_otherwise_is_read_by_json(text: str) -> None:
    expected = json.loads(text)
    got = aggcodec._parsed(text)
    assert same(got, expected) or (
        isinstance(expected, list)
        and all(isinstance(x, float) and math.isnan(x) for x in expected[:1])
        and math.isnan(got[0])  # type: ignore[index]
        and got[1] == expected[1]  # type: ignore[index]
    )


@pytest.mark.parametrize("text", ["[1,]", "[1] 2", "", "[", '{"a":}', "\ud800"])
def test_unreadable_text_gets_jsons_own_error(text: str) -> None:
    with pytest.raises(ValueError) as by_json:
        json.loads(text)
    with pytest.raises(ValueError) as by_parse:
        aggcodec._parsed(text)
    assert str(by_parse.value) == str(by_json.value)
    d = DEFS[0]
    with pytest.raises(AggregationError, match="is not readable"):
        aggcodec.decode(d, text or "x")


def _value(kind: str, n: int, big: bool) -> object:
    if kind == INTEGRAL:
        return (n * 7919 % 1000) * (10**15 if big else 1)
    if kind == STRING:
        return f"zone {n * 1234567 % 997}" + ("1234567890123456789012" if big else "")
    return (n * 37 % 1000) / 7 * (1e-300 if big else 1.0)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(DEFS),
    st.lists(st.tuples(st.integers(0, 10**10), st.integers(0, 30)), max_size=60),
    st.booleans(),
)
def test_a_state_decodes_the_same_with_or_without_orjson(
    d: object, events: list[tuple[int, int]], big: bool
) -> None:
    state = AggregationState(d)  # type: ignore[arg-type]
    for seq, (t, n) in enumerate(events):
        state.apply(t, seq, f"{seq:016x}", _value(state.definition.value_kind, n, big))
    text = state.encode()
    fast = aggcodec.decode(state.definition, text)
    saved = aggcodec._fast_loads
    aggcodec._fast_loads = None  # the standard library only, as in a Lambda zip
    try:
        slow = aggcodec.decode(state.definition, text)
    finally:
        aggcodec._fast_loads = saved
    assert same(list(fast), list(slow))
    assert same(list(fast), list(aggcodec.decode(state.definition, json.dumps(json.loads(text)))))
