"""Catalog build time: ``fsgen catalog`` (DuckDB statistics + HTML pages) on a synthetic
project, next to a baseline computing the same statistics with pandas/numpy in memory.

    python bench/bench_catalog.py [--quick]

Prints JSON: sizes, seconds for the statistics alone, the whole catalog, and the baseline.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

PYPROJECT = '[project]\nname = "bench"\nversion = "0"\n\n[tool.fsgen]\ndefinitions = "defs"\n'


def make_project(root: Path, groups: int, features: int) -> None:
    (root / "defs").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "defs" / "__init__.py").write_text("")
    (root / "defs" / "entities.py").write_text(
        'from fsgen import Entity, String\n\nuser = Entity("user_id", String, description="u")\n'
    )
    for g in range(groups):
        lines = [
            "from defs.entities import user",
            "from fsgen import FeatureGroup, Fractional, Integral, String",
            "",
            f'g = FeatureGroup("g{g}", entity=user, event_time="ts", owner="team{g % 3}", '
            'description="synthetic")',
            "",
        ]
        for f in range(features):
            kind = (
                ("Fractional", "float", "x * 2.0")
                if f % 3 == 0
                else (
                    ("Integral", "int", "x + 1") if f % 3 == 1 else ("String", "str", "x.lower()")
                )
            )
            lines += [
                "",
                f'@g.feature({kind[0]}, description="feature {f}")',
                f"def f{f}(x{f}: {kind[1]}) -> {kind[1]}:",
                f"    x = x{f}",
                f"    return {kind[2]}",
                "",
            ]
        (root / "defs" / f"g{g}.py").write_text("\n".join(lines))


def frame(rows: int, features: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {
        "user_id": [f"u{i}" for i in rng.integers(0, rows // 2 + 1, rows)],
        "ts": pd.date_range("2024-01-01", periods=rows, freq="min", tz="UTC").strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
    }
    for f in range(features):
        if f % 3 == 0:
            data[f"x{f}"] = rng.normal(size=rows)
        elif f % 3 == 1:
            data[f"x{f}"] = rng.integers(0, 1000, rows)
        else:
            data[f"x{f}"] = rng.choice(["A", "B", "C", "D", "E"], rows)
    return pd.DataFrame(data)


def baseline(store: object, spec: object) -> float:
    """Same statistics with pandas over the offline data read into memory."""
    start = time.perf_counter()
    for g in spec.groups:  # type: ignore[attr-defined]
        df = store.read_offline(g.name)  # type: ignore[attr-defined]
        df = df[~df["is_deleted"]]
        for f in g.features:
            col = df[f.name]
            if f.dtype.scalar.value == "String":
                col.value_counts().head(10)
                col.nunique()
            else:
                col.describe()
                np.histogram(col.dropna(), bins=20)
            col.isna().sum()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    args = parser.parse_args()
    groups, features, rows = (3, 6, 2_000) if args.quick else (8, 15, 50_000)
    from fsgen.catalog import write_catalog
    from fsgen.catalog.stats import group_stats
    from fsgen.config import load_config
    from fsgen.loader import load
    from fsgen.store import LocalStore

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proj"
        make_project(root, groups, features)
        config, spec = load_config(root), load(root)
        with LocalStore.open(config, spec) as store:
            for i, g in enumerate(spec.groups):
                store.ingest(g.name, frame(rows, features, i))
            start = time.perf_counter()
            for g in spec.groups:
                group_stats(config.store_path, g)
            stats_seconds = time.perf_counter() - start
            start = time.perf_counter()
            write_catalog(config, spec, Path(tmp) / "site")
            catalog_seconds = time.perf_counter() - start
            baseline_seconds = baseline(store, spec)
        pages = sum(1 for _ in (Path(tmp) / "site").rglob("*.html"))
    print(
        json.dumps(
            {
                "groups": groups,
                "features_per_group": features,
                "rows_per_group": rows,
                "pages": pages,
                "stats_seconds": round(stats_seconds, 3),
                "catalog_seconds": round(catalog_seconds, 3),
                "baseline_pandas_stats_seconds": round(baseline_seconds, 3),
                "note": textwrap.shorten(
                    "catalog_seconds includes the DuckDB statistics, codegen's "
                    "artifact build and every page; the baseline computes the "
                    "statistics only, with pandas over data read into memory",
                    width=300,
                ),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
