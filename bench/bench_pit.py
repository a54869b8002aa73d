"""Point-in-time dataset building: fsgen's local engine against the best hand-written DuckDB
queries for the same result, measured in the same run on the same files.

    python bench/bench_pit.py [--quick] [--big] [--repeat N]

Shapes: ``wide`` -- N offline rows, 10 per entity; ``deep`` -- N rows, 1,000 per entity;
N/10 labels each (N = 1,000,000; 100,000 with ``--quick``; ``--big`` adds N = 10,000,000).
The offline store is written in the local store's layout (hourly partitions, 30 days, ISO
event-time strings, as SageMaker's offline store holds them).

Contenders, all from the same labels DataFrame to a DataFrame of the label columns plus the
three features in label order, with the same semantics (latest record at or before the label
time by event time, then api_invocation_time, then write_time; a tombstone or a record older
than the group's TTL gives missing values):

- ``fsgen``: ``build_dataset`` end to end (its planner picks the join form);
- ``window``: ``row_number()`` over the key / time inequality join;
- ``asof``: ``ASOF LEFT JOIN`` on the key and an ordering struct (event, api, write);
- ``floor-window`` / ``floor-asof``: the form that suits the shape on one Parquet file of the
  same history with int64 µs times (written once, untimed): what a read path can reach.

fsgen's first run of a shape finds no history cache (fsgen.pit.cache) and writes it; later
runs read it. The medians include that first run; ``fsgen_first_run`` reports it alone.

Every run is its own subprocess (cold process, warm page cache); runs are interleaved
(fsgen, window, asof, fsgen, ...) and each reports wall seconds, CPU seconds (user + system,
all threads, ``getrusage``) and peak RSS (``VmHWM``). Prints JSON: medians per contender,
fsgen's ratio to the best hand-written form (by median wall and by median CPU), peak memory
ratio, and whether
every contender returned the same values (a digest of the feature columns).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
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


TTL_US = 400 * 86400 * 1_000_000
FEATURES = ("age", "spend", "prime")


def _labels_sql(store: Path) -> tuple[str, str]:
    glob = (store / "offline" / "profile" / "data" / "*/*/*/*/*.parquet").as_posix()
    labels = (
        "SELECT customer_id, event_time, label, rn, "
        "epoch_us(CAST(event_time AS TIMESTAMPTZ)) AS t FROM labels_df"
    )
    return glob, labels


def window_query(con: duckdb.DuckDBPyConnection, store: Path) -> pd.DataFrame:
    """The window form: the key / time inequality join, ``row_number()`` per label row."""
    glob, labels = _labels_sql(store)
    sql = f"""
        WITH l AS ({labels}),
        h AS (SELECT customer_id, age, spend, prime, coalesce(is_deleted, false) AS d,
                     epoch_us(CAST(updated AS TIMESTAMPTZ)) AS e,
                     epoch_us(api_invocation_time) AS a, epoch_us(write_time) AS w
              FROM read_parquet('{glob}') WHERE updated IS NOT NULL),
        m AS (SELECT l.rn, h.age, h.spend, h.prime, h.d, h.e
              FROM l JOIN h ON l.customer_id = h.customer_id AND h.e <= l.t
              QUALIFY row_number() OVER (PARTITION BY l.rn ORDER BY h.e DESC, h.a DESC, h.w DESC)
                      = 1)
        SELECT l.customer_id, l.event_time, l.label,
               {_gone_columns("m", "l")}
        FROM l LEFT JOIN m ON l.rn = m.rn ORDER BY l.rn
    """
    return con.sql(sql).df()


def asof_query(con: duckdb.DuckDBPyConnection, store: Path) -> pd.DataFrame:
    """The ASOF-struct form: one sort-merge join on the key and (event, api, write)."""
    glob, labels = _labels_sql(store)
    sql = f"""
        WITH l AS ({labels}),
        h AS (SELECT customer_id, age, spend, prime, coalesce(is_deleted, false) AS d,
                     epoch_us(CAST(updated AS TIMESTAMPTZ)) AS e,
                     struct_pack(e := epoch_us(CAST(updated AS TIMESTAMPTZ)),
                                 a := epoch_us(api_invocation_time),
                                 w := epoch_us(write_time)) AS o
              FROM read_parquet('{glob}') WHERE updated IS NOT NULL)
        SELECT l.customer_id, l.event_time, l.label,
               {_gone_columns("h", "l")}
        FROM l ASOF LEFT JOIN h ON l.customer_id = h.customer_id
             AND struct_pack(e := l.t, a := NULL::BIGINT, w := NULL::BIGINT) >= h.o
        ORDER BY l.rn
    """
    return con.sql(sql).df()


def floor_query(con: duckdb.DuckDBPyConnection, store: Path, form: str) -> pd.DataFrame:
    """The single-file floor: the same hand-written form on one Parquet file holding the
    history with its times already parsed to int64 µs (written once, not timed)."""
    path = (store.parent / "floor.parquet").as_posix()
    _, labels = _labels_sql(store)
    if form == "window":
        sql = f"""
            WITH l AS ({labels}),
            m AS (SELECT l.rn, h.age, h.spend, h.prime, h.d, h.e
                  FROM l JOIN read_parquet('{path}') AS h
                    ON l.customer_id = h.customer_id AND h.e <= l.t
                  QUALIFY row_number() OVER (PARTITION BY l.rn ORDER BY h.e DESC, h.a DESC,
                                             h.w DESC) = 1)
            SELECT l.customer_id, l.event_time, l.label, {_gone_columns("m", "l")}
            FROM l LEFT JOIN m ON l.rn = m.rn ORDER BY l.rn
        """
    else:
        sql = f"""
            WITH l AS ({labels}),
            h AS (SELECT *, struct_pack(e := e, a := a, w := w) AS o FROM read_parquet('{path}'))
            SELECT l.customer_id, l.event_time, l.label, {_gone_columns("h", "l")}
            FROM l ASOF LEFT JOIN h ON l.customer_id = h.customer_id
                 AND struct_pack(e := l.t, a := NULL::BIGINT, w := NULL::BIGINT) >= h.o
            ORDER BY l.rn
        """
    return con.sql(sql).df()


def write_floor(root: Path) -> None:
    glob = (root / ".fsgen" / "offline" / "profile" / "data" / "*/*/*/*/*.parquet").as_posix()
    target = (root / "floor.parquet").as_posix()
    duckdb.sql(
        f"""COPY (SELECT customer_id, age, spend, prime, coalesce(is_deleted, false) AS d,
                         epoch_us(CAST(updated AS TIMESTAMPTZ)) AS e,
                         epoch_us(api_invocation_time) AS a, epoch_us(write_time) AS w
                  FROM read_parquet('{glob}') WHERE updated IS NOT NULL)
            TO '{target}' (FORMAT parquet)"""
    )


def _gone_columns(h: str, label: str) -> str:
    gone = f"{h}.d OR {label}.t - {h}.e > {TTL_US}"
    return ", ".join(f"CASE WHEN {gone} THEN NULL ELSE {h}.{c} END AS {c}" for c in FEATURES)


def digest(frame: pd.DataFrame) -> str:
    """A digest of the feature columns in row order (missing values as NaN)."""
    import hashlib

    h = hashlib.sha256()
    for c in FEATURES:
        values = pd.array(frame[c], dtype="Float64").to_numpy(dtype="float64", na_value=np.nan)
        h.update(np.ascontiguousarray(values).tobytes())
    return h.hexdigest()[:16]


def _peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM). Not ``ru_maxrss``: Linux carries that over
    ``execve`` from the forking parent, which holds the generated data."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(contender: str, root: Path) -> None:
    """One measured run in this (fresh) process; prints its JSON line."""
    import resource

    labels = pd.read_parquet(root / "labels.parquet")
    store = root / ".fsgen"
    if contender.startswith("fsgen"):
        from fsgen.loader import load_with_config
        from fsgen.pit import build_dataset

        config, spec = load_with_config(root)
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        out = build_dataset(config, spec, "training", labels)
    else:
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        con = duckdb.connect()
        con.register("labels_df", labels.assign(rn=np.arange(len(labels), dtype="int64")))
        if contender.startswith("floor-"):
            out = floor_query(con, store, contender.removeprefix("floor-"))
        else:
            out = (window_query if contender == "window" else asof_query)(con, store)
        con.close()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(
        json.dumps(
            {
                "wall_s": wall,
                "cpu_s": cpu,
                "peak_rss_mib": _peak_rss_mib(),
                "digest": digest(out),
                "missing": int(out["age"].isna().sum()),
                "form": os.environ.get("FSGEN_PIT_FORM", "auto"),
            }
        )
    )


def compact_store(root: Path) -> None:
    """Build the store's compacted layer (as ``LocalStore.compact`` does)."""
    from fsgen.loader import load_with_config
    from fsgen.store import LocalStore

    config, spec = load_with_config(root)
    with LocalStore.open(config, spec) as store:
        store.compact("profile")


def count_files(root: Path, layered: bool) -> int:
    """How many files the local engine reads for the group."""
    from fsgen.store import layer

    gdir = root / ".fsgen" / "offline" / "profile"
    published = layer.published_files(gdir)
    return len(layer.read_files(gdir, published) if layered else published)


def run_shape(
    name: str, rows: int, entities: int, n_labels: int, repeat: int, workdir: Path
) -> dict[str, object]:
    root = workdir / f"{name}-{rows}"
    write_project(root)
    write_store(root / ".fsgen", rows, entities, seed=len(name))
    labels_frame(n_labels, entities, seed=len(name)).to_parquet(root / "labels.parquet")
    write_floor(root)
    # the same store with its compacted layer (fsgen.store.layer), built untimed
    compacted = workdir / f"{name}-{rows}-compacted"
    shutil.copytree(root, compacted)
    subprocess.run(
        [sys.executable, __file__, "--compact", str(compacted)], check=True, capture_output=True
    )
    # the floor runs the form that suits the shape (window on shallow, ASOF on deep histories)
    floor = "floor-window" if rows // entities <= 100 else "floor-asof"
    # the window form's pairs grow as labels x rows per entity / 2: past 1e7 it is left out
    # (the deep shape at 1e6 rows, 5e7 pairs: 238 s a run against the ASOF form's 11 s in an
    # earlier run; never the best form there)
    window = n_labels * (rows // entities) // 2 <= 10_000_000
    contenders = ("fsgen", "fsgen-compacted", *(("window",) if window else ()), "asof", floor)
    runs: dict[str, list[dict[str, object]]] = {c: [] for c in contenders}
    where = {c: compacted if c == "fsgen-compacted" else root for c in contenders}
    load_before = os.getloadavg()
    for _ in range(repeat):
        for contender in contenders:  # interleaved: A B C D A B C D ...
            proc = subprocess.run(
                [sys.executable, __file__, "--child", contender, str(where[contender])],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise SystemExit(f"{contender} run failed:\n{proc.stderr[-2000:]}")
            runs[contender].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    files = {"published": count_files(root, False), "compacted": count_files(compacted, True)}
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(compacted, ignore_errors=True)

    def med(contender: str, field: str) -> float:
        return float(statistics.median(float(r[field]) for r in runs[contender]))  # type: ignore[arg-type]

    summary = {
        c: {
            "wall_s": round(med(c, "wall_s"), 3),
            "cpu_s": round(med(c, "cpu_s"), 3),
            "peak_rss_mib": round(med(c, "peak_rss_mib"), 1),
            "wall_runs_s": [round(float(r["wall_s"]), 3) for r in runs[c]],  # type: ignore[arg-type]
        }
        for c in contenders
    }
    # chosen by CPU seconds: on a shared machine wall time moves with the load
    best = min((c for c in ("window", "asof") if c in runs), key=lambda c: med(c, "cpu_s"))
    digests = {str(r["digest"]) for c in contenders for r in runs[c]}
    first = runs["fsgen"][0]  # the run that found no history cache and wrote it
    return {
        "shape": name,
        "feature_rows": rows,
        "entities": entities,
        "rows_per_entity": rows // entities,
        "labels": n_labels,
        "repeat": repeat,
        **summary,
        "best_hand_written": best,
        "ratio_wall": round(med("fsgen", "wall_s") / med(best, "wall_s"), 3),
        "ratio_cpu": round(med("fsgen", "cpu_s") / med(best, "cpu_s"), 3),
        "ratio_peak_rss": round(med("fsgen", "peak_rss_mib") / med(best, "peak_rss_mib"), 3),
        "floor": floor,
        "files_read": files,
        "ratio_wall_compacted": round(med("fsgen-compacted", "wall_s") / med(best, "wall_s"), 3),
        "ratio_cpu_compacted": round(med("fsgen-compacted", "cpu_s") / med(best, "cpu_s"), 3),
        "ratio_peak_rss_compacted": round(
            med("fsgen-compacted", "peak_rss_mib") / med(best, "peak_rss_mib"), 3
        ),
        "fsgen_compacted_first_run": {
            "wall_s": round(float(runs["fsgen-compacted"][0]["wall_s"]), 3),  # type: ignore[arg-type]
            "cpu_s": round(float(runs["fsgen-compacted"][0]["cpu_s"]), 3),  # type: ignore[arg-type]
        },
        "ratio_cpu_to_floor": round(med("fsgen", "cpu_s") / med(floor, "cpu_s"), 3),
        "fsgen_first_run": {
            "wall_s": round(float(first["wall_s"]), 3),  # type: ignore[arg-type]
            "cpu_s": round(float(first["cpu_s"]), 3),  # type: ignore[arg-type]
            "peak_rss_mib": round(float(first["peak_rss_mib"]), 1),  # type: ignore[arg-type]
            "ratio_cpu": round(float(first["cpu_s"]) / med(best, "cpu_s"), 3),  # type: ignore[arg-type]
        },
        "values_agree": len(digests) == 1,
        "load_average": [round(x, 2) for x in (*load_before, *os.getloadavg())],
        "missing": runs["fsgen"][0]["missing"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100k rows x 10k labels")
    parser.add_argument("--big", action="store_true", help="also 10M rows x 1M labels")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--rows", type=int, action="append", help="offline rows (repeatable)")
    parser.add_argument("--only", choices=["wide", "deep"], default=None)
    parser.add_argument("--child", nargs=2, metavar=("CONTENDER", "ROOT"), help=argparse.SUPPRESS)
    parser.add_argument("--compact", metavar="ROOT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    if args.compact:
        compact_store(Path(args.compact))
        return
    sizes = args.rows or ([100_000] if args.quick else [1_000_000])
    if args.big and 10_000_000 not in sizes:
        sizes.append(10_000_000)
    repeat = args.repeat or (3 if args.quick else 5)
    shapes = [
        (name, rows, rows // per)
        for rows in sizes
        for name, per in (("wide", 10), ("deep", 1_000))
        if args.only in (None, name)
    ]
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="fsgen-bench-pit-"))
    try:
        results = []
        for name, rows, entities in shapes:
            results.append(run_shape(name, rows, entities, rows // 10, repeat, workdir))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)  # each shape as done
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        json.dumps(
            {
                "benchmark": "pit_dataset",
                "quick": args.quick,
                "repeat": repeat,
                "target_ratio": 1.1,
                "target_peak_rss_ratio": 1.2,
                "cpus": os.cpu_count(),
                "load_average": [round(x, 2) for x in (*load_before, *os.getloadavg())][:6],
                "duckdb": duckdb.__version__,
                "python": sys.version.split()[0],
                "shapes": results,
                "within_target": all(
                    r["ratio_wall"] <= 1.1 and r["ratio_cpu"] <= 1.1 for r in results
                ),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
