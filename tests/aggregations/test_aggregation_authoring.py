"""Declaring aggregations: the spec they load to, their hashes, and every rule with file:line."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from fsgen.loader import check, load
from fsgen.pit.aggregate import compute_local, feature_rows, history_relation, query_for_group
from fsgen.runtime.aggregate import AggregationState, event_hash

HEADER = """
from fsgen import Entity, FeatureGroup, Fractional, Integral, List, String

customer = Entity("customer_id", String, description="A shopper")
purchases = FeatureGroup(
    "purchases", entity=customer, event_time="purchased_at", owner="growth",
    description="Purchase events",
)
"""

GOOD = (
    HEADER
    + """

@purchases.aggregation(
    Fractional, function="mean", windows=["1d", "7d", "30d"], hop="1h",
    description="Average purchase value",
)
def avg_purchase_value(amount: float) -> float:
    return amount


@purchases.aggregation(Integral, function="count", windows=["1h", "lifetime"], hop="1h",
                       description="Purchases")
def purchase_count(amount: float) -> int | None:
    return 1 if amount > 0 else None


@purchases.aggregation(List(String), function="last_n", n=3, distinct=True, windows=["7d"],
                       hop="1d", lateness="0s", description="Last categories")
def last_categories(category: str) -> str:
    return category.lower()
"""
)


def decorator_lines(src: str, needle: str = "@purchases.") -> list[int]:
    """1-based lines of each decorator in ``src`` as written by make_project."""
    text = textwrap.dedent(src).lstrip("\n")
    return [i for i, line in enumerate(text.splitlines(), 1) if line.startswith(needle)]


def test_an_aggregation_group_loads_to_one_feature_per_window(
    make_project: Callable[..., Path],
) -> None:
    spec = load(make_project({"featuredefs/shop.py": GOOD}))
    group = spec.group("purchases")
    avg = group.aggregation("avg_purchase_value")
    assert avg.feature_names == (
        "avg_purchase_value_1d",
        "avg_purchase_value_7d",
        "avg_purchase_value_30d",
    )
    assert (avg.hop_seconds, avg.lateness_seconds, str(avg.dtype)) == (3600, 3600, "Fractional")
    assert group.aggregation("purchase_count").feature_names == (
        "purchase_count_1h",
        "purchase_count_lifetime",
    )
    last = group.aggregation("last_categories")
    assert (last.n, last.distinct, last.lateness_seconds, str(last.dtype)) == (
        3,
        True,
        0,
        "List(String)",
    )
    assert [r.name for r in group.raw_fields] == [
        "customer_id",
        "purchased_at",
        "amount",
        "category",
    ]
    assert (
        avg.location.path == "featuredefs/shop.py" and avg.location.line == decorator_lines(GOOD)[0]
    )
    assert [c for c, _ in group.aggregation_columns()][:3] == [
        "event_sequence",
        "event_hash",
        "avg_purchase_value__value",
    ]
    # The same function object stays callable in a plain test.
    from importlib import import_module

    assert import_module("featuredefs.shop").avg_purchase_value(2.5) == 2.5


def test_hashes_separate_schema_logic_and_metadata(make_project: Callable[..., Path]) -> None:
    base = load(make_project({"featuredefs/shop.py": GOOD})).group("purchases")
    described = load(
        make_project({"featuredefs/shop.py": GOOD.replace("Average purchase value", "Mean spend")})
    ).group("purchases")
    windows = load(
        make_project({"featuredefs/shop.py": GOOD.replace('"7d", "30d"]', '"7d"]')})
    ).group("purchases")
    logic = load(
        make_project(
            {"featuredefs/shop.py": GOOD.replace("return amount\n", "return amount * 2\n")}
        )
    ).group("purchases")
    moved = load(make_project({"featuredefs/shop.py": GOOD.replace("\n\n\n@", "\n\n\n\n@")}))
    assert (described.schema_hash, described.logic_hash) == (base.schema_hash, base.logic_hash)
    assert described.metadata_hash != base.metadata_hash
    assert windows.schema_hash != base.schema_hash
    assert logic.logic_hash != base.logic_hash and logic.schema_hash == base.schema_hash
    assert moved.group("purchases").schema_hash == base.schema_hash


BAD = (
    HEADER
    + """

@purchases.aggregation(Fractional, function="median", windows=["1d"], description="x")
def a_median(amount: float) -> float:
    return amount


@purchases.aggregation(Fractional, function="sum", windows=["90m"], hop="1h", description="x")
def a_sum(amount: float) -> float:
    return amount


@purchases.aggregation(Fractional, function="sum", windows=["1h"], lateness="2h", description="x")
def a_late(amount: float) -> float:
    return amount


@purchases.aggregation(Integral, function="mean", windows=["1d"], description="x")
def a_mean(amount: float) -> float:
    return amount


@purchases.aggregation(List(Integral), function="last_n", windows=["1d"], description="x")
def a_last(amount: int) -> int:
    return amount


@purchases.aggregation(Integral, function="count", windows=["30d"], hop="1s", description="x")
def a_big(amount: float) -> int:
    return 1


@purchases.aggregation(Fractional, function="sum", windows=["1d"], description="x")
def a_nodecl(amount):
    return amount


@purchases.feature(Fractional, description="a row feature")
def row_feature(amount: float) -> float:
    return amount
"""
)


def test_every_rule_reports_file_line_and_code(make_project: Callable[..., Path]) -> None:
    result = check(make_project({"featuredefs/shop.py": BAD}))
    found = {(d.line, d.code) for d in result.diagnostics}
    path = {d.path for d in result.diagnostics}
    assert path == {"featuredefs/shop.py"}
    at = decorator_lines(BAD)
    group_line = next(
        i
        for i, line in enumerate(textwrap.dedent(BAD).lstrip("\n").splitlines(), 1)
        if line.startswith("purchases = FeatureGroup(")
    )
    assert {
        (at[0], "FS130"),  # unknown function
        (at[1], "FS131"),  # window not a multiple of the hop
        (at[2], "FS132"),  # lateness longer than the window
        (at[3], "FS133"),  # mean produces Fractional
        (at[4], "FS134"),  # last_n without n
        (at[5], "FS230"),  # 30 days of one-second tiles cannot fit a record
        (at[6], "FS133"),  # no return annotation: no value type
        (group_line, "FS135"),  # row features and aggregations in one group
    } <= found, sorted(found)
    messages = {d.code: d.render() for d in result.diagnostics}
    assert (
        f"featuredefs/shop.py:{at[0]}: error FS130: aggregation 'a_median': unknown function"
        in (messages["FS130"])
    )
    assert "is not a multiple of the hop (3600s)" in messages["FS131"]
    assert "350" in messages["FS230"]


def test_a_bad_hop_or_window_is_not_also_blamed_on_an_undeclared_lateness(
    make_project: Callable[..., Path],
) -> None:
    """The lateness defaults to the hop: a hop of '-1h' or a window shorter than the hop is one
    FS131, not also an FS132 about a lateness the author never wrote. A declared lateness
    longer than the smallest window is still FS132."""
    src = (
        HEADER
        + """

@purchases.aggregation(Fractional, function="sum", windows=["7d"], hop="-1h", description="x")
def a_neg(amount: float) -> float:
    return amount


@purchases.aggregation(Fractional, function="sum", windows=["30m"], hop="1h", description="x")
def a_short(amount: float) -> float:
    return amount


@purchases.aggregation(
    Fractional, function="sum", windows=["1h"], hop="5m", lateness="-5m", description="x"
)
def a_late(amount: float) -> float:
    return amount
"""
    )
    result = check(make_project({"featuredefs/shop.py": src}))
    at = decorator_lines(src)
    found = sorted((d.line, d.code) for d in result.diagnostics)
    assert found == [(at[0], "FS131"), (at[1], "FS131"), (at[2], "FS132")], found


def test_an_unreadable_window_hints_at_lifetime(make_project: Callable[..., Path]) -> None:
    src = (
        HEADER
        + """

@purchases.aggregation(Integral, function="count", windows=["Lifetime"], description="x")
def n(amount: float) -> int:
    return 1
"""
    )
    (diag,) = check(make_project({"featuredefs/shop.py": src})).diagnostics
    assert diag.code == "FS131" and "window 'Lifetime' is not a duration" in diag.render()
    assert "hint: a window is a duration ('1h', '7d') or 'lifetime' (lowercase)" in diag.render()


def test_window_names_colliding_with_features_are_duplicates(
    make_project: Callable[..., Path],
) -> None:
    src = (
        HEADER
        + """

@purchases.aggregation(Integral, function="count", windows=["1h"], description="x")
def n(amount: float) -> int:
    return 1


@purchases.aggregation(Integral, function="count", windows=["60m"], description="y", name="n")
def n_again(amount: float) -> int:
    return 1
"""
    )
    codes = {d.code for d in check(make_project({"featuredefs/shop.py": src})).diagnostics}
    assert "FS101" in codes and "FS131" not in codes


WRITTEN = datetime(2024, 3, 1, tzinfo=UTC)


def test_local_engine_reads_a_groups_offline_event_rows(make_project: Callable[..., Path]) -> None:
    """The group's offline event rows (String event time, tombstones) through the spec-level
    query: events at exactly the label time and deleted rows are not counted."""
    group = load(make_project({"featuredefs/shop.py": GOOD})).group("purchases")
    query = query_for_group(group, ["avg_purchase_value", "purchase_count"])
    times = ["2024-01-01T10:00:00Z", "2024-01-01T10:30:00.500Z", "2024-01-02T09:00:00Z"]
    rows = []
    for seq, (t, amount) in enumerate(zip(times, [10.0, 20.0, 40.0], strict=True)):
        values = {"avg_purchase_value__value": amount, "purchase_count__value": 1}
        rows.append(
            {
                "customer_id": "c1",
                "purchased_at": t,
                "event_sequence": seq,
                "event_hash": event_hash("c1", seq, values),
                **values,
                "last_categories__value": None,
                "is_deleted": False,
                "api_invocation_time": WRITTEN,
                "write_time": WRITTEN,
            }
        )
    rows.append({**rows[0], "event_sequence": 9, "is_deleted": True})
    con = duckdb.connect()
    con.register("offline", pa.Table.from_pylist(rows))
    labels = pa.Table.from_pylist(
        [
            {"_row": 0, "customer_id": "c1", "ts": 1704189600_000000},  # 2024-01-02T10:00Z
            {"_row": 1, "customer_id": "c1", "ts": 1704189600_000000 - 3600_000000},  # 09:00
            {"_row": 2, "customer_id": "zz", "ts": 1704189600_000000},
        ]
    )
    con.register("labels", labels)
    table = compute_local(con, query, history_relation(group, "offline"), "labels", history=True)
    got = feature_rows(table, table.column_names)
    # [floor_h(T - 1d), T) = [2024-01-01T10:00, 2024-01-02T10:00): all three, not the tombstone
    assert got[0]["avg_purchase_value_1d"] == 70.0 / 3
    assert got[0]["purchase_count_1h"] == 1 and got[0]["purchase_count_lifetime"] == 3
    # at 2024-01-02T09:00 the event at exactly T is excluded
    assert got[1]["avg_purchase_value_1d"] == 15.0 and got[1]["purchase_count_1h"] == 0
    assert got[2]["purchase_count_lifetime"] == 0 and got[2]["avg_purchase_value_7d"] is None
    state = AggregationState.rebuild(
        group.aggregation("purchase_count").runtime(),
        [
            (1704103200_000000, 0, "h0", 1),
            (1704105000_500000, 1, "h1", 1),
            (1704186000_000000, 2, "h2", 1),
        ],
    )
    assert state.finalize(1704189600_000000)["purchase_count_lifetime"] == 3


@pytest.mark.parametrize(
    ("written", "meant"),
    [("avg", "mean"), ("man", "mean"), ("Stddev", "stddev"), ("nunique", "count_distinct")],
)
def test_an_unknown_function_gets_a_did_you_mean(written: str, meant: str) -> None:
    """FS130's hint names the function a misspelt or another system's name means (SQL's avg,
    pandas' nunique), then every function."""
    from fsgen.aggregation import _close_function

    assert _close_function(written) == meant
    assert _close_function("median") is None  # no fsgen function is close
