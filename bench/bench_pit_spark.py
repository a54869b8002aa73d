"""Point-in-time dataset building on Spark (``--engine spark``) against the local DuckDB engine,
in the same run on the same files.

    python bench/bench_pit_spark.py [--quick] [--repeat N]

The data is bench_pit.py's: ``wide`` -- 1,000,000 offline rows over 100,000 entities (10 per
entity) and ``deep`` -- 1,000,000 rows over 1,000 entities, 100,000 labels each, in the local
store's layout (hourly partitions over 30 days, 720 files). Both engines run ``build_dataset``
end to end (labels DataFrame in, training DataFrame out). The Spark session is the one the
engine starts itself (``local[*]``); its start and the first query are timed apart
(``spark_cold_s``), then best-of-N warm runs. Prints JSON: seconds for both, the ratio, and
whether the two frames are equal cell for cell.
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

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pit import labels_frame, write_project, write_store


def run_shape(
    name: str, rows: int, entities: int, n_labels: int, repeat: int, workdir: Path
) -> dict[str, object]:
    from fsgen.loader import load_with_config
    from fsgen.pit import build_dataset

    root = workdir / name
    write_project(root)
    config, spec = load_with_config(root)
    write_store(root / ".fsgen", rows, entities, seed=len(name))
    labels = labels_frame(n_labels, entities, seed=len(name))
    start = time.perf_counter()
    spark_frame = build_dataset(config, spec, "training", labels, engine="spark")
    cold = time.perf_counter() - start
    local_times: list[float] = []
    spark_times: list[float] = []
    local_frame = None
    for _ in range(repeat):
        start = time.perf_counter()
        local_frame = build_dataset(config, spec, "training", labels)
        local_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        spark_frame = build_dataset(config, spec, "training", labels, engine="spark")
        spark_times.append(time.perf_counter() - start)
    assert local_frame is not None
    agree = list(local_frame.dtypes) == list(spark_frame.dtypes) and all(
        np.array_equal(
            pd.array(local_frame[c], dtype="Float64").fillna(-1.0).to_numpy(),
            pd.array(spark_frame[c], dtype="Float64").fillna(-1.0).to_numpy(),
        )
        for c in ("age", "spend", "prime")
    )
    best_s, best_l = min(spark_times), min(local_times)
    return {
        "shape": name,
        "feature_rows": rows,
        "entities": entities,
        "rows_per_entity": rows // entities,
        "labels": n_labels,
        "spark_cold_s": round(cold, 3),
        "spark_s": round(best_s, 3),
        "local_s": round(best_l, 3),
        "spark_median_s": round(statistics.median(spark_times), 3),
        "local_median_s": round(statistics.median(local_times), 3),
        "ratio": round(best_s / best_l, 2),
        "values_agree": bool(agree),
        "missing": int(local_frame["age"].isna().sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100k rows x 10k labels")
    parser.add_argument("--repeat", type=int, default=None)
    args = parser.parse_args()
    import duckdb
    import pyspark

    scale = 10 if args.quick else 1
    repeat = args.repeat or (2 if args.quick else 3)
    shapes = [
        ("wide", 1_000_000 // scale, 100_000 // scale),
        ("deep", 1_000_000 // scale, 1_000 // scale),
    ]
    workdir = Path(tempfile.mkdtemp(prefix="fsgen-bench-pit-spark-"))
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
                "benchmark": "pit_dataset_spark",
                "quick": args.quick,
                "repeat": repeat,
                "cpus": os.cpu_count(),
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "spark_master": os.environ.get("FSGEN_SPARK_MASTER", "local[*]"),
                "pyspark": pyspark.__version__,
                "duckdb": duckdb.__version__,
                "python": sys.version.split()[0],
                "shapes": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
