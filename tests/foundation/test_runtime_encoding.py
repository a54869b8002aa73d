"""Semantics 2: ValueAsString encoding is lossless for every dtype (property-based)."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsgen.runtime.encoding import (
    INT64_MAX,
    INT64_MIN,
    decode_value,
    encode_value,
    format_event_time,
    parse_event_time,
)
from fsgen.runtime.pipeline import composite_identifier

FINITE = st.floats(allow_nan=False, allow_infinity=False)


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


@given(FINITE)
def test_fractional_round_trip_is_bit_identical(x: float) -> None:
    back = decode_value("Fractional", encode_value("Fractional", x))
    assert isinstance(back, float)
    assert bits(back) == bits(x)


def test_classic_float_sum_survives() -> None:
    x = 0.1 + 0.2
    assert encode_value("Fractional", x) == "0.30000000000000004"
    assert decode_value("Fractional", encode_value("Fractional", x)) == x


@given(st.integers(INT64_MIN, INT64_MAX))
def test_integral_round_trip(n: int) -> None:
    assert decode_value("Integral", encode_value("Integral", n)) == n


@pytest.mark.parametrize("n", [INT64_MAX + 1, INT64_MIN - 1])
def test_integral_outside_int64_is_refused(n: int) -> None:
    with pytest.raises(ValueError, match="64-bit"):
        encode_value("Integral", n)


@given(st.text())
def test_string_round_trip(s: str) -> None:
    assert decode_value("String", encode_value("String", s)) == s


@given(st.lists(FINITE, max_size=8))
def test_list_round_trip(xs: list[float]) -> None:
    back = decode_value("Fractional", encode_value("Fractional", xs, "List"), "List")
    assert [bits(v) for v in back] == [bits(v) for v in xs]  # type: ignore[union-attr,arg-type]


@given(st.lists(st.integers(-1000, 1000), max_size=10))
def test_set_is_stored_sorted_and_unique(xs: list[int]) -> None:
    encoded = encode_value("Integral", xs, "Set")
    assert decode_value("Integral", encoded, "Set") == sorted(set(xs))


def test_vector_dimension_is_checked() -> None:
    assert encode_value("Fractional", [1.0, 2.0], "Vector", 2) == ["1.0", "2.0"]
    with pytest.raises(ValueError, match="dimension 3"):
        encode_value("Fractional", [1.0, 2.0], "Vector", 3)


@pytest.mark.parametrize("bad", [math.nan, math.inf, "1.5", None])
def test_fractional_refuses_non_finite_and_non_numbers(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        encode_value("Fractional", bad)


@settings(max_examples=300)
@given(st.integers(0, 4_102_444_800_000))
def test_event_time_millis_round_trip(millis: int) -> None:
    seconds = millis / 1000
    text = format_event_time("String", seconds)
    assert isinstance(text, str) and text.endswith("Z")
    assert round(parse_event_time("String", text) * 1000) == millis


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-31T12:00:00Z", "2024-01-31T12:00:00Z"),
        ("2024-01-31T12:00:00.250Z", "2024-01-31T12:00:00.250Z"),
        ("2024-01-31T14:00:00+02:00", "2024-01-31T12:00:00Z"),
        ("2024-01-31T12:00:00", "2024-01-31T12:00:00Z"),
    ],
)
def test_event_time_is_normalized_to_utc(text: str, expected: str) -> None:
    assert format_event_time("String", parse_event_time("String", text)) == expected


@pytest.mark.parametrize(
    "bad", ["yesterday", "2024-13-01T00:00:00Z", "2024-01-01T00:00:00.123456Z", 17]
)
def test_bad_event_times_are_refused(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        parse_event_time("String", bad)


@given(
    st.lists(st.text(max_size=4), min_size=2, max_size=3),
    st.lists(st.text(max_size=4), min_size=2, max_size=3),
)
def test_composite_identifiers_never_collide(a: list[str], b: list[str]) -> None:
    if a != b:
        assert composite_identifier(list(a)) != composite_identifier(list(b))
