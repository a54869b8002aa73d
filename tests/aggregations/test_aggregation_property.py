"""Four independent paths agree on every aggregation feature at every query time.

Hypothesis generates event histories (equal timestamps, late and out-of-order arrivals, events
exactly on tile and window edges and at the query times, replays of the same event, values that
contribute nothing, several entities, two hops, lifetime windows) and query times. The paths:

1. a brute-force oracle written here from the README's definition (exact rationals);
2. the local DuckDB engine (fsgen.pit.aggregate, dialect duckdb) over the event history;
3. the generated Athena SQL, transpiled by sqlglot to DuckDB, over the same history;
4. the runtime state (fsgen.runtime.aggregate): events applied one by one in arrival order, as
   the stream handler will, encoded to the online String, decoded and finalized at the query
   time, as the parser will.

Integral results, counts, min/max/last/last-n and count-distinct are bit-identical on all four.
Fractional sum/mean/variance/stddev are bit-identical between the oracle and the runtime (both
exact, rounded once) and within the stated bound for SQL, whose double sums round at every
step in an engine-chosen order (README "Aggregations": |error| <= 4 n 2**-52 sum|x| for sums,
the same over n for means, over n - 1 for variances on sum of squares, and its square root for
standard deviations).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import duckdb
import pyarrow as pa
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsgen.pit.aggregate import AggregationQuery, aggregation_sql, feature_rows
from fsgen.runtime.aggregate import (
    APPLIED,
    DUPLICATE,
    FRACTIONAL,
    INTEGRAL,
    LATE,
    STRING,
    AggregationDef,
    AggregationState,
    event_hash,
)

H1, H2 = 4, 6  # hops in microseconds: small, so edges are hit often
EPS = 2.0**-52


def _d(
    name: str, function: str, kind: str, hop: int, windows: tuple[int | None, ...], **kw: object
) -> AggregationDef:
    return AggregationDef(
        name=name,
        function=function,
        value_kind=kind,
        windows=windows,
        hop=hop,
        lateness=kw.pop("lateness", hop),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


DEFS = (
    _d("cnt", "count", STRING, H1, (H1, 3 * H1, None)),
    _d("isum", "sum", INTEGRAL, H1, (2 * H1, None)),
    _d("fsum", "sum", FRACTIONAL, H1, (H1, 3 * H1, None)),
    _d("fmean", "mean", FRACTIONAL, H2, (H2, 2 * H2, None), lateness=0),
    _d("imean", "mean", INTEGRAL, H1, (3 * H1,)),
    _d("fmin", "min", FRACTIONAL, H1, (2 * H1, None)),
    _d("smax", "max", STRING, H2, (H2, None)),
    _d("fvar", "variance", FRACTIONAL, H1, (3 * H1, None)),
    _d("isd", "stddev_pop", INTEGRAL, H2, (2 * H2,)),
    _d("fsd", "stddev", FRACTIONAL, H1, (2 * H1,)),
    _d("slast", "last", STRING, H1, (H1, None)),
    _d("flast", "last", FRACTIONAL, H2, (2 * H2,)),
    _d("lastn", "last_n", INTEGRAL, H1, (2 * H1, None), n=3),
    _d("lastd", "last_n", STRING, H2, (2 * H2, None), n=2, distinct=True),
    _d("cdist", "count_distinct", INTEGRAL, H1, (3 * H1, None), n=2),
)
APPROX = {"fsum", "fmean", "fvar", "fsd", "imean", "isd"}
# Lateness is per definition; one shared bound keeps "accepted" the same for every state, so
# the test uses the largest one for rejection and gives the others room through their own.
ENTITIES = ("a", "b")

floats = st.one_of(
    st.sampled_from([0.0, -0.0, 0.1, 0.2, 0.3, 1e16, -1e16, 1.0, 2.5, -7.25]),
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False),
)
values_for = {
    INTEGRAL: st.integers(min_value=-(2**31), max_value=2**31) | st.integers(0, 3),
    FRACTIONAL: floats,
    STRING: st.sampled_from(["a", "b", "c", "é", ""]),
}


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[dict[str, object]], list[tuple[str, int]]]:
    arrivals: list[dict[str, object]] = []
    times = st.integers(min_value=0, max_value=40)
    for seq in range(draw(st.integers(min_value=0, max_value=28))):
        if arrivals and draw(st.integers(0, 6)) == 0:
            arrivals.append(dict(draw(st.sampled_from(arrivals))))  # a replay: same event again
            continue
        entity = draw(st.sampled_from(ENTITIES))
        ts = draw(times | st.sampled_from([0, 4, 6, 8, 12, 24, 36]))
        values: dict[str, object] = {}
        for d in DEFS:
            present = draw(st.integers(0, 5)) > 0
            values[d.value_column] = draw(values_for[d.value_kind]) if present else None
            if d.value_kind == FRACTIONAL and values[d.value_column] is not None:
                values[d.value_column] = float(values[d.value_column]) + 0.0  # type: ignore[arg-type]
        arrivals.append(
            {
                "entity": entity,
                "ts": ts,
                "seq": seq,
                "hash": event_hash(entity, ts, values),
                "values": values,
            }
        )
    event_times = [int(e["ts"]) for e in arrivals]  # type: ignore[call-overload]
    query_times = st.integers(0, 50) | st.sampled_from(event_times or [0])
    queries = draw(
        st.lists(st.tuples(st.sampled_from(ENTITIES), query_times), min_size=1, max_size=6)
    )
    return arrivals, queries


# --------------------------------------------------------------------------- the oracle


def accepted_events(
    d: AggregationDef, arrivals: list[dict[str, object]]
) -> tuple[list[dict[str, object]], list[int]]:
    """What the stream keeps for definition d: replays skipped, events older than the entity's
    newest applied event by more than the lateness rejected (arrival positions returned)."""
    newest: dict[object, int] = {}
    top_seq: dict[object, int] = {}
    kept, late = [], []
    for pos, e in enumerate(arrivals):
        key = e["entity"]
        if int(e["seq"]) <= top_seq.get(key, -1):  # type: ignore[call-overload]
            continue
        ts = int(e["ts"])  # type: ignore[call-overload]
        if key in newest and ts < newest[key] - d.lateness:
            late.append(pos)
            continue
        top_seq[key] = int(e["seq"])  # type: ignore[call-overload]
        newest[key] = max(newest.get(key, ts), ts)
        kept.append(e)
    return kept, late


def oracle(
    d: AggregationDef, events: list[dict[str, object]], entity: str, t: int, w: int | None
) -> object:
    start = None if w is None else ((t - w) // d.hop) * d.hop
    rows = [
        e
        for e in events
        if e["entity"] == entity
        and int(e["ts"]) < t  # type: ignore[call-overload]
        and (start is None or int(e["ts"]) >= start)  # type: ignore[call-overload]
        and e["values"][d.value_column] is not None  # type: ignore[index]
    ]
    vals = [e["values"][d.value_column] for e in rows]  # type: ignore[index]
    f = d.function
    if f == "count":
        return len(vals)
    if f == "count_distinct":
        return min(len(set(vals)), d.n or 0)
    if f in ("last", "last_n"):
        ordered = sorted(rows, key=lambda e: (e["ts"], e["seq"], e["hash"]), reverse=True)
        out = [e["values"][d.value_column] for e in ordered]  # type: ignore[index]
        if f == "last":
            return out[0] if out else None
        if d.distinct:
            out = list(dict.fromkeys(out))
        return out[: d.n]
    if f == "sum":
        total = sum(Fraction(v) for v in vals)  # type: ignore[arg-type]
        return float(total) if d.value_kind == FRACTIONAL else int(total)
    if not vals:
        return None
    if f in ("min", "max"):
        return min(vals) if f == "min" else max(vals)  # type: ignore[type-var]
    exact = [Fraction(v) for v in vals]  # type: ignore[arg-type]
    n = len(exact)
    if f == "mean":  # the exact sum rounded once (an int stays exact), then divided
        total = sum(exact)
        return int(total) / n if d.value_kind == INTEGRAL else float(total) / n
    if f in ("variance", "stddev") and n < 2:
        return None
    mean = sum(exact) / n
    ss = sum((x - mean) ** 2 for x in exact)
    var = float(ss / (n - 1 if f in ("variance", "stddev") else n))
    return math.sqrt(var) if f.startswith("stddev") else var


SUBNORMAL_STEP = 2.0**-1074


def bound(
    d: AggregationDef, events: list[dict[str, object]], entity: str, t: int, w: int | None
) -> float:
    """The stated SQL tolerance for definition d's Fractional result."""
    start = None if w is None else ((t - w) // d.hop) * d.hop
    vals = [
        float(e["values"][d.value_column])  # type: ignore[index,arg-type]
        for e in events
        if e["entity"] == entity
        and int(e["ts"]) < t  # type: ignore[call-overload]
        and (start is None or int(e["ts"]) >= start)  # type: ignore[call-overload]
        and e["values"][d.value_column] is not None  # type: ignore[index]
    ]
    n = max(len(vals), 1)
    # below the normal range a double rounds to an absolute step of 2**-1074 (README)
    tiny = 8 * n * SUBNORMAL_STEP
    if d.function in ("sum", "mean"):
        return (
            4 * n * EPS * math.fsum(abs(v) for v in vals) / (n if d.function == "mean" else 1)
            + tiny
        )
    var_bound = 8 * n * EPS * math.fsum(v * v for v in vals) / max(n - 1, 1) + tiny
    return var_bound if d.function.startswith("variance") else math.sqrt(var_bound)


# --------------------------------------------------------------------------- the paths


WRITES_FROM = datetime(2024, 6, 1, tzinfo=UTC)


def sql_rows(
    arrivals: list[dict[str, object]], queries: list[tuple[str, int]], dialect: str
) -> dict[int, dict[str, object]]:
    query = AggregationQuery(keys=("entity",), definitions=DEFS)
    # The offline history holds what the stream accepted for every definition (a value the
    # stream rejected for one definition is null there), replays included, as a retried
    # Lambda batch writes them twice.
    kept_by_def = {d.name: {id(e) for e in accepted_events(d, arrivals)[0]} for d in DEFS}
    rows = []
    for position, e in enumerate(arrivals):
        values = e["values"]
        written = WRITES_FROM + timedelta(milliseconds=position)  # in arrival order
        row = {
            "entity": e["entity"],
            "ts": e["ts"],
            "event_sequence": e["seq"],
            "event_hash": e["hash"],
            "is_deleted": False,
            "api_invocation_time": written,
            "write_time": written,
        }
        for d in DEFS:
            row[d.value_column] = (
                values[d.value_column]
                if id(e) in kept_by_def[d.name] or _replay_of_kept(e, arrivals, kept_by_def[d.name])
                else None
            )  # type: ignore[index]
        rows.append(row)
    schema = pa.schema(
        [
            ("entity", pa.string()),
            ("ts", pa.int64()),
            ("event_sequence", pa.int64()),
            ("event_hash", pa.string()),
            ("is_deleted", pa.bool_()),
            ("api_invocation_time", pa.timestamp("us", tz="UTC")),
            ("write_time", pa.timestamp("us", tz="UTC")),
        ]
        + [
            (
                d.value_column,
                {INTEGRAL: pa.int64(), FRACTIONAL: pa.float64(), STRING: pa.string()}[d.value_kind],
            )
            for d in DEFS
        ]
    )
    con = duckdb.connect()
    con.register("events", pa.Table.from_pylist(rows, schema=schema))
    labels = pa.Table.from_pylist(
        [{"_row": i, "entity": k, "ts": t} for i, (k, t) in enumerate(queries)],
        schema=pa.schema([("_row", pa.int64()), ("entity", pa.string()), ("ts", pa.int64())]),
    )
    con.register("labels", labels)
    # the engines' query over an offline history, as fsgen dataset and the generated SQL run it
    text = aggregation_sql(query, "events", "labels", "duckdb", history=True)
    if dialect == "athena":
        text = sqlglot.transpile(
            aggregation_sql(query, "events", "labels", "athena", history=True),
            read="athena",
            write="duckdb",
        )[0]
    table = con.sql(text).to_arrow_table()
    return {int(r["_row"]): r for r in feature_rows(table, table.column_names)}  # type: ignore[call-overload]


def _replay_of_kept(
    e: dict[str, object], arrivals: list[dict[str, object]], kept: set[int]
) -> bool:
    return any(id(o) in kept and o["seq"] == e["seq"] for o in arrivals)


def runtime_answer(
    d: AggregationDef, arrivals: list[dict[str, object]], entity: str, t: int
) -> dict[str, object]:
    """Stream then serve: the events that have arrived by T (event time <= T, so the state's
    watermark is at most T) applied in arrival order, encoded, decoded, finalized at T."""
    kept = {id(e) for e in accepted_events(d, arrivals)[0]}
    state = AggregationState(d)
    for e in arrivals:
        if e["entity"] != entity or int(e["ts"]) > t:  # type: ignore[call-overload]
            continue
        if id(e) not in kept and not _replay_of_kept(e, arrivals, kept):
            continue  # rejected as late in the full history: it never reached the state
        outcome = state.apply(
            int(e["ts"]), int(e["seq"]), str(e["hash"]), e["values"][d.value_column]
        )  # type: ignore[call-overload,index]
        assert outcome == (APPLIED if id(e) in kept else DUPLICATE), (outcome, e)
    served = AggregationState.decode(d, state.encode())
    return served.finalize(t)


def same(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return type(a) is type(b) and (a == b and math.copysign(1, a) == math.copysign(1, b))  # type: ignore[arg-type]
    return type(a) is type(b) and a == b


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_four_paths_agree(history: tuple[list[dict[str, object]], list[tuple[str, int]]]) -> None:
    arrivals, queries = history
    duck = sql_rows(arrivals, queries, "duckdb")
    athena = sql_rows(arrivals, queries, "athena")
    for row, (entity, t) in enumerate(queries):
        for d in DEFS:
            kept = accepted_events(d, arrivals)[0]
            served = runtime_answer(d, arrivals, entity, t)
            for w, name in zip(d.windows, d.feature_names, strict=True):
                expected = oracle(d, kept, entity, t, w)
                where = f"{name} at {t} for {entity}"
                assert same(served[name], expected), (where, served[name], expected)
                for engine, got in (("duckdb", duck[row][name]), ("athena", athena[row][name])):
                    if d.name in APPROX and expected is not None:
                        assert isinstance(got, float), (engine, where, got)
                        tol = bound(d, kept, entity, t, w)
                        assert abs(got - expected) <= tol, (engine, where, got, expected, tol)  # type: ignore[operator]
                    else:
                        assert same(got, expected), (engine, where, got, expected)


@settings(max_examples=80, deadline=None)
@given(histories())
def test_stream_rejects_exactly_the_late_events_and_matches_the_backfill(
    history: tuple[list[dict[str, object]], list[tuple[str, int]]],
) -> None:
    """All arrivals through the state: the LATE outcomes are the oracle's late events, and the
    streamed state encodes to the same string as the state rebuilt from the accepted history
    (the batch backfill), so a backfill followed by streaming continues seamlessly."""
    arrivals, _ = history
    for d in DEFS:
        kept, late = accepted_events(d, arrivals)
        for entity in ENTITIES:
            state = AggregationState(d)
            rejected = []
            for pos, e in enumerate(arrivals):
                if e["entity"] != entity:
                    continue
                outcome = state.apply(
                    int(e["ts"]), int(e["seq"]), str(e["hash"]), e["values"][d.value_column]
                )  # type: ignore[call-overload,index]
                if outcome == LATE:
                    rejected.append(pos)
            assert rejected == [p for p in late if arrivals[p]["entity"] == entity]
            history_rows = [
                (int(e["ts"]), int(e["seq"]), str(e["hash"]), e["values"][d.value_column])  # type: ignore[call-overload,index]
                for e in kept + kept[:3]  # the offline history may hold replays
                if e["entity"] == entity
            ]
            rebuilt = AggregationState.rebuild(d, history_rows)  # type: ignore[arg-type]
            assert rebuilt.encode() == state.encode()
