"""Iceberg offline tables in the local store: the table's shape (SageMaker's columns and
partitioning, in the SQL catalog), crash safety at every step of an Iceberg chunk's commit,
compaction through an Iceberg commit, apply creating and replacing the table, and the errors
for a missing pyiceberg or a group whose layout and declaration disagree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from storehelpers import FakeClock, make_project, user_row
from test_store_safety import check_consistent, make_csv

from fsgen.cli import main
from fsgen.config import ProjectConfig
from fsgen.errors import StoreError
from fsgen.spec import ProjectSpec
from fsgen.store import LocalStore, iceberg
from fsgen.store.offline import arrow_schema

# An ingestion that dies (os._exit: no cleanup, like a kill) at one step of chunk CHUNK's
# commit: before its files move into data/ (after the journal's commit point), after they
# moved but before the Iceberg append, or after the append but before the journal row goes.
CRASH_CHILD = """
import os, sys
from pathlib import Path
from fsgen.loader import load
from fsgen.store import LocalStore, iceberg, offline
root, store_dir, src, chunk, point, at = sys.argv[1:7]
at = int(at)
seen = {"publish": 0, "append": 0}
real_publish, real_append = offline.publish, iceberg.append

def publish(pairs):
    if point == "before-move" and seen["publish"] == at:
        os._exit(9)
    seen["publish"] += 1
    real_publish(pairs)

def append(*args, **kwargs):
    if point == "before-append" and seen["append"] == at:
        os._exit(9)
    real_append(*args, **kwargs)
    if point == "after-append" and seen["append"] == at:
        os._exit(9)
    seen["append"] += 1

offline.publish, iceberg.append = publish, append
store = LocalStore(Path(store_dir), load(Path(root)))
store.ingest("user-events", src, chunk_rows=int(chunk), commit_rows=int(chunk))
print("finished", flush=True)
"""


def test_an_iceberg_group_is_a_table_partitioned_like_sagemakers(
    iceberg_project: tuple[ProjectConfig, ProjectSpec], tmp_path: Path
) -> None:
    _, spec = iceberg_project
    with LocalStore(tmp_path / "store", spec, clock=FakeClock(1_700_000_000.0)) as store:
        rt = store.runtime("user-events")
        rows = [user_row("u1", "2024-03-01T23:59:59Z"), user_row("u2", "2024-03-02T00:00:00Z")]
        store.put_records("user-events", [rt.process(r) for r in rows])
        stock = store.runtime("item-stock")
        store.put_records(
            "item-stock",
            [stock.process({"store_id": 1, "sku": "x", "at": 1709251200.5, "units": 3})],
        )
        table = iceberg.catalog(store.root, "user-events").load_table(("fsgen", "user-events"))
        assert [f.name for f in table.schema().fields] == arrow_schema(rt).names
        (field,) = table.spec().fields
        assert (field.name, str(field.transform)) == ("ts_trunc", "truncate[10]")
        files = iceberg.data_file_names(store.root, "user-events")
        gdir = store.offline_dir("user-events")
        assert [Path(f).parent.relative_to(gdir).as_posix() for f in files] == [
            "data/ts_trunc=2024-03-01",
            "data/ts_trunc=2024-03-02",
        ]
        assert (store.root / "offline" / "_catalog.db").is_file()
        assert not list(gdir.glob("data/year=*"))
        # a Fractional event time cannot be truncated: that table is unpartitioned
        flat = iceberg.catalog(store.root, "item-stock").load_table(("fsgen", "item-stock"))
        assert flat.spec().is_unpartitioned()
        (only,) = iceberg.data_file_names(store.root, "item-stock")
        assert Path(only).parent == store.offline_dir("item-stock") / "data"
        assert store.read_offline("user-events")["user_id"].tolist() == ["u1", "u2"]


@pytest.mark.parametrize("point", ["before-move", "before-append", "after-append"])
def test_a_kill_at_each_step_of_an_iceberg_commit_then_rerun(
    iceberg_project: tuple[ProjectConfig, ProjectSpec], tmp_path: Path, point: str
) -> None:
    config, spec = iceberg_project
    rows, chunk = 1_200, 300
    src = make_csv(tmp_path / "in.csv", rows, seed=11)
    reference = LocalStore(tmp_path / "reference", spec)
    reference.ingest("user-events", src, chunk_rows=chunk)
    drop = ["write_time", "api_invocation_time"]
    expected_offline = reference.read_offline("user-events").drop(columns=drop)
    expected_online = reference.online.snapshot(reference.runtime("user-events"))
    reference.close()
    store_dir = tmp_path / "store"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            CRASH_CHILD,
            str(config.root),
            str(store_dir),
            str(src),
            str(chunk),
            point,
            "2",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(config.root)},
        timeout=300,
    )
    assert proc.returncode == 9, proc.stderr
    store = LocalStore(store_dir, spec)
    store.recover()
    # chunks 0 and 1 were whole before the kill; chunk 2 passed its commit point, so it is
    # rolled forward, appended to the table exactly once
    survived = store.read_offline("user-events", dedup=False)
    assert len(survived) == 3 * chunk
    check_consistent(store, chunk, rows)
    result = store.ingest("user-events", src, chunk_rows=chunk)
    assert (result.read, result.written) == (rows, rows)
    assert len(store.read_offline("user-events", dedup=False)) == 3 * chunk + rows
    assert store.read_offline("user-events").drop(columns=drop).equals(expected_offline)
    assert store.online.snapshot(store.runtime("user-events")) == expected_online
    store.close()


def test_compaction_rewrites_an_iceberg_group_through_one_commit(
    iceberg_project: tuple[ProjectConfig, ProjectSpec], tmp_path: Path
) -> None:
    _, spec = iceberg_project
    src = make_csv(tmp_path / "in.csv", 900, seed=3)
    with LocalStore(tmp_path / "store", spec) as store:
        store.ingest("user-events", src, chunk_rows=150, commit_rows=150)
        store.ingest("user-events", src, chunk_rows=300, commit_rows=300)  # a re-run
        every = store.read_offline("user-events", dedup=False)
        visible = store.read_offline("user-events")
        table = iceberg.catalog(store.root, "user-events").load_table(("fsgen", "user-events"))
        snapshots = len(table.snapshots())
        # a compaction killed before its commit leaves a file the table does not reference
        gdir = store.offline_dir("user-events")
        orphan = gdir / "data" / "ts_trunc=2024-02-01" / "x_compacted-dead.parquet"
        orphan.write_bytes(Path(iceberg.data_file_names(store.root, "user-events")[0]).read_bytes())
        before, after = store.compact("user-events")
        assert (before, after) == (18, 2)  # 9 chunks x 2 days -> one file per day
        assert not orphan.exists()
        assert sorted(p.name for p in gdir.rglob("*.parquet")) == sorted(
            Path(f).name for f in iceberg.data_file_names(store.root, "user-events")
        )
        table = iceberg.catalog(store.root, "user-events").load_table(("fsgen", "user-events"))
        assert table.current_snapshot().summary.operation.value == "overwrite"
        assert snapshots > 1 and len(table.snapshots()) == 1  # the older ones expired
        assert store.read_offline("user-events", dedup=False).equals(every)
        assert store.read_offline("user-events").equals(visible)
        assert store.compact("user-events") == (2, 2)


def test_a_missing_pyiceberg_is_one_clear_error_before_any_write(
    iceberg_project: tuple[ProjectConfig, ProjectSpec],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, spec = iceberg_project
    for name in [m for m in sys.modules if m == "pyiceberg" or m.startswith("pyiceberg.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyiceberg", None)  # import pyiceberg -> ImportError
    with LocalStore(tmp_path / "store", spec) as store:
        rt = store.runtime("user-events")
        with pytest.raises(StoreError) as caught:
            store.put_records("user-events", [rt.process(user_row("u1", "2024-03-01T00:00:00Z"))])
        assert "'user-events'" in str(caught.value)
        assert "pip install 'fsgen[iceberg]'" in str(caught.value)
        assert store.get_record("user-events", "u1", now=1709251200.0) is None
        assert not list((tmp_path / "store" / "offline").rglob("*.parquet"))


def test_a_group_declared_iceberg_over_glue_files_is_refused(
    spec: ProjectSpec, iceberg_project: tuple[ProjectConfig, ProjectSpec], tmp_path: Path
) -> None:
    with LocalStore(tmp_path / "store", spec) as glue:
        rt = glue.runtime("user-events")
        glue.put_records("user-events", [rt.process(user_row("u1", "2024-03-01T00:00:00Z"))])
    with LocalStore(tmp_path / "store", iceberg_project[1]) as ice:
        rt = ice.runtime("user-events")
        with pytest.raises(StoreError, match="fsgen apply --allow-replace"):
            ice.put_records("user-events", [rt.process(user_row("u2", "2024-03-01T00:00:00Z"))])
        with pytest.raises(StoreError, match="Glue-format"):
            iceberg.data_file_names(ice.root, "user-events")


def test_apply_creates_the_table_and_a_format_change_replaces_it(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", package="applyicedefs", table_format="Iceberg")
    runner = CliRunner()
    env = {"COLUMNS": "80", "NO_COLOR": "1"}
    out = runner.invoke(main, ["--project", str(root), "apply", "--auto-approve"], env=env)
    assert out.exit_code == 0, out.output
    store = root / ".fsgen"
    table = iceberg.catalog(store, "user-events").load_table(("fsgen", "user-events"))
    assert table.current_snapshot() is None  # created, empty
    assert iceberg.data_file_names(store, "user-events") == []
    csv = make_csv(tmp_path / "in.csv", 50, seed=5)
    out = runner.invoke(main, ["--project", str(root), "ingest", "user-events", str(csv)], env=env)
    assert out.exit_code == 0, out.output
    assert iceberg.data_file_names(store, "user-events")
    # back to Glue: a replace, the table archived with its files and gone from the catalog
    defs = root / "applyicedefs" / "groups.py"
    defs.write_text(defs.read_text().replace('offline=Offline(table_format="Iceberg"), ', ""))
    out = runner.invoke(main, ["--project", str(root), "plan"], env=env)
    assert "forces replacement" in out.output, out.output
    out = runner.invoke(
        main, ["--project", str(root), "apply", "--auto-approve", "--allow-replace"], env=env
    )
    assert out.exit_code == 0, out.output
    assert not (store / "offline" / "user-events").exists()
    assert list((store / "archive" / "user-events").glob("*/metadata/*.metadata.json"))
    out = runner.invoke(main, ["--project", str(root), "ingest", "user-events", str(csv)], env=env)
    assert out.exit_code == 0, out.output
    assert list((store / "offline" / "user-events").glob("data/year=*"))
