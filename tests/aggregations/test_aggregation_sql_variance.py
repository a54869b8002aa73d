"""The SQL engines' variance and stddev of values far from zero relative to their spread --
barometric pressure 101325 ± 1 Pa, a voltage that reads 0.7 again and again, epoch seconds --
agree with the exact runtime within the skew check's relative tolerance. n·Σx² - (Σx)² over
doubles cancels to noise there (a stddev of 20.76 for values of 1.7e9 ± 1, whose true stddev
is 0.82; 1e-8 for three equal readings): the engines shift the values by a pivot of their
entity first, which leaves the variance unchanged and keeps its digits."""

from __future__ import annotations

import math
from fractions import Fraction

import duckdb
import pyarrow as pa
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from fsgen.pit.aggregate import AggregationQuery, aggregation_sql, feature_rows
from fsgen.runtime.aggregate import FRACTIONAL, AggregationDef
from fsgen.serving.skew import SQL_TOLERANCE

HOP = 10
DEFS = tuple(
    AggregationDef(
        name=f"v_{f}",
        function=f,
        value_kind=FRACTIONAL,
        windows=(2 * HOP, None),
        hop=HOP,
        lateness=HOP,
    )
    for f in ("variance", "stddev", "variance_pop", "stddev_pop")
)


def exact(function: str, values: list[float]) -> float | None:
    xs = [Fraction(v) for v in values]
    n = len(xs)
    sample = not function.endswith("_pop")
    if n < (2 if sample else 1):
        return None
    var = (n * sum(x * x for x in xs) - sum(xs) ** 2) / (n * (n - 1 if sample else n))
    return math.sqrt(var) if function.startswith("stddev") else float(var)


def engine_rows(
    events: list[tuple[str, int, float]], labels: list[tuple[str, int]], dialect: str
) -> list[dict[str, object]]:
    query = AggregationQuery(keys=("entity",), definitions=DEFS)
    rows = [
        {
            "entity": e,
            "ts": ts,
            "event_sequence": n,
            "event_hash": str(n),
            **{d.value_column: v for d in DEFS},
        }
        for n, (e, ts, v) in enumerate(events)
    ]
    schema = pa.schema(
        [
            ("entity", pa.string()),
            ("ts", pa.int64()),
            ("event_sequence", pa.int64()),
            ("event_hash", pa.string()),
        ]
        + [(d.value_column, pa.float64()) for d in DEFS]
    )
    con = duckdb.connect()
    con.register("events", pa.Table.from_pylist(rows, schema=schema))
    con.register(
        "labels",
        pa.Table.from_pylist(
            [{"_row": i, "entity": e, "ts": t} for i, (e, t) in enumerate(labels)],
            schema=pa.schema([("_row", pa.int64()), ("entity", pa.string()), ("ts", pa.int64())]),
        ),
    )
    text = aggregation_sql(query, "events", "labels", "duckdb")
    if dialect == "athena":
        athena = aggregation_sql(query, "events", "labels", "athena")
        text = sqlglot.transpile(athena, read="athena", write="duckdb")[0]
    table = con.sql(text).to_arrow_table()
    return feature_rows(table, table.column_names)


def check(events: list[tuple[str, int, float]], labels: list[tuple[str, int]]) -> None:
    for dialect in ("duckdb", "athena"):
        got = engine_rows(events, labels, dialect)
        for row, (entity, t) in zip(got, labels, strict=True):
            for d in DEFS:
                for w, name in zip(d.windows, d.feature_names, strict=True):
                    start = None if w is None else (t - w) // HOP * HOP
                    values = [
                        v
                        for e, ts, v in events
                        if e == entity and ts < t and (start is None or ts >= start)
                    ]
                    want = exact(d.function, values)
                    value = row[name]
                    if want is None:
                        assert value is None, (dialect, name, values, value)
                        continue
                    assert isinstance(value, float), (dialect, name, values, value)
                    assert math.isclose(value, want, rel_tol=SQL_TOLERANCE, abs_tol=0.0) or (
                        want == value == 0.0
                    ), (dialect, name, values, value, want)


def test_equal_readings_have_a_variance_of_exactly_zero() -> None:
    events = [("K", i, 0.7) for i in range(3)] + [("M", i, 3.3000000000000003) for i in range(5)]
    check(events, [("K", 3), ("M", 5), ("K", 100)])


def test_values_far_from_zero_keep_their_spread() -> None:
    events = [("P", i, 1.7e9 + (-1.0, 0.0, 1.0)[i % 3]) for i in range(20)]
    events += [("Q", i, 101325.0 + 0.5 * (i % 3)) for i in range(20)]
    check(events, [("P", 20), ("Q", 20), ("P", 15)])


@settings(max_examples=60, deadline=None)
@given(
    offset=st.sampled_from([0.0, 3.3, 230.0, 101325.0, 86400.0 * 365, 1.7e9, -4.2e7]),
    steps=st.lists(st.integers(-3, 3), min_size=1, max_size=25),
    scale=st.sampled_from([1.0, 0.1, 0.001, 0.25]),
    times=st.data(),
)
def test_offset_readings_agree_with_the_exact_variance(
    offset: float, steps: list[int], scale: float, times: st.DataObject
) -> None:
    ts = sorted(times.draw(st.lists(st.integers(0, 40), min_size=len(steps), max_size=len(steps))))
    events = [("E", t, offset + k * scale) for t, k in zip(ts, steps, strict=True)]
    labels = [("E", t) for t in sorted({*ts, ts[-1] + 1, 0, 17, 41})]
    check(events, labels)
