"""A Parquet (or DataFrame) event-time column of timestamps -- how Parquet writers carry a
time -- is read as the instant it holds, as ISO-8601 text of it would be: aware values by
their offset, naive ones as UTC, a date as its midnight UTC, for String and Fractional event
times alike; finer than milliseconds is refused as for text."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fsgen.loader import load_with_config
from fsgen.store.local import LocalStore

DEFS = """
from fsgen import Entity, FeatureGroup, Fractional, String

driver = Entity("driver_id", String, description="A driver")
profile = FeatureGroup("profile", entity=driver, event_time="updated_at", owner="o",
                       description="Profile")
trips = FeatureGroup("trips", entity=driver, event_time="ended_at", owner="o",
                     description="Trips", event_time_type=Fractional)


@profile.feature(Fractional, description="Rating")
def rating(rating: float) -> float:
    return rating


@trips.aggregation(Fractional, function="sum", windows=["lifetime"], hop="1h",
                   description="Fares")
def fares(fare: float) -> float:
    return fare
"""

IST = timezone(timedelta(hours=5, minutes=30))
TIMES = [
    datetime(2026, 12, 3, 10, 0, tzinfo=IST),
    datetime(2026, 12, 3, 10, 0, 0, 123000, tzinfo=IST),
    datetime(2026, 12, 3, 10, 0, 0, 123456, tzinfo=IST),  # finer than milliseconds
]


def _ingest(make_project: Callable[..., Path], group: str, table: object, tmp_path: Path):  # type: ignore[no-untyped-def]
    config, spec = load_with_config(make_project({"featuredefs/defs.py": DEFS}))
    rejects: list[object] = []
    with LocalStore.open(config, spec) as store:
        if isinstance(table, pa.Table):
            path = tmp_path / "times.parquet"
            pq.write_table(table, path)
            result = store.ingest(group, path, workers=0, rejects=rejects)
        else:
            result = store.ingest(group, table, workers=0, rejects=rejects)
        frame = store.read_offline(group) if result.written else None
    return result, rejects, frame


def test_parquet_timestamps_are_event_times(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    for column in (
        pa.array(TIMES, pa.timestamp("us", tz="+05:30")),
        pa.array([t.astimezone(UTC).replace(tzinfo=None) for t in TIMES], pa.timestamp("us")),
    ):
        table = pa.table(
            {"driver_id": ["d1", "d2", "d3"], "updated_at": column, "rating": [4.5] * 3}
        )
        result, rejects, frame = _ingest(make_project, "profile", table, tmp_path)
        assert (result.written, result.rejected) == (2, 1), rejects
        assert sorted(frame["updated_at"]) == ["2026-12-03T04:30:00.123Z", "2026-12-03T04:30:00Z"]
        assert [(r.row, r.field) for r in rejects] == [(3, "updated_at")]  # type: ignore[attr-defined]
        assert "more precise than milliseconds" in rejects[0].reason  # type: ignore[attr-defined]


def test_timestamps_and_dates_for_a_fractional_event_time(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    table = pa.table(
        {
            "driver_id": ["d1", "d2"],
            "ended_at": pa.array(TIMES[:2], pa.timestamp("ms", tz="+05:30")),
            "fare": [10.0, 20.0],
        }
    )
    result, rejects, frame = _ingest(make_project, "trips", table, tmp_path)
    assert (result.written, result.rejected) == (2, 0), rejects
    assert sorted(frame["ended_at"]) == [TIMES[0].timestamp(), TIMES[1].timestamp()]
    dates = pd.DataFrame({"driver_id": ["d1"], "updated_at": [date(2026, 12, 1)], "rating": [4.0]})
    result, rejects, frame = _ingest(make_project, "profile", dates, tmp_path)
    assert (result.written, result.rejected) == (1, 0), rejects
    assert list(frame["updated_at"]) == ["2026-12-01T00:00:00Z"]


def test_epoch_milliseconds_for_a_fractional_event_time_are_named(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    """A Fractional event time is epoch seconds; epoch milliseconds land after year 9999, and
    the reject says that they look like milliseconds instead of only 'outside years'."""
    frame = pd.DataFrame(
        {"driver_id": ["d1", "d2"], "ended_at": [1764781200000, 1764781200.5], "fare": [1.0, 2.0]}
    )
    result, rejects, _ = _ingest(make_project, "trips", frame, tmp_path)
    assert (result.written, result.rejected) == (1, 1), rejects
    assert rejects[0].reason == (  # type: ignore[attr-defined]
        "event time outside years 1..9999: 1.76478e+12 epoch seconds; a Fractional event time "
        "is epoch seconds, and this looks like epoch milliseconds (divide by 1,000)"
    )
