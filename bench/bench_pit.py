"""Point-in-time dataset building: fsgen's local engine against a hand-written DuckDB ASOF join,
measured in the same run on the same files.

    python bench/bench_pit.py [--quick] [--repeat N]

Shapes (full size): ``wide`` -- 1,000,000 offline rows over 100,000 entities (10 per entity);
``deep`` -- 1,000,000 rows over 1,000 entities (1,000 per entity); 100,000 labels each. The
offline store is written in the local store's layout (hourly partitions, 30 days). fsgen runs
``build_dataset`` end to end (labels DataFrame in, training DataFrame out, with its total
tie-break, TTL and delete handling); the baseline is the plain query a person would write:
``ASOF LEFT JOIN`` on key and event time, no tie-break, no TTL, label order restored, to a
DataFrame. Prints JSON: best-of-N seconds for both, the ratio, and whether their values agree
(the generated data has no event-time ties, deletes or expired rows, so they must).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

DEFS = """
from fsgen import Entity, FeatureGroup, FeatureSet, Fractional, Integral, Online, String

customer = Entity("customer_id", String)
profile = FeatureGroup("profile", entity=customer, event_time="updated", online=Online(ttl="400d"),
                       owner="bench", description="bench group")


@profile.feature(Integral, description="age")
def age(raw_age: int) -> int:
    return raw_age


@profile.feature(Fractional, description="spend")
def spend(raw_spend: float) -> float:
    return raw_spend


@profile.feature(Integral, description="prime")
def prime(raw_prime: int) -> int:
    return raw_prime


training = FeatureSet("training", [age, spend, prime], label_time="event_time", owner="bench")
"""

START = np.datetime64("2024-01-01T00:00:00", "ms")
DAYS = 30


def write_project(root: Path) -> None:
    (root / "benchdefs").mkdir(parents=True)
    (root / "benchdefs" / "__init__.py").write_text(DEFS)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "bench"\nversion = "0"\n\n[tool.fsgen]\ndefinitions = "benchdefs"\n'
    )


def iso(ms: np.ndarray) -> np.ndarray:
    text = np.datetime_as_string(ms.astype("datetime64[ms]"), unit="s").astype(str)
    return np.char.add(text, "Z")


def write_store(store: Path, rows: int, entities: int, seed: int) -> None:
    """Offline files of group 'profile' in the store layout; unique (entity, event second)."""
    rng = np.random.default_rng(seed)
    span = DAYS * 86400
    per = rows // entities
    entity = np.repeat(np.arange(entities), per)
    offsets = _distinct_offsets(rng, entities, per, span)
    event_ms = START.astype("int64") + offsets.astype("int64") * 1000
    write_us = (event_ms + rng.integers(0, 3_600_000, len(event_ms))) * 1000
    hour = event_ms // 3_600_000
    order = np.argsort(hour, kind="stable")
    ts = pa.timestamp("us", tz="UTC")
    table = pa.table(
        {
            "customer_id": pa.array(np.char.add("C", entity.astype(str))),
            "updated": pa.array(iso(event_ms)),
            "age": pa.array(rng.integers(18, 90, len(entity))),
            "spend": pa.array(rng.random(len(entity)) * 500),
            "prime": pa.array(rng.integers(0, 2, len(entity))),
            "write_time": pa.array(write_us, pa.int64()).cast(ts),
            "api_invocation_time": pa.array(write_us, pa.int64()).cast(ts),
            "is_deleted": pa.array(np.zeros(len(entity), bool)),
        }
    ).take(order)
    hours = hour[order]
    uniq, starts = np.unique(hours, return_index=True)
    bounds = [*starts.tolist(), len(hours)]
    for i, h in enumerate(uniq):
        stamp = str(np.datetime64(int(h), "h"))
        part = (
            store
            / "offline"
            / "profile"
            / "data"
            / f"year={stamp[:4]}"
            / f"month={stamp[5:7]}"
            / f"day={stamp[8:10]}"
            / f"hour={stamp[11:13]}"
        )
        part.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            table.slice(bounds[i], bounds[i + 1] - bounds[i]),
            part / "20240101T000000Z_bench_0.parquet",
        )


def _distinct_offsets(rng: np.random.Generator, entities: int, per: int, span: int) -> np.ndarray:
    """``per`` distinct seconds in [0, span) for each entity, vectorized."""
    raw = rng.integers(0, span // per, size=(entities, per))
    slots = np.arange(per) * (span // per)
    return (raw + slots).reshape(-1)


def labels_frame(n: int, entities: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed + 1)
    ms = START.astype("int64") + rng.integers(0, DAYS * 86400, n) * 1000 + 500
    return pd.DataFrame(
        {
            "customer_id": np.char.add("C", rng.integers(0, entities, n).astype(str)),
            "event_time": iso(ms),
            "label": rng.integers(0, 2, n),
        }
    )


def baseline(store: Path, labels: pd.DataFrame) -> pd.DataFrame:
    """The best plain DuckDB query: ASOF join on key and event time, label order restored."""
    glob = (store / "offline" / "profile" / "data" / "*/*/*/*/*.parquet").as_posix()
    con = duckdb.connect()
    con.register("labels_df", labels)
    sql = f"""
        SELECT l.customer_id, l.event_time, l.label, h.age, h.spend, h.prime
        FROM (SELECT *, row_number() OVER () AS rn,
                     epoch_us(CAST(event_time AS TIMESTAMPTZ)) AS t FROM labels_df) AS l
        ASOF LEFT JOIN (SELECT customer_id, age, spend, prime,
                               epoch_us(CAST(updated AS TIMESTAMPTZ)) AS et
                        FROM read_parquet('{glob}')) AS h
          ON l.customer_id = h.customer_id AND l.t >= h.et
        ORDER BY l.rn
    """
    frame = con.sql(sql).df()
    con.close()
    return frame


def run_shape(
    name: str, rows: int, entities: int, n_labels: int, repeat: int, workdir: Path
) -> dict[str, object]:
    from fsgen.loader import load_with_config
    from fsgen.pit import build_dataset

    root = workdir / name
    write_project(root)
    config, spec = load_with_config(root)
    store = root / ".fsgen"
    write_store(store, rows, entities, seed=len(name))
    labels = labels_frame(n_labels, entities, seed=len(name))
    fsgen_times: list[float] = []
    base_times: list[float] = []
    ours = theirs = None
    for _ in range(repeat):
        start = time.perf_counter()
        ours = build_dataset(config, spec, "training", labels)
        fsgen_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs = baseline(store, labels)
        base_times.append(time.perf_counter() - start)
    assert ours is not None and theirs is not None
    agree = all(
        np.array_equal(
            pd.array(ours[c], dtype="Float64").fillna(-1.0).to_numpy(),
            pd.array(theirs[c], dtype="Float64").fillna(-1.0).to_numpy(),
        )
        for c in ("age", "spend", "prime")
    )
    best_f, best_b = min(fsgen_times), min(base_times)
    return {
        "shape": name,
        "feature_rows": rows,
        "entities": entities,
        "rows_per_entity": rows // entities,
        "labels": n_labels,
        "fsgen_s": round(best_f, 4),
        "baseline_s": round(best_b, 4),
        "fsgen_median_s": round(statistics.median(fsgen_times), 4),
        "baseline_median_s": round(statistics.median(base_times), 4),
        "ratio": round(best_f / best_b, 3),
        "values_agree": bool(agree),
        "missing": int(ours["age"].isna().sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100k rows x 10k labels")
    parser.add_argument("--repeat", type=int, default=None)
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    repeat = args.repeat or (3 if args.quick else 5)
    shapes = [
        ("wide", 1_000_000 // scale, 100_000 // scale),
        ("deep", 1_000_000 // scale, 1_000 // scale),
    ]
    workdir = Path(tempfile.mkdtemp(prefix="fsgen-bench-pit-"))
    try:
        results = [
            run_shape(name, rows, entities, 100_000 // scale, repeat, workdir)
            for name, rows, entities in shapes
        ]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        json.dumps(
            {
                "benchmark": "pit_dataset",
                "quick": args.quick,
                "repeat": repeat,
                "target_ratio": 1.25,
                "cpus": os.cpu_count(),
                "duckdb": duckdb.__version__,
                "python": sys.version.split()[0],
                "shapes": results,
                "within_target": all(r["ratio"] <= 1.25 for r in results),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
