"""Benchmark: batch ingestion of N raw rows into a 5-feature group -- validate, transform,
offline Parquet + online SQLite -- against baselines measured in the same run.

    python bench/bench_ingest.py [--rows N | --quick] [--chunk-rows N] [--workers N]

Prints one JSON object. CPU seconds (this process and its workers) are given next to wall
time because wall time on a shared machine depends on what else runs.

Measured: ``LocalStore.ingest`` (what ``fsgen ingest`` runs, in this process), the
``fsgen ingest`` command and the generated batch job (``python -m
generated.groups.<g>.batch_job``), both as a user runs them, interpreter start-up and imports
included; all three run the one batch pipeline. Baselines: (1) pandas: the same five
features computed vectorized, one Parquet file, and the latest record per id into SQLite
with ``to_sql`` (no validation, no per-record rejects, no partitions, no crash safety);
(2) the same as a plain DuckDB script (features in SQL, ``COPY`` to one Parquet file, the
latest per id into SQLite); (3) the per-row path:
``GroupRuntime.process`` on each row plus a SQLite ``executemany``, measured on a slice of at
most 100,000 rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sqlite3
import sys
import tempfile
import textwrap
import time
from pathlib import Path

DEFS = '''
"""Benchmark definitions: one group, five features."""

import math

from fsgen import Entity, FeatureGroup, Fractional, Integral, Online, String

account = Entity("account_id", String, description="An account")

activity = FeatureGroup(
    "account-activity", entity=account, event_time="event_time", online=Online(ttl="30d"),
    owner="bench", description="Five features over account activity",
)


@activity.feature(Fractional, description="Average amount per transaction")
def avg_amount(amount: float, txn_count: int) -> float:
    return amount / max(txn_count, 1)


@activity.feature(Integral, description="Transaction count bucket 0..9")
def count_bucket(txn_count: int) -> int:
    return min(txn_count // 10, 9)


@activity.feature(String, description="Channel, lower case")
def channel_norm(channel: str) -> str:
    return channel.strip().lower()


@activity.feature(Integral, description="1 when the amount is above 500")
def high_value(amount: float) -> int:
    return int(amount > 500.0)


@activity.feature(Fractional, description="log(1 + amount)")
def log_amount(amount: float) -> float:
    return math.log1p(max(amount, 0.0))
'''


def make_project(root: Path) -> Path:
    (root / "benchdefs").mkdir(parents=True, exist_ok=True)
    (root / "benchdefs" / "__init__.py").write_text('"""Benchmark definitions."""\n')
    (root / "benchdefs" / "activity.py").write_text(textwrap.dedent(DEFS))
    (root / "pyproject.toml").write_text(
        '[project]\nname = "bench"\nversion = "0"\n\n[tool.fsgen]\ndefinitions = "benchdefs"\n'
    )
    return root


def make_csv(path: Path, rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(42)
    ids = rng.integers(0, max(rows // 5, 1), rows)
    seconds = 1_704_067_200 + rng.integers(0, 86_400, rows)
    times = pa.array(seconds.astype("datetime64[s]")).cast(pa.string())
    times = pa.compute.replace_substring(times, " ", "T")
    table = pa.table(
        {
            "account_id": pa.array(np.char.add("A", ids.astype(str))),
            "event_time": pa.compute.binary_join_element_wise(times, pa.scalar("Z"), ""),
            "amount": pa.array(np.round(rng.gamma(2.0, 150.0, rows), 2)),
            "txn_count": pa.array(rng.integers(0, 120, rows)),
            "channel": pa.array(rng.choice([" Web", "POS ", "mobile", "ATM"], rows)),
        }
    )
    pacsv.write_csv(table, path)


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (the worker processes)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def bench_fsgen(root: Path, src: Path, chunk_rows: int, workers: int | None) -> dict[str, object]:
    from fsgen.loader import load
    from fsgen.store import LocalStore

    spec = load(root)
    store = LocalStore(root / ".fsgen", spec)
    cpu = _cpu()
    start = time.perf_counter()
    result = store.ingest("account-activity", src, chunk_rows=chunk_rows, workers=workers)
    seconds = time.perf_counter() - start
    cpu = _cpu() - cpu
    files = len(list(store.offline_dir("account-activity").glob("data/*/*/*/*/*.parquet")))
    online_rows = store.online.count(store.runtime("account-activity"))
    store.close()
    return {
        "seconds": round(seconds, 3),
        "rows_per_s": round(result.read / seconds),
        "cpu_seconds": round(cpu, 3),
        "rows_per_cpu_s": round(result.read / cpu),
        "read": result.read,
        "written": result.written,
        "rejected": result.rejected,
        "offline_files": files,
        "online_records": online_rows,
    }


def bench_batch_job(root: Path, src: Path) -> dict[str, object]:
    """The generated batch job as a user runs it: ``python -m
    generated.groups.account_activity.batch_job SRC`` into the project's local store (a fresh
    one), interpreter start-up and imports included."""
    from fsgen.codegen import generate
    from fsgen.config import load_config
    from fsgen.loader import load

    generate(load_config(root), load(root))
    return _command(
        root,
        [sys.executable, "-m", "generated.groups.account_activity.batch_job", str(src), "--json"],
    )


def bench_cli(root: Path, src: Path) -> dict[str, object]:
    """``fsgen ingest account-activity SRC`` as a user runs it, into a fresh store,
    interpreter start-up and imports included: what the batch job is compared with."""
    fsgen_cli = Path(sys.executable).with_name("fsgen")
    return _command(
        root,
        [str(fsgen_cli), "--project", str(root), "ingest", "account-activity", str(src), "--json"],
    )


def _command(root: Path, command: list[str]) -> dict[str, object]:
    import shutil
    import subprocess

    shutil.rmtree(root / ".fsgen", ignore_errors=True)
    # records go only to deployed groups (as on SageMaker): apply first, outside the timing
    fsgen_cli = Path(sys.executable).with_name("fsgen")
    subprocess.run(
        [str(fsgen_cli), "--project", str(root), "apply", "--auto-approve"],
        cwd=root,
        capture_output=True,
        check=True,
    )
    cpu = _cpu()
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    cpu = _cpu() - cpu
    if proc.returncode != 0:
        raise SystemExit(f"{command[1:3]} failed: {proc.stderr}")
    result = json.loads(proc.stdout)
    return {
        "seconds": round(seconds, 3),
        "rows_per_s": round(result["read"] / seconds),
        "cpu_seconds": round(cpu, 3),
        "rows_per_cpu_s": round(result["read"] / cpu),
        "read": result["read"],
        "written": result["written"],
        "rejected": result["rejected"],
    }


def bench_pandas(src: Path, out: Path) -> dict[str, object]:
    import numpy as np
    import pandas as pd

    cpu = _cpu()
    start = time.perf_counter()
    df = pd.read_csv(src, dtype={"account_id": str, "event_time": str, "channel": str})
    feats = pd.DataFrame(
        {
            "account_id": df["account_id"],
            "event_time": df["event_time"],
            "avg_amount": df["amount"] / df["txn_count"].clip(lower=1),
            "count_bucket": (df["txn_count"] // 10).clip(upper=9),
            "channel_norm": df["channel"].str.strip().str.lower(),
            "high_value": (df["amount"] > 500.0).astype("int64"),
            "log_amount": np.log1p(df["amount"].clip(lower=0.0)),
        }
    )
    feats.to_parquet(out / "pandas.parquet", index=False)
    latest = feats.sort_values("event_time", kind="stable").drop_duplicates(
        "account_id", keep="last"
    )
    with sqlite3.connect(out / "pandas.sqlite") as con:
        latest.to_sql("online", con, index=False, if_exists="replace")
    seconds = time.perf_counter() - start
    cpu = _cpu() - cpu
    return {
        "seconds": round(seconds, 3),
        "rows_per_s": round(len(df) / seconds),
        "cpu_seconds": round(cpu, 3),
        "rows_per_cpu_s": round(len(df) / cpu),
    }


def bench_duckdb(src: Path, out: Path) -> dict[str, object]:
    """The plain DuckDB script: the five features in SQL over the CSV, one Parquet file, and
    the latest record per id into SQLite (no validation, no rejects, no partitions)."""
    import duckdb

    cpu = _cpu()
    start = time.perf_counter()
    con = duckdb.connect()
    path = src.as_posix().replace("'", "''")
    con.execute(
        f"""CREATE TEMP TABLE feats AS
        SELECT account_id, event_time, amount / greatest(txn_count, 1) AS avg_amount,
               least(txn_count // 10, 9) AS count_bucket, lower(trim(channel)) AS channel_norm,
               CAST(amount > 500.0 AS BIGINT) AS high_value,
               ln(1 + greatest(amount, 0.0)) AS log_amount
        FROM read_csv('{path}', header = true,
                      types = {{'account_id': 'VARCHAR', 'event_time': 'VARCHAR',
                               'channel': 'VARCHAR'}})"""
    )
    target = (out / "duckdb.parquet").as_posix().replace("'", "''")
    con.execute(f"COPY feats TO '{target}' (FORMAT parquet)")
    latest = con.execute(
        "SELECT * FROM feats QUALIFY row_number() OVER "
        "(PARTITION BY account_id ORDER BY event_time DESC) = 1"
    ).fetchall()
    rows = con.execute("SELECT count(*) FROM feats").fetchall()[0][0]
    con.close()
    with sqlite3.connect(out / "duckdb.sqlite") as db:
        db.execute(
            "CREATE TABLE online (id TEXT PRIMARY KEY, t TEXT, a REAL, b INT, c TEXT, d INT, "
            "e REAL)"
        )
        db.executemany("INSERT INTO online VALUES (?,?,?,?,?,?,?)", latest)
    seconds = time.perf_counter() - start
    cpu = _cpu() - cpu
    return {
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds),
        "cpu_seconds": round(cpu, 3),
        "rows_per_cpu_s": round(rows / cpu),
    }


def bench_per_row(root: Path, src: Path, out: Path, rows: int) -> dict[str, object]:
    import csv
    import itertools

    from fsgen.bind import group_runtime
    from fsgen.loader import load

    rt = group_runtime(load(root).group("account-activity"))
    con = sqlite3.connect(out / "per_row.sqlite")
    con.execute(
        "CREATE TABLE online (id TEXT PRIMARY KEY, t TEXT, a REAL, b INT, c TEXT, d INT, e REAL)"
    )
    sql = (
        "INSERT INTO online VALUES (?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
        "t=excluded.t, a=excluded.a, b=excluded.b, c=excluded.c, d=excluded.d, "
        "e=excluded.e WHERE excluded.t >= online.t"
    )
    start = time.perf_counter()
    with src.open(newline="") as fh:
        records = [rt.process(r) for r in itertools.islice(csv.DictReader(fh), rows)]
    con.executemany(sql, [tuple(r.values()) for r in records])
    con.commit()
    seconds = time.perf_counter() - start
    return {"rows": rows, "seconds": round(seconds, 3), "rows_per_s": round(rows / seconds)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument(
        "--workers", type=int, default=None, help="transform processes (default: fsgen's choice)"
    )
    args = parser.parse_args(argv)
    rows = 100_000 if args.quick else args.rows
    with tempfile.TemporaryDirectory(prefix="fsgen-bench-") as tmp:
        root = make_project(Path(tmp) / "project")
        sys.path.insert(0, str(root))
        src = Path(tmp) / "activity.csv"
        make_csv(src, rows)
        load_before = os.getloadavg()[0]
        fsgen = bench_fsgen(root, src, args.chunk_rows, args.workers)
        cli = bench_cli(root, src)
        job = bench_batch_job(root, src)
        pandas = bench_pandas(src, Path(tmp))
        duck = bench_duckdb(src, Path(tmp))
        per_row = bench_per_row(root, src, Path(tmp), min(rows, 100_000))
    print(
        json.dumps(
            {
                "benchmark": "ingest",
                "rows": rows,
                "features": 5,
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "load_average_1m_before": round(load_before, 2),
                    "load_average_1m_after": round(os.getloadavg()[0], 2),
                },
                "fsgen": fsgen,
                "target_rows_per_s": 250_000,
                "meets_target": fsgen["rows_per_s"] >= 250_000,  # type: ignore[operator]
                "fsgen_ingest_command": cli,
                "generated_batch_job": job,
                "batch_job_cpu_ratio_to_command": round(
                    float(job["cpu_seconds"]) / float(cli["cpu_seconds"]),  # type: ignore[arg-type]
                    3,
                ),
                "batch_job_meets_target": job["rows_per_s"] >= 250_000,  # type: ignore[operator]
                "baseline_pandas_vectorized": pandas,
                "baseline_duckdb_script": duck,
                "cpu_ratio_to_duckdb_script": round(
                    float(fsgen["cpu_seconds"]) / float(duck["cpu_seconds"]),  # type: ignore[arg-type]
                    3,
                ),
                "cpu_target_ratio": 2.0,
                "baseline_per_row_runtime_sqlite": per_row,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
