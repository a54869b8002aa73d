"""Label times: the Arrow fast path for ISO-8601 text against the pandas path it short-cuts.

Every list of text times either takes the fast path and gives exactly the instants pandas'
ISO-8601 parser gives, or falls back (mixed zones, nanoseconds, spaces, bad values) to the
pandas path unchanged -- same values, same errors naming the row.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsgen.pit.labels import _iso_micros_fast, label_micros
from fsgen.pit.model import PitError


def pandas_micros(values: list[str]) -> np.ndarray | None:
    """The reference: pandas' ISO-8601 parser, naive = UTC; None if any value is unreadable."""
    parsed = pd.to_datetime(pd.Series(values), utc=True, format="ISO8601", errors="coerce")
    if parsed.isna().any():
        return None
    utc = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return utc.to_numpy(dtype="datetime64[us]").astype("int64")


ZONES = ["Z", "+00:00", "-00:00", "+02:00", "-0530", "+14:00", "+05", ""]
FRACTIONS = ["", ".5", ".123", ".123456", ".123456789"]
SEPARATORS = ["T", " "]


@st.composite
def iso_text(draw: st.DrawFn) -> str:
    moment = draw(
        st.datetimes(min_value=datetime(1700, 1, 1), max_value=datetime(2200, 12, 31))
    ).replace(microsecond=0)
    sep = draw(st.sampled_from(SEPARATORS))
    precision = draw(st.sampled_from(["date", "hour", "minute", "second"]))
    text = moment.strftime("%Y-%m-%d")
    if precision == "date":
        return text
    text += sep + moment.strftime("%H")
    if precision != "hour":
        text += moment.strftime(":%M")
    if precision == "second":
        text += moment.strftime(":%S") + draw(st.sampled_from(FRACTIONS))
    return text + draw(st.sampled_from(ZONES))


@settings(max_examples=200, deadline=None)
@given(st.lists(iso_text(), min_size=1, max_size=6))
def test_fast_path_agrees_with_pandas(values: list[str]) -> None:
    fast = _iso_micros_fast(pd.Series(values, dtype="str"))
    reference = pandas_micros(values)
    if fast is not None:
        assert reference is not None
        assert fast.tolist() == reference.tolist()
    got = label_micros(pd.Series(values, dtype=object), "t", "labels")
    if reference is not None:
        assert got.tolist() == reference.tolist()


def test_fast_path_cases() -> None:
    base = datetime(2024, 1, 31, 12, tzinfo=UTC)
    micros = int(base.timestamp()) * 1_000_000
    aware = pd.Series(["2024-01-31T12:00:00Z", "2024-01-31T14:00:00+02:00"])
    assert _iso_micros_fast(aware).tolist() == [micros, micros]
    naive = pd.Series(["2024-01-31T12:00:00", "2024-01-31 12:00:00.000001"])
    assert _iso_micros_fast(naive).tolist() == [micros, micros + 1]
    # left to pandas: mixed naive and zoned, nanoseconds, surrounding spaces, numbers
    for values in (
        ["2024-01-31T12:00:00", "2024-01-31T12:00:00Z"],
        ["2024-01-31T12:00:00.123456789Z"],
        [" 2024-01-31T12:00:00Z"],
    ):
        assert _iso_micros_fast(pd.Series(values)) is None
        assert label_micros(pd.Series(values), "t", "labels").tolist() == (
            pandas_micros(values).tolist()  # type: ignore[union-attr]
        )
    assert _iso_micros_fast(pd.Series([1.5, 2.5])) is None
    assert _iso_micros_fast(pd.Series(["2024-01-31T12:00:00Z", 3], dtype=object)) is None
    late = base + timedelta(days=1)
    assert _iso_micros_fast(pd.Series([late.isoformat()])).tolist() == [micros + 86_400_000_000]


def test_bad_text_still_names_its_row() -> None:
    values = pd.Series(["2024-01-31T12:00:00Z", "2024-02-30T00:00:00Z"])
    assert _iso_micros_fast(values) is None
    with pytest.raises(PitError, match=r"label row 2: t '2024-02-30T00:00:00Z' is not an ISO"):
        label_micros(values, "t", "labels")


def test_epoch_seconds_in_a_column_of_iso_text_is_named_as_such() -> None:
    """A column takes one kind of time; epoch seconds among ISO text (a CSV mixing exports)
    are refused as a mix, not as 'not ... epoch seconds', which they are."""
    values = pd.Series(["2024-01-31T12:00:00Z", "1764781200"])
    with pytest.raises(PitError) as info:
        label_micros(values, "t", "labels")
    message = str(info.value)
    assert message.startswith("labels: label row 2: t '1764781200' is epoch seconds in a column")
    assert "label row 1 holds '2024-01-31T12:00:00Z'" in message
    assert "or epoch seconds" not in message


def test_lowercase_letters_and_mixed_offset_datetimes() -> None:
    """What ingestion accepts for event times, labels accept too: ``t``/``z``, and Python
    datetimes each with its own offset (naive = UTC), alone or mixed with text."""
    base = datetime(2024, 3, 10, 1, 10, 0, 7001, tzinfo=UTC)
    micros = int(base.replace(microsecond=0).timestamp()) * 1_000_000 + 7001
    lower = pd.Series(["2024-03-10t01:10:00.007001z", "2024-03-10T01:10:00.007001z"])
    assert label_micros(lower, "t", "labels").tolist() == [micros, micros]
    zones = [timezone(timedelta(hours=h, minutes=m)) for h, m in ((0, 0), (5, 30), (-8, 0))]
    moments = pd.Series([base.astimezone(z) for z in zones], dtype=object)
    assert label_micros(moments, "t", "labels").tolist() == [micros] * 3
    naive = pd.Series([base.replace(tzinfo=None), base.isoformat()], dtype=object)
    assert label_micros(naive, "t", "labels").tolist() == [micros] * 2
    with pytest.raises(PitError, match=r"label row 2: t 'later' is not an ISO"):
        label_micros(pd.Series([base, "later"], dtype=object), "t", "labels")
