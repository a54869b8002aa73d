"""Benchmark: online reads in process -- ``LocalStore.get_record`` (one record) and
``LocalStore.batch_get`` (100 records) -- with baselines measured in the same run.

    python bench/bench_online_get.py [--records N | --quick] [--gets N]

Prints one JSON object with p50/p99/max latencies in milliseconds. Baselines: the bare
SQLite primary-key SELECT the store is built on (the floor), and a DuckDB query on the
offline Parquet files (reading features without an online store).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import make_csv, make_project

GROUP = "account-activity"


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6, 4)

    return {
        "p50_ms": at(0.50),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1] / 1e6, 4),
        "n": len(ordered),
    }


def timed(fn: object, args: list[tuple[object, ...]]) -> list[int]:
    out = []
    clock = time.perf_counter_ns
    for a in args:
        start = clock()
        fn(*a)  # type: ignore[operator]
        out.append(clock() - start)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--records",
        type=int,
        default=200_000,
        help="raw rows ingested first (about a fifth are distinct ids)",
    )
    parser.add_argument("--gets", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="20,000 rows, 2,000 gets")
    args = parser.parse_args(argv)
    rows, gets = (20_000, 2_000) if args.quick else (args.records, args.gets)
    with tempfile.TemporaryDirectory(prefix="fsgen-bench-") as tmp:
        root = make_project(Path(tmp) / "project")
        sys.path.insert(0, str(root))
        src = Path(tmp) / "activity.csv"
        make_csv(src, rows)
        from fsgen.loader import load
        from fsgen.store import LocalStore

        store = LocalStore(root / ".fsgen", load(root))
        store.ingest(GROUP, src)
        rt = store.runtime(GROUP)
        ids = sorted(store.online.snapshot(rt))
        now = 1_704_067_200.0 + 86_400  # inside the 30-day TTL of every record
        rng = random.Random(7)
        singles = [(GROUP, rng.choice(ids)) for _ in range(gets)]
        batches = [(GROUP, rng.sample(ids, 100)) for _ in range(max(gets // 10, 100))]
        for g, rid in singles[:500]:  # warm up
            store.get_record(g, rid, now=now)

        def get(g: str, rid: str) -> None:
            assert store.get_record(g, rid, now=now) is not None

        def batch(g: str, rids: list[str]) -> None:
            assert None not in store.batch_get(g, rids, now=now)

        single = percentiles(timed(get, singles))
        hundred = percentiles(timed(batch, batches))

        con = sqlite3.connect(root / ".fsgen" / "online.sqlite")
        table = store.online.table(rt)

        def raw(g: str, rid: str) -> None:
            con.execute(table.select, (rid,)).fetchone()

        raw_single = percentiles(timed(raw, singles))
        import duckdb

        duck = duckdb.connect()
        glob = f"{store.offline_dir(GROUP)}/data/*/*/*/*/*.parquet"
        duck_args = singles[: max(gets // 40, 50)]

        def duck_get(g: str, rid: str) -> None:
            duck.execute(
                f"SELECT * FROM read_parquet('{glob}') WHERE account_id = ? "
                "ORDER BY event_time DESC, api_invocation_time DESC LIMIT 1",
                [rid],
            ).fetchall()

        duck_single = percentiles(timed(duck_get, duck_args))
        store.close()
    print(
        json.dumps(
            {
                "benchmark": "online_get",
                "rows_ingested": rows,
                "online_records": len(ids),
                "machine": {
                    "cpus": os.cpu_count(),
                    "load_average_1m": round(os.getloadavg()[0], 2),
                },
                "get_record": single,
                "target_get_record_p99_ms": 0.1,
                "batch_get_100": hundred,
                "target_batch_get_100_p50_ms": 0.5,
                "meets_targets": single["p99_ms"] <= 0.1 and hundred["p50_ms"] <= 0.5,
                "baseline_sqlite_primary_key_select": raw_single,
                "baseline_duckdb_on_offline_parquet": duck_single,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
