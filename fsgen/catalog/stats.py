"""Feature statistics from the local offline store, computed with DuckDB over its Parquet files.

Statistics describe the offline store's visible records (the latest write of each identifier
and event time; delete tombstones left out): every version of every record, which is what a
training dataset samples from. Per feature: row count, null count and rate; for numbers min,
max, mean and a histogram of equal-width bins; for strings the number of distinct values and
the most frequent ones; for collections the mean length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

    from fsgen.spec import FeatureSpec, GroupSpec
    from fsgen.types import DType

BINS = 20
TOP_VALUES = 10


@dataclass(frozen=True)
class Bar:
    label: str
    count: int
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class FeatureStats:
    rows: int
    nulls: int
    min: float | str | None = None
    max: float | str | None = None
    mean: float | None = None
    distinct: int | None = None
    mean_length: float | None = None
    bars: tuple[Bar, ...] = ()
    withheld: bool = False
    """True when value statistics were not computed (a personal feature without a reviewed
    opt-in): only ``rows`` and ``nulls`` are set."""
    kind: str = "numeric"
    """``numeric`` (histogram bars), ``categorical`` (top values), ``collection``, or
    ``absent`` (no offline file has the column yet: the feature was added since)."""

    @property
    def null_rate(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0


@dataclass(frozen=True)
class GroupStats:
    rows: int
    records: int
    """Distinct record identifiers."""
    files: int
    features: dict[str, FeatureStats] = field(default_factory=dict)


def _one(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None
) -> tuple[Any, ...]:
    """The single row an aggregate query returns."""
    row = con.execute(sql, params or []).fetchone()
    assert row is not None, sql
    return tuple(row)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def group_stats(
    store_path: Path, group: GroupSpec, withheld: frozenset[str] = frozenset()
) -> GroupStats | None:
    """Statistics of ``group``'s offline store; None when it has no data. Features named in
    ``withheld`` get counts and nulls only: their values never leave DuckDB. Read under the
    store's lock, after finishing what a killed writer left (a consistent snapshot)."""
    from fsgen.store.commit import settled

    with settled(store_path, "catalog stats"):
        return _group_stats(store_path, group, withheld)


def _group_stats(store_path: Path, group: GroupSpec, withheld: frozenset[str]) -> GroupStats | None:
    import duckdb

    from fsgen.spec import EVENT_HASH_COLUMN, EVENT_SEQUENCE_COLUMN
    from fsgen.store import iceberg, offline

    group_dir = store_path / "offline" / group.name
    # an aggregation group's rows are events: equal times are distinct events, copies are one
    also = (EVENT_SEQUENCE_COLUMN, EVENT_HASH_COLUMN) if group.aggregations else ()
    if group.offline.table_format == iceberg.ICEBERG:
        names = iceberg.data_file_names(store_path, group.name)
        count = len(names)
        visible = offline.visible_sql(
            offline.files_source_sql(names), group.identifier, group.event_time.name, also
        )
    else:
        iceberg.check_layout(group_dir, group.name, group.offline.table_format)
        count = len(offline.data_files(group_dir))
        visible = offline.dedup_sql(group_dir, group.identifier, group.event_time.name, also)
    if not count:
        return None
    con = duckdb.connect()
    try:
        con.execute("CREATE TEMP TABLE v AS SELECT * FROM (" + visible + ") WHERE NOT is_deleted")
        rows, records = _one(con, f"SELECT count(*), count(DISTINCT {_q(group.identifier)}) FROM v")
        present = {str(r[0]) for r in con.execute("DESCRIBE v").fetchall()}
        # A feature added since the last ingestion has no column in any file yet: it is
        # reported as absent, not queried (a schema change must never break the catalog).
        features = {
            f.name: feature_stats(con, f, int(rows), values=f.name not in withheld)
            if f.name in present
            else FeatureStats(rows=int(rows), nulls=int(rows), kind="absent")
            for f in group.features
        }
        for a in group.aggregations:  # each window: the statistics of the values aggregated
            hidden = any(name in withheld for name in a.feature_names)
            stats = (
                column_stats(con, a.value_column, a.value_dtype, int(rows), values=not hidden)
                if a.value_column in present
                else FeatureStats(rows=int(rows), nulls=int(rows), kind="absent")
            )
            features.update(dict.fromkeys(a.feature_names, stats))
    finally:
        con.close()
    return GroupStats(rows=int(rows), records=int(records), files=count, features=features)


def feature_stats(
    con: duckdb.DuckDBPyConnection, feature: FeatureSpec, rows: int, *, values: bool = True
) -> FeatureStats:
    return column_stats(con, feature.name, feature.dtype, rows, values=values)


def column_stats(
    con: duckdb.DuckDBPyConnection, name: str, dtype: DType, rows: int, *, values: bool = True
) -> FeatureStats:
    """The statistics of column ``name`` (of type ``dtype``) of the visible rows ``v``."""
    col = _q(name)
    nulls = int(_one(con, f"SELECT count(*) FILTER (WHERE {col} IS NULL) FROM v")[0])
    if not values:
        return FeatureStats(rows=rows, nulls=nulls, withheld=True, kind=_kind(dtype))
    if dtype.collection:
        mean_len = _one(con, f"SELECT avg(len({col})) FROM v")[0]
        return FeatureStats(
            rows=rows,
            nulls=nulls,
            kind="collection",
            mean_length=None if mean_len is None else float(mean_len),
        )
    if dtype.scalar.value == "String":
        low, high, distinct = _one(
            con, f"SELECT min({col}), max({col}), count(DISTINCT {col}) FROM v"
        )
        top = con.execute(
            f"SELECT {col}, count(*) AS n FROM v WHERE {col} IS NOT NULL "
            f"GROUP BY {col} ORDER BY n DESC, {col} LIMIT {TOP_VALUES}"
        ).fetchall()
        return FeatureStats(
            rows=rows,
            nulls=nulls,
            min=low,
            max=high,
            distinct=int(distinct),
            kind="categorical",
            bars=tuple(Bar(label=str(v), count=int(n)) for v, n in top),
        )
    low, high, mean, distinct = _one(
        con,
        f"SELECT min({col}), max({col}), avg({col}), count(DISTINCT {col}) FROM v "
        f"WHERE {col} IS NOT NULL AND isfinite({col}::DOUBLE)",
    )
    bars = histogram(con, col, low, high) if low is not None else ()
    return FeatureStats(
        rows=rows,
        nulls=nulls,
        min=_num(low),
        max=_num(high),
        mean=_num(mean),
        distinct=int(distinct),
        bars=bars,
    )


def _kind(dtype: DType) -> str:
    if dtype.collection:
        return "collection"
    return "categorical" if dtype.scalar.value == "String" else "numeric"


def _num(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def histogram(
    con: duckdb.DuckDBPyConnection, col: str, low: float, high: float, bins: int = BINS
) -> tuple[Bar, ...]:
    """Equal-width bins over [low, high]; the last bin includes ``high``. One bin when every
    value is equal."""
    low, high = float(low), float(high)
    if high == low or not math.isfinite(high - low):
        n = _one(con, f"SELECT count(*) FROM v WHERE {col} = ?", [low])[0]
        return (Bar(label=_fmt(low), count=int(n), low=low, high=high),)
    width = (high - low) / bins
    counts = dict(
        con.execute(
            f"SELECT least(floor(({col}::DOUBLE - ?) / ?)::BIGINT, {bins - 1}) AS b, count(*) "
            f"FROM v WHERE {col} IS NOT NULL AND isfinite({col}::DOUBLE) GROUP BY b",
            [low, width],
        ).fetchall()
    )
    out = []
    for b in range(bins):
        lo = low + b * width
        hi = high if b == bins - 1 else low + (b + 1) * width
        out.append(
            Bar(label=f"{_fmt(lo)} to {_fmt(hi)}", count=int(counts.get(b, 0)), low=lo, high=hi)
        )
    return tuple(out)


def _fmt(value: float) -> str:
    return f"{value:.6g}"
