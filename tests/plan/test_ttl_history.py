"""fsgen.ttl_history: the tag value apply keeps, and the TTL segments the engines apply."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsgen.ttl_history import (
    MAX_VALUE,
    TAG,
    TtlChange,
    TtlHistoryError,
    appended,
    from_tags,
    parse,
    render,
    segments,
)

ttls = st.one_of(st.none(), st.integers(1, 10**9))
changes = st.lists(
    st.builds(TtlChange, st.integers(0, 10**18), ttls, ttls),
    max_size=20,
    unique_by=lambda c: c.at_micros,
)


@given(changes)
def test_render_parse_round_trip_keeps_the_newest_that_fit(history: list[TtlChange]) -> None:
    value = render(history)
    assert len(value) <= MAX_VALUE
    kept = parse(value)
    newest = sorted(history)[len(sorted(history)) - len(kept) :]
    assert list(kept) == newest  # only the oldest are dropped


def test_appended_adds_and_tags_are_read_by_key() -> None:
    value = appended(None, TtlChange(5, 604800, 259200))
    assert value == "5=604800:259200"
    value = appended(value, TtlChange(9, 259200, None))
    assert value == "5=604800:259200 9=259200:none"
    assert from_tags([{"Key": "other", "Value": "x"}, {"Key": TAG, "Value": value}]) == parse(value)
    assert from_tags({TAG: value}) == parse(value) and from_tags([]) == ()


@pytest.mark.parametrize("value", ["5=7d:3d", "x=1:2", "5=1", "5=-1:2"])
def test_a_value_that_is_no_history_is_refused(value: str) -> None:
    with pytest.raises(TtlHistoryError, match="is not <epoch µs>="):
        parse(value)


def test_segments_use_the_ttl_each_change_replaced_and_merge_equal_runs() -> None:
    assert segments((), 60) == ((None, 60),)
    history = (TtlChange(10, 100, 50), TtlChange(20, 50, None), TtlChange(30, None, 60))
    assert segments(history, 60) == ((10, 100), (20, 50), (30, None), (None, 60))
    # a change back to the same TTL: one segment
    assert segments((TtlChange(10, 60, 30), TtlChange(20, 30, 60)), 60) == (
        (10, 60),
        (20, 30),
        (None, 60),
    )
    assert segments((TtlChange(10, 60, 60),), 60) == ((None, 60),)
