"""The backfill after an aggregation group's definitions change: ``fsgen ingest`` of the same
event file again recomputes its events instead of adding each a second time.

The history holds each event as written with the value functions of its time. When a value
function's logic changes (the plan says "Backfill needed") or an aggregation is added (its
value column is null in the stored rows), re-ingesting the same file gives every row another
content hash. Those rows are the same events (same entity, event time and row number, and the
earlier version was written by an ingestion of this same file): the earlier versions are
retracted by tombstones, and every reader of the history -- the state rebuild, the local
dataset engine, the generated Athena SQL, the catalog and the re-ingestion check -- leaves a
retracted version out. A different file whose row happens to share entity, time and row
number with an event stays another event (the re-ingestion tests' property)."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from fsgen.cli import main
from fsgen.loader import load_with_config
from fsgen.pit import build_dataset, plan_for
from fsgen.store.local import LocalStore

DEFS = """
from fsgen import Entity, FeatureGroup, FeatureSet, Fractional, Integral, String

rider = Entity("rider_id", String, description="A rider")
trips = FeatureGroup(
    "trips", entity=rider, event_time="ended_at", owner="mobility",
    description="Trips, one event each",
)


@trips.aggregation(
    Fractional, function="mean", windows=["1d", "7d"], hop="1h", description="Average fare"
)
def avg_fare(fare: float) -> float:
    return {fare}


@trips.aggregation(Integral, function="count", windows=["lifetime"], hop="1h",
                   description="Trips")
def trip_count(fare: float) -> int | None:
    return 1 if fare > 0 else None
{extra}

riders = FeatureSet("riders", [{features}], description="Rider model", owner="mobility")
"""
EXTRA = """

@trips.aggregation(Fractional, function="max", windows=["7d"], hop="1h", description="Top fare")
def top_fare(fare: float) -> float:
    return fare
"""
FEATURES = '"avg_fare_1d", "avg_fare_7d", "trip_count_lifetime"'
TRIPS = [  # rider, ended_at, fare: R1 takes two alike trips (two events)
    ("R1", "2024-05-01T08:00:00Z", 10.0),
    ("R1", "2024-05-01T08:00:00Z", 10.0),
    ("R2", "2024-05-01T09:30:00Z", 30.0),
    ("R1", "2024-05-02T10:00:00Z", 40.0),
    ("R2", "2024-05-03T11:00:00Z", 0.0),
]
LABELS = [("R1", "2024-05-03T00:00:00Z"), ("R2", "2024-05-04T00:00:00Z")]


def project(root: Path, fare: str = "fare", extra: str = "", features: str = FEATURES) -> None:
    (root / "featuredefs").mkdir(parents=True, exist_ok=True)
    (root / "featuredefs" / "__init__.py").write_text("")
    text = DEFS.format(fare=fare, extra=extra, features=features)
    (root / "featuredefs" / "trips.py").write_text(text)
    (root / "pyproject.toml").write_text('[tool.fsgen]\nproject = "rides"\n')
    lines = ["rider_id,ended_at,fare", *(f"{r},{t},{f}" for r, t, f in TRIPS)]
    (root / "trips.csv").write_text("\n".join(lines) + "\n")
    (root / "labels.csv").write_text(
        "rider_id,event_time\n" + "".join(f"{r},{t}\n" for r, t in LABELS)
    )


def fsgen(root: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["--project", str(root), *args], env={"NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.output


def online(root: Path, rider: str) -> dict[str, object]:
    out = fsgen(root, "get", "trips", rider, "--json", "--as-of", "2024-05-04T00:00:00Z")
    return json.loads(out)  # type: ignore[no-any-return]


def dataset(root: Path) -> pd.DataFrame:
    config, spec = load_with_config(root)
    return build_dataset(config, spec, "riders", pd.read_csv(root / "labels.csv"))


def athena(root: Path) -> pd.DataFrame:
    """The statements ``fsgen dataset --engine athena`` sends, on DuckDB over the files."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pit"))
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sqlengines import Table, athena_text, offline_table, run_duckdb, validate_trino

    from fsgen.pit.athena_runner import athena_job, label_table, to_arrow
    from fsgen.pit.dataset import finish
    from fsgen.pit.labels import read_labels
    from fsgen.pit.local import data_files

    config, spec = load_with_config(root)
    plan = plan_for(spec, "riders")
    rows = read_labels(pd.read_csv(root / "labels.csv"), plan)
    job = athena_job(
        spec,
        plan,
        rows,
        {"trips": ("sagemaker_featurestore", "trips-1714521600")},
        database="sagemaker_featurestore",
        location="s3://bucket/labels/",
        run_id="recompute",
    )
    files = data_files(config.store_path / "offline" / "trips")
    schema = pa.unify_schemas([pq.read_schema(p) for p in files])
    tables = [
        Table("sagemaker_featurestore", job.labels_table, label_table(plan, rows)),
        offline_table(files, schema, "trips-1714521600"),
    ]
    results = []
    for sql in (job.query, *job.aggregations):
        validate_trino(sql)
        answer = run_duckdb(sql, tables)
        results.append([{k: athena_text(v) for k, v in r.items()} for r in answer.to_pylist()])
    return finish(plan, rows, to_arrow(plan, len(rows.frame), results[0], results[1:]))


def oracle(fare: Callable[[float], float]) -> dict[str, dict[str, object]]:
    """The features at each label time from TRIPS, brute force: [floor_h(T - w), T)."""
    from datetime import datetime

    def at(text: str) -> float:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    out: dict[str, dict[str, object]] = {}
    for rider, label in LABELS:
        t = at(label)
        mine = [(at(w), f) for r, w, f in TRIPS if r == rider and at(w) < t]
        row: dict[str, object] = {}
        for name, days in (("avg_fare_1d", 1), ("avg_fare_7d", 7)):
            start = (t - days * 86400) // 3600 * 3600
            values = [fare(f) for w, f in mine if w >= start]
            row[name] = sum(values) / len(values) if values else None
        row["trip_count_lifetime"] = sum(1 for _, f in mine if f > 0)
        out[rider] = row
    return out


def agree(root: Path, want: dict[str, dict[str, object]]) -> None:
    """Online (fsgen get), the local dataset engine and the Athena statements all give the
    oracle's values (the SQL's means within its stated tolerance)."""
    local, sql = dataset(root), athena(root)
    for i, (rider, _) in enumerate(LABELS):
        for column, value in want[rider].items():
            for engine, frame in (("dataset", local), ("athena", sql)):
                got = frame[column][i]
                if value is None:
                    assert pd.isna(got), (engine, rider, column, got)
                elif isinstance(value, float):
                    assert math.isclose(got, value, rel_tol=1e-12), (engine, rider, column, got)
                else:
                    assert got == value, (engine, rider, column, got)
    assert online(root, "R1")["trip_count_lifetime"] == 3  # 2 trips alike + 1, fares > 0
    assert online(root, "R2")["trip_count_lifetime"] == 1  # the 0.0 fare does not count


def test_reingesting_after_a_logic_change_recomputes_the_events(tmp_path: Path) -> None:
    root = tmp_path / "rides"
    project(root)
    fsgen(root, "apply", "--auto-approve")
    fsgen(root, "ingest", "trips", str(root / "trips.csv"))
    agree(root, oracle(lambda f: f))
    project(root, fare="fare * 2")  # the plan: "Backfill needed"
    assert "Backfill needed" in fsgen(root, "plan")
    fsgen(root, "apply", "--auto-approve")
    out = fsgen(root, "ingest", "trips", str(root / "trips.csv"))
    # the refund's values are the same under both (0 * 2, no count): one copy (stored
    # already: not written again), four recomputed
    assert "written 4" in out and "1 already stored" in out
    assert "recomputed 4 ingested before with other values" in out
    agree(root, oracle(lambda f: f * 2))  # the new values; no event counted twice
    history = fsgen(root, "history")
    assert "written 4, rejected 0, 1 already stored, recomputed 4 ingested before" in history
    # the same file once more: copies of the recomputed rows, nothing to retract
    out = fsgen(root, "ingest", "trips", str(root / "trips.csv"))
    assert "recomputed" not in out
    agree(root, oracle(lambda f: f * 2))
    # and the logic back again: the first versions were retracted, they stay so; the rows of
    # this run are the events now
    project(root)
    fsgen(root, "apply", "--auto-approve")
    assert "recomputed 4" in fsgen(root, "ingest", "trips", str(root / "trips.csv"))
    agree(root, oracle(lambda f: f))
    config, spec = load_with_config(root)
    with LocalStore(config.store_path, spec) as s:
        rows = s.read_offline("trips", dedup=False)
    # 5 rows, then 4 recomputed (the refund stored already), none (the same rows again), 4
    # recomputed; 2 retractions of 4
    assert len(rows) == 5 + 4 + 0 + 4 + 8 and int(rows["is_deleted"].sum()) == 8


def test_an_added_aggregation_is_filled_by_reingesting_the_same_file(tmp_path: Path) -> None:
    root = tmp_path / "rides"
    project(root)
    fsgen(root, "apply", "--auto-approve")
    fsgen(root, "ingest", "trips", str(root / "trips.csv"))
    project(root, extra=EXTRA, features=FEATURES + ', "top_fare_7d"')
    plan = fsgen(root, "plan")
    assert "aggregation 'top_fare' added" in plan and "fsgen ingest trips" in plan
    fsgen(root, "apply", "--auto-approve")
    assert online(root, "R1")["top_fare_7d"] is None  # no events for it until the backfill
    out = fsgen(root, "ingest", "trips", str(root / "trips.csv"))
    assert "recomputed 5" in out
    agree(root, oracle(lambda f: f))
    assert online(root, "R1")["top_fare_7d"] == 40.0
    assert list(dataset(root)["top_fare_7d"]) == [40.0, 30.0]


def test_another_file_sharing_a_rows_entity_time_and_number_is_another_event(
    tmp_path: Path,
) -> None:
    """Not the same source: the row of ``more.csv`` is a new event beside the first file's
    (the fare differs, so it is no re-export either)."""
    root = tmp_path / "rides"
    project(root)
    fsgen(root, "apply", "--auto-approve")
    fsgen(root, "ingest", "trips", str(root / "trips.csv"))
    (root / "more.csv").write_text("rider_id,ended_at,fare\nR1,2024-05-01T08:00:00Z,12.0\n")
    out = fsgen(root, "ingest", "trips", str(root / "more.csv"))
    assert "recomputed" not in out
    assert online(root, "R1")["trip_count_lifetime"] == 4


def test_the_generated_batch_job_recomputes_as_fsgen_ingest_does(
    tmp_path: Path, capsys: object
) -> None:
    """The batch job into the local store runs the same ingestion: the same recomputation."""
    from fsgen.backends import project_data_plane
    from fsgen.bind import group_runtime
    from fsgen.loader import load
    from fsgen.runtime.batch import main as batch_main

    root = tmp_path / "rides"
    project(root)
    fsgen(root, "apply", "--auto-approve")
    argv = [str(root / "trips.csv"), "--project", str(root)]
    job = group_runtime(load(root).group("trips"))
    assert batch_main(job, [], argv, project_data_plane) == 0
    project(root, fare="fare * 2")
    fsgen(root, "apply", "--auto-approve")
    job = group_runtime(load(root).group("trips"))
    capsys.readouterr()  # type: ignore[attr-defined]
    assert batch_main(job, [], argv, project_data_plane) == 0
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert (  # fsgen ingest's summary, word for word
        "written 4, rejected 0, 1 already stored (the same rows ingested before), recomputed "
        "4 ingested before with other values" in err
    ), err
    agree(root, oracle(lambda f: f * 2))
