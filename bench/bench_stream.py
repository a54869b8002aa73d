"""Benchmark: the stream handler into the local store, single process, against baselines
measured in the same run.

    python bench/bench_stream.py [--records N | --quick] [--batch-size N]
    python bench/bench_stream.py --mode aggregation [--shape cold|realistic|both] [--quick]

Prints one JSON object:

- ``handler``: records per second through the generated stream handler of customer-features
  (base64 + JSON decode, validation, transformation by the featuredefs functions, one atomic
  local-store commit per Kinesis batch: offline Parquet + online SQLite), timing only the
  handler calls on pre-built Lambda events (target >= 50,000/s);
- ``replay_latency_ms``: ``fsgen stream replay`` end to end with Lambda's default batch size
  (100): per record, from being read from the file to being readable online (p50/p99; target
  p99 < 50 ms);
- baselines: ``plain_json_sqlite`` (decode, compute the three features inline, executemany
  upsert into SQLite: no validation, no offline store, no crash safety) and
  ``batch_ingest`` (``LocalStore.ingest`` of the same records as a JSON-lines file).

With ``--mode aggregation`` the same figures are measured for the aggregation group
``purchases`` (target >= 30,000 events/s through its generated handler), twice: ``handler``,
each Kinesis batch committed before the next is handled, as in a Lambda (per batch the handler
loads the touched customers' states from the local store, applies the events, commits the
event rows offline and the states online), and ``handler_coalesced``, as ``fsgen stream
replay`` and ``consume`` write into the local store (the writer holds the states between
batches and commits 100,000 events' rows and every held state at once, the last commit
timed too); its baselines are ``plain_state_sqlite`` (decode,
the two functions inline, ``AggregationState.apply`` on states kept in a dict, encode, an
executemany upsert of the states: no validation, no offline store, no crash safety) and
``batch_ingest`` (``LocalStore.ingest`` of the same events: event rows, then every customer's
state rebuilt from the history); ``minimal_loop`` is a floor, not a competitor: the least such
a step does in Python (decode, hash, plain dict tiles, JSON, one upsert per batch; no
validation, exactness, lateness, eviction, offline store or crash safety), the speed of the
loop inside every correct implementation on this machine. Two shapes (``--shape``, both by
default; see ``SHAPES``): ``cold``, 20,000 events of 20,000 customers (every event a new state:
the worst case), and ``realistic``, 200,000 events of 10,000 customers over 7 days in
event-time order with up to 5 minutes of lateness (``--quick``: 50,000). Each is measured in
batches of 1,000, each shape in its own process (a warm handler keeps the states it wrote; one
shape's would crowd the next one's out).

CPU seconds are given next to wall time: on a shared machine wall time depends on what else
runs.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GROUP = "customer-features"


def make_records(n: int, seed: int = 7) -> list[bytes]:
    """Stream-like updates: event times increasing by 20 ms with up to 5 s of disorder."""
    rnd = random.Random(seed)
    base = datetime(2024, 3, 1, tzinfo=UTC)
    tiers = ["prime", "standard", "prime_plus", "basic"]
    out = []
    for i in range(n):
        t = base + timedelta(milliseconds=20 * i + 1 - rnd.randrange(0, 5000))
        out.append(
            json.dumps(
                {
                    "customer_id": f"C{rnd.randrange(20000):06d}",
                    "last_updated_time": t.strftime("%Y-%m-%dT%H:%M:%S.")
                    + f"{t.microsecond // 1000:03d}Z"
                    if t.microsecond // 1000
                    else t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "birth_date": f"{rnd.randrange(1940, 2005)}-{rnd.randrange(1, 13):02d}-"
                    f"{rnd.randrange(1, 29):02d}",
                    "membership_tier": rnd.choice(tiers),
                    "tenure_months": rnd.randrange(0, 240),
                    "total_spend": round(rnd.uniform(0, 50000), 2),
                }
            ).encode()
        )
    return out


def cpu() -> float:
    t = os.times()
    return t.user + t.system


def _sqlite(path: Path, table: str) -> sqlite3.Connection:
    """A baseline's SQLite database: WAL, synchronous=NORMAL, its one table."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute(table)
    return con


def _upsert(con: sqlite3.Connection, sql: str, rows: list[tuple[object, ...]]) -> None:
    """One batch's upsert, one transaction."""
    con.execute("BEGIN")
    con.executemany(sql, rows)
    con.execute("COMMIT")


def _timed(t0: float, c0: float, n: int, unit: str) -> dict[str, object]:
    """Wall and CPU seconds since ``t0`` / ``c0`` and the rate of ``n`` ``unit``."""
    wall, cpu_s = time.perf_counter() - t0, cpu() - c0
    return {
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu_s, 3),
        f"{unit}_per_s": round(n / wall),
    }


def bench_handler(records: list[bytes], batch: int, work: Path) -> dict[str, object]:
    from fsgen.config import load_config
    from fsgen.loader import load
    from fsgen.store import LocalStore
    from fsgen.stream.events import event_record, load_handler

    config = load_config(ROOT)
    spec = load(config.root)
    handler = load_handler(config, spec, GROUP)
    events = []
    for start in range(0, len(records), batch):
        events.append(
            {
                "Records": [
                    event_record(d, f"{start + i:056d}", str(start + i))
                    for i, d in enumerate(records[start : start + batch])
                ]
            }
        )
    warm = LocalStore(work / "warm-up-store", spec)  # imports and first-use costs (cold start)
    handler.process(events[0], warm.writer(GROUP), None)
    warm.close()
    store = LocalStore(work / "handler-store", spec)
    writer = store.writer(GROUP)
    written = 0
    c0, t0 = cpu(), time.perf_counter()
    for ev in events:
        written += handler.process(ev, writer, None).written
    wall, cpu_s = time.perf_counter() - t0, cpu() - c0
    store.close()
    assert written == len(records), (written, len(records))
    return {
        "records": len(records),
        "batch_size": batch,
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu_s, 3),
        "records_per_s": round(len(records) / wall),
        "records_per_cpu_s": round(len(records) / cpu_s) if cpu_s else None,
        "handler": handler.note,
    }


def bench_latency(records: list[bytes], work: Path) -> dict[str, object]:
    from fsgen.config import load_config
    from fsgen.loader import load
    from fsgen.store import LocalStore
    from fsgen.stream.events import load_handler
    from fsgen.stream.replay import replay

    config = load_config(ROOT)
    spec = load(config.root)
    handler = load_handler(config, spec, GROUP)
    source = work / "replay.jsonl"
    source.write_bytes(b"\n".join(records) + b"\n")
    warm = LocalStore(work / "warm-up-replay", spec)
    replay(handler, source, warm.writer(GROUP), None, batch_size=100, limit=200)
    warm.close()
    store = LocalStore(work / "replay-store", spec)
    result = replay(handler, source, store.writer(GROUP), None, batch_size=100, visible=store)
    store.close()
    lat = sorted(result.latencies_ms)

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))], 3)

    return {
        "records": result.read,
        "batch_size": 100,
        "p50": pct(0.50),
        "p99": pct(0.99),
        "max": round(lat[-1], 3),
        "records_per_s": round(result.read / result.seconds),
    }


def bench_plain(records: list[bytes], batch: int, work: Path) -> dict[str, object]:
    """Decode, compute the features inline, upsert the latest into SQLite."""
    sys.path.insert(0, str(ROOT))
    from featuredefs.customer import age, avg_monthly_spend, is_prime_member

    encoded = [base64.b64encode(d).decode() for d in records]
    con = _sqlite(
        work / "plain.sqlite",
        "CREATE TABLE t (id TEXT PRIMARY KEY, ts TEXT, age INTEGER, avg REAL, "
        "prime INTEGER) WITHOUT ROWID",
    )
    sql = (
        "INSERT INTO t VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET ts = "
        "excluded.ts, age = excluded.age, avg = excluded.avg, prime = excluded.prime "
        "WHERE excluded.ts >= t.ts"
    )
    c0, t0 = cpu(), time.perf_counter()
    for start in range(0, len(encoded), batch):
        rows = []
        for data in encoded[start : start + batch]:
            r = json.loads(base64.b64decode(data))
            rows.append(
                (
                    r["customer_id"],
                    r["last_updated_time"],
                    age(r["birth_date"], r["last_updated_time"]),
                    avg_monthly_spend(float(r["total_spend"]), int(r["tenure_months"])),
                    is_prime_member(r["membership_tier"]),
                )
            )
        _upsert(con, sql, rows)
    timed = _timed(t0, c0, len(records), "records")
    con.close()
    return timed


def bench_batch(records: list[bytes], work: Path) -> dict[str, object]:
    from fsgen.config import load_config
    from fsgen.loader import load
    from fsgen.store import LocalStore

    config = load_config(ROOT)
    spec = load(config.root)
    source = work / "batch.jsonl"
    source.write_bytes(b"\n".join(records) + b"\n")
    warm = LocalStore(work / "warm-up-batch", spec)
    warm.ingest(GROUP, source, fmt="jsonl")
    warm.close()
    store = LocalStore(work / "batch-store", spec)
    c0, t0 = cpu(), time.perf_counter()
    result = store.ingest(GROUP, source, fmt="jsonl")
    wall, cpu_s = time.perf_counter() - t0, cpu() - c0
    store.close()
    return {
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu_s, 3),
        "written": result.written,
        "records_per_s": round(len(records) / wall),
    }


AGG_GROUP = "purchases"
#: the aggregation baselines' table: a customer's two encoded states
STATES_TABLE = "CREATE TABLE t (id TEXT PRIMARY KEY, a TEXT, b TEXT) WITHOUT ROWID"
STATES_UPSERT = "INSERT OR REPLACE INTO t VALUES (?, ?, ?)"


#: the aggregation shapes: (events, customers, milliseconds between events)
SHAPES = {
    # every event a customer never seen: the state of each is new (the worst case)
    "cold": (20_000, 20_000, 20),
    # 20 purchases per customer over 7 days, in event-time order with up to 5 minutes of
    # lateness: each state holds ~20 hourly tiles and is read back batch after batch
    "realistic": (200_000, 10_000, 3_024),
}


def make_events(n: int, customers: int = 20_000, step_ms: int = 20, seed: int = 7) -> list[bytes]:
    """Purchases of ``customers`` customers: event times ``step_ms`` apart with up to 5
    minutes of disorder (within purchase_count's 10-minute lateness), so none is late."""
    rnd = random.Random(seed)
    base = datetime(2024, 3, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        t = base + timedelta(milliseconds=step_ms * i - rnd.randrange(0, 300_000))
        millis = t.microsecond // 1000
        stamp = t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{millis:03d}Z" if millis else "Z")
        event = {
            "customer_id": f"C{rnd.randrange(customers):06d}",
            "purchased_at": stamp,
            "amount": round(rnd.lognormvariate(3.5, 0.8), 2),
        }
        out.append(json.dumps(event).encode())
    return out


def kinesis_events(records: list[bytes], batch: int) -> list[dict[str, object]]:
    from fsgen.stream.events import event_record

    return [
        {
            "Records": [
                event_record(d, str(start + i + 1), str(start + i))
                for i, d in enumerate(records[start : start + batch])
            ]
        }
        for start in range(0, len(records), batch)
    ]


def bench_agg_handler(
    records: list[bytes], batch: int, work: Path, coalesce: int = 0
) -> dict[str, object]:
    """``coalesce`` > 0: the writer holds the batches' states and commits them together, this
    many events at a time and at the end (timed), as ``fsgen stream replay`` and ``consume``
    do; 0: each batch is committed before the next is handled, as in a Lambda."""
    from fsgen.config import load_config
    from fsgen.loader import load
    from fsgen.store import LocalStore
    from fsgen.stream.events import load_handler

    config = load_config(ROOT)
    spec = load(config.root)
    handler = load_handler(config, spec, AGG_GROUP)
    events = kinesis_events(records, batch)
    warm = LocalStore(work / "warm-up-agg", spec)
    handler.process(events[0], warm.writer(AGG_GROUP), None)
    warm.close()
    store = LocalStore(work / f"agg-handler-store-{coalesce}", spec)
    writer = store.writer(AGG_GROUP)
    writer.coalesce = coalesce
    written = 0
    c0, t0 = cpu(), time.perf_counter()
    for ev in events:
        written += handler.process(ev, writer, None).written
    writer.flush()
    wall, cpu_s = time.perf_counter() - t0, cpu() - c0
    store.close()
    assert written == len(records), (written, len(records))
    return {
        "events": len(records),
        "batch_size": batch,
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu_s, 3),
        "events_per_s": round(len(records) / wall),
        "events_per_cpu_s": round(len(records) / cpu_s) if cpu_s else None,
        "handler": handler.note,
    }


def bench_agg_plain(records: list[bytes], batch: int, work: Path) -> dict[str, object]:
    """Decode, the two functions inline, apply to states held in a dict, upsert the states."""
    from featuredefs.purchases import avg_purchase_value, purchase_count
    from fsgen.loader import load
    from fsgen.runtime.aggregate import AggregationState
    from fsgen.runtime.encoding import parse_event_time

    spec = load(ROOT)
    mean_def, count_def = (a.runtime() for a in spec.group(AGG_GROUP).aggregations)
    encoded = [base64.b64encode(d).decode() for d in records]
    con, sql = _sqlite(work / "agg-plain.sqlite", STATES_TABLE), STATES_UPSERT
    states: dict[str, tuple[AggregationState, AggregationState]] = {}
    c0, t0 = cpu(), time.perf_counter()
    for start in range(0, len(encoded), batch):
        touched = {}
        for seq, data in enumerate(encoded[start : start + batch], start=start + 1):
            r = json.loads(base64.b64decode(data))
            cid = r["customer_id"]
            if cid not in states:
                states[cid] = (AggregationState(mean_def), AggregationState(count_def))
            t = round(parse_event_time("String", r["purchased_at"]) * 1_000_000)
            amount = float(r["amount"])
            a, b = states[cid]
            a.apply(t, seq, "", avg_purchase_value(amount))
            b.apply(t, seq, "", purchase_count(amount))
            touched[cid] = (a, b)
        rows = [(cid, a.encode(), b.encode()) for cid, (a, b) in touched.items()]
        _upsert(con, sql, rows)
    timed = _timed(t0, c0, len(records), "events")
    con.close()
    return timed


def bench_agg_minimal(records: list[bytes], batch: int, work: Path) -> dict[str, object]:
    """The least a stream step of this group can do in Python, as a floor: decode, the two
    functions inline, a content hash, tiles as plain dicts (float sums: not exact), the states
    as JSON, one executemany upsert per batch. No validation, no lateness, eviction, prefix or
    frontier, no offline store, no crash safety: not a correct implementation, the speed of
    the loop every correct one contains."""
    from featuredefs.purchases import avg_purchase_value, purchase_count

    encoded = [base64.b64encode(d).decode() for d in records]
    con, sql = _sqlite(work / "agg-minimal.sqlite", STATES_TABLE), STATES_UPSERT
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    hour, five_minutes = 3_600_000_000, 300_000_000
    states: dict[str, list[Any]] = {}
    c0, t0 = cpu(), time.perf_counter()
    for start in range(0, len(encoded), batch):
        touched = {}
        for seq, data in enumerate(encoded[start : start + batch], start=start + 1):
            r = json.loads(base64.b64decode(data))
            cid = r["customer_id"]
            t = int(datetime.fromisoformat(r["purchased_at"]).timestamp() * 1_000_000)
            amount = float(r["amount"])
            content = dumps([cid, t, [["amount", amount]]]).encode()
            digest = hashlib.sha256(content).hexdigest()[:16]
            state = states.get(cid)
            if state is None:
                state = states[cid] = [{}, {}, t, seq, digest]
            means, counts = state[0], state[1]
            value = avg_purchase_value(amount)
            k = t // hour
            p = means.get(k)
            means[k] = [1, value] if p is None else [p[0] + 1, p[1] + value]
            if purchase_count(amount) is not None:
                k = t // five_minutes
                counts[k] = counts.get(k, 0) + 1
            state[2], state[3], state[4] = max(state[2], t), seq, digest
            touched[cid] = state
        rows = [
            (
                cid,
                dumps([s[2], s[3], s[4], sorted(s[0].items())]),
                dumps([s[2], s[3], s[4], sorted(s[1].items())]),
            )
            for cid, s in touched.items()
        ]
        _upsert(con, sql, rows)
    timed = _timed(t0, c0, len(records), "events")
    con.close()
    return timed


def bench_agg_batch(records: list[bytes], work: Path) -> dict[str, object]:
    from fsgen.config import load_config
    from fsgen.loader import load
    from fsgen.store import LocalStore

    config = load_config(ROOT)
    spec = load(config.root)
    source = work / "agg-batch.jsonl"
    source.write_bytes(b"\n".join(records) + b"\n")
    store = LocalStore(work / "agg-batch-store", spec)
    c0, t0 = cpu(), time.perf_counter()
    result = store.ingest(AGG_GROUP, source, fmt="jsonl", workers=0)
    wall, cpu_s = time.perf_counter() - t0, cpu() - c0
    store.close()
    return {
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu_s, 3),
        "written": result.written,
        "events_per_s": round(len(records) / wall),
    }


def main_aggregation(shapes: list[str], batch: int, quick: bool) -> None:
    if len(shapes) > 1:
        # one process per shape, as one Lambda container serves one stream: the states a
        # handler keeps from one shape would otherwise crowd the next one's out
        import subprocess

        runs = {}
        for shape in shapes:
            argv = [sys.executable, __file__, "--mode", "aggregation", "--shape", shape]
            argv += ["--batch-size", str(batch)] + (["--quick"] if quick else [])
            done = subprocess.run(argv, check=True, capture_output=True, text=True)
            runs.update(json.loads(done.stdout)["shapes"])
        print(json.dumps(aggregation_report(runs), indent=2))
        return
    from fsgen.stream.replay import COALESCE_ROWS  # what replay and consume hold

    runs = {}
    for shape in shapes:
        n, customers, step_ms = SHAPES[shape]
        if quick and shape == "realistic":
            n, step_ms = n // 4, step_ms * 4  # 5 purchases per customer over the same 7 days
        records = make_events(n, customers, step_ms)
        with tempfile.TemporaryDirectory(prefix="fsgen-bench-stream-agg-") as tmp:
            work = Path(tmp)
            runs[shape] = {
                "events": n,
                "customers": customers,
                "load_average_before": [round(x, 2) for x in os.getloadavg()],
                "handler": bench_agg_handler(records, batch, work),
                "handler_coalesced": bench_agg_handler(records, batch, work, COALESCE_ROWS),
                "baselines": {
                    "plain_state_sqlite": bench_agg_plain(records, batch, work),
                    "minimal_loop": bench_agg_minimal(records, batch, work),
                    "batch_ingest": bench_agg_batch(records, work),
                },
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
            }
    print(json.dumps(aggregation_report(runs), indent=2))


def aggregation_report(runs: dict[str, object]) -> dict[str, object]:
    return {
        "benchmark": "stream-aggregation",
        "group": AGG_GROUP,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "shapes": runs,
        "targets": {"handler_events_per_s": 30_000, "handler_coalesced_events_per_s": 30_000},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["rows", "aggregation"], default="rows")
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument(
        "--batch-size", type=int, default=1000, help="Kinesis batch size for the throughput figure"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="20,000 records (smoke run); aggregation: the realistic shape at a quarter size",
    )
    parser.add_argument(
        "--shape",
        choices=["cold", "realistic", "both"],
        default="both",
        help="aggregation mode: which event shape (see SHAPES)",
    )
    args = parser.parse_args()
    n = 20_000 if args.quick else args.records
    if args.mode == "aggregation":
        shapes = ["cold", "realistic"] if args.shape == "both" else [args.shape]
        main_aggregation(shapes, args.batch_size, args.quick)
        return
    records = make_records(n)
    with tempfile.TemporaryDirectory(prefix="fsgen-bench-stream-") as tmp:
        work = Path(tmp)
        out = {
            "benchmark": "stream",
            "group": GROUP,
            "records": n,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "handler": bench_handler(records, args.batch_size, work),
            "replay_latency_ms": bench_latency(records[: min(n, 20_000)], work),
            "baselines": {
                "plain_json_sqlite": bench_plain(records, args.batch_size, work),
                "batch_ingest": bench_batch(records, work),
            },
            "targets": {"handler_records_per_s": 50_000, "replay_latency_p99_ms": 50},
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
