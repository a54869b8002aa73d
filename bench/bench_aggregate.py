"""Aggregation features: point-in-time backfill against a hand-written DuckDB window query, and
the online read (decode, merge, finalize) of a record with four aggregation features.

    python bench/bench_aggregate.py [--quick] [--repeat N]

Backfill (full size): 1,000,000 events over 10,000 entities in 60 days, 100,000 labels, one mean
over three windows (1d, 7d, 30d) with a 1h hop. fsgen runs the local engine's query
(fsgen.pit.aggregate: distinct events, hourly tiles, RANGE frames over tiles, exact head); the
baseline is the query a person would write: labels and events in one stream per entity, sum and
count over ``RANGE BETWEEN w PRECEDING AND 1 PRECEDING`` on the event time (a continuous, not
hop-aligned, window, no replay de-duplication), label order restored. Both produce Arrow tables.

Online read: one record holding four aggregation states (count, sum, mean, last; windows 1h,
1d, 7d, hop 1h, 300 events over 7 days), decoded from its String features and finalized at a
read time, in process: ``finalize_record``, warm (the same record read again, as a served
entity is between two writes: answered from the answers cache, fsgen.runtime.aggread.
finalize_text) and cold (every read a record never read before: decoded and finalized; also as
the thread's CPU time, since on a shared machine a wall-clock p99 is mostly other processes'
time slices, and asking for one aggregation's three features only, as a feature set that uses
one of them does), with the garbage collector's passes (by generation) that started inside a
cold read. Baseline in the same run: ``json.loads`` of the four strings (the decode alone).
Prints JSON.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import percentiles

from fsgen.pit.aggregate import AggregationQuery, compute_local
from fsgen.runtime.aggregate import (
    AggregationDef,
    AggregationState,
    encode_states,
    finalize_record,
)

US = 1_000_000
HOUR, DAY = 3600 * US, 86400 * US


def make_data(events: int, labels: int, entities: int) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(7)
    span = 60 * DAY
    keys = np.array([f"c{i:06d}" for i in range(entities)])
    ev_keys = keys[rng.integers(0, entities, events)]
    ev_ts = rng.integers(0, span, events)
    event_table = pa.table(
        {
            "k": ev_keys,
            "ts": ev_ts,
            "event_sequence": np.arange(events),
            "event_hash": np.char.mod("%032x", np.arange(events)),
            "spend__value": np.round(rng.gamma(2.0, 30.0, events), 2),
        }
    )
    label_table = pa.table(
        {
            "_row": np.arange(labels),
            "k": keys[rng.integers(0, entities, labels)],
            "ts": rng.integers(0, span, labels),
        }
    )
    return event_table, label_table


def baseline_sql() -> str:
    cols = []
    for name, w in (("1d", DAY), ("7d", 7 * DAY), ("30d", 30 * DAY)):
        frame = f"PARTITION BY k ORDER BY ts RANGE BETWEEN {w} PRECEDING AND 1 PRECEDING"
        cols.append(f"sum(v) OVER ({frame}) / count(v) OVER ({frame}) AS spend_{name}")
    return (
        "SELECT _row, " + ", ".join(c.split(" AS ")[1] for c in cols) + " FROM ("
        "SELECT _row, " + ", ".join(cols) + " FROM (SELECT k, ts, spend__value AS v, "
        "NULL::BIGINT AS _row FROM events UNION ALL SELECT k, ts, NULL::DOUBLE AS v, _row "
        "FROM labels)) WHERE _row IS NOT NULL ORDER BY _row"
    )


def best_of(repeat: int, run: object) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best, result


def backfill(events: int, labels: int, entities: int, repeat: int) -> dict[str, object]:
    event_table, label_table = make_data(events, labels, entities)
    con = duckdb.connect()
    con.register("events", event_table)
    con.register("labels", label_table)
    d = AggregationDef(
        name="spend",
        function="mean",
        value_kind="Fractional",
        windows=(DAY, 7 * DAY, 30 * DAY),
        hop=HOUR,
        lateness=HOUR,
    )
    query = AggregationQuery(keys=("k",), definitions=(d,))

    def fetch(sql: str) -> pa.Table:
        rel = con.sql(sql)
        return (getattr(rel, "to_arrow_table", None) or rel.arrow)()

    fsgen_s, ours = best_of(repeat, lambda: compute_local(con, query, "events", "labels"))
    base_s, theirs = best_of(repeat, lambda: fetch(baseline_sql()))
    assert isinstance(ours, pa.Table) and isinstance(theirs, pa.Table)
    return {
        "events": events,
        "labels": labels,
        "entities": entities,
        "windows": ["1d", "7d", "30d"],
        "hop": "1h",
        "fsgen_s": round(fsgen_s, 3),
        "baseline_window_query_s": round(base_s, 3),
        "ratio": round(fsgen_s / base_s, 3),
        "target_ratio": 1.5,
        "rows": [ours.num_rows, theirs.num_rows],
    }


def content_hash(seq: int) -> str:
    """An event's content hash as fsgen.runtime.aggregate.event_hash makes one: 16 hex digits
    of a SHA-256."""
    return hashlib.sha256(str(seq).encode()).hexdigest()[:16]


def online_read(reads: int) -> dict[str, object]:
    defs = [
        AggregationDef(
            name=f"f{i}",
            function=function,
            value_kind="Fractional",
            windows=(HOUR, DAY, 7 * DAY),
            hop=HOUR,
            lateness=HOUR,
        )
        for i, function in enumerate(("count", "sum", "mean", "last"))
    ]
    rng = np.random.default_rng(3)
    times = np.sort(rng.integers(0, 7 * DAY, 300))
    values = np.round(rng.gamma(2.0, 30.0, 300), 2)
    states = [AggregationState(d) for d in defs]
    for seq, (t, v) in enumerate(zip(times.tolist(), values.tolist(), strict=True)):
        for state in states:
            state.apply(t, seq, content_hash(seq), v)
    record = encode_states(states)
    now = int(times[-1]) + 60 * US
    for _ in range(200):
        finalize_record(defs, record, now)
    samples, decode = [], []
    texts = list(record.values())
    for _ in range(reads):
        start = time.perf_counter_ns()
        finalize_record(defs, record, now)
        samples.append(time.perf_counter_ns() - start)
        start = time.perf_counter_ns()
        for text in texts:
            json.loads(text)
        decode.append(time.perf_counter_ns() - start)
    # cold: every read a record never read before (one more event each), so nothing is cached
    cold, cold_decode, cold_cpu, cold_one = [], [], [], []
    one = list(defs[0].feature_names)  # a feature set that uses one aggregation's windows
    passes = [0, 0, 0]  # garbage-collector passes by generation, started inside a cold read
    timing = False

    def count_pass(phase: str, info: dict[str, int]) -> None:
        if timing and phase == "start":
            passes[info["generation"]] += 1

    gc.callbacks.append(count_pass)
    for i in range(min(reads, 2_000)):
        for state in states:
            state.apply(int(times[-1]) + i + 1, 300 + i, content_hash(300 + i), 1.0)
        fresh = encode_states(states)
        fresh_texts = list(fresh.values())
        start = time.perf_counter_ns()
        for text in fresh_texts:
            json.loads(text)
        cold_decode.append(time.perf_counter_ns() - start)
        timing = True
        cpu0, start = time.thread_time_ns(), time.perf_counter_ns()
        finalize_record(defs, fresh, now + i + 1)
        cold.append(time.perf_counter_ns() - start)
        cold_cpu.append(time.thread_time_ns() - cpu0)
        timing = False
        for state in states:  # and once more, asking for one aggregation's features only
            state.apply(int(times[-1]) + i + 1, 10_300 + i, content_hash(10_300 + i), 1.0)
        fresh = encode_states(states)
        start = time.perf_counter_ns()
        finalize_record(defs, fresh, now + i + 1, one)
        cold_one.append(time.perf_counter_ns() - start)
    gc.callbacks.remove(count_pass)
    return {
        "features": 4 * 3,
        "state_bytes": sum(len(v) for v in texts),
        "finalize_record": percentiles(samples),
        "baseline_json_decode_only": percentiles(decode),
        "finalize_record_cold": percentiles(cold),
        "finalize_record_cold_cpu": percentiles(cold_cpu),
        "finalize_record_cold_one_aggregation": percentiles(cold_one),
        "cold_reads_gc_passes_by_generation": passes,
        "baseline_json_decode_only_cold": percentiles(cold_decode),
        "target_p99_ms": 0.2,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = (50_000, 5_000, 1_000) if args.quick else (1_000_000, 100_000, 10_000)
    out = {
        "backfill": backfill(*sizes, repeat=1 if args.quick else args.repeat),
        "online_read": online_read(2_000 if args.quick else 20_000),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
