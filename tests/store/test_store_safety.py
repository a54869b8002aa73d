"""Crash safety and concurrency: an ingestion killed at random points leaves whole chunks or
nothing, the online store consistent with the offline store, and a re-run completes; two
processes ingesting at once both succeed; a waiting writer says what it waits for."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from fsgen.config import ProjectConfig
from fsgen.runtime.encoding import parse_event_time
from fsgen.spec import ProjectSpec
from fsgen.store import LocalStore, iceberg
from fsgen.store.offline import GLOB

CHILD = """
import sys
from pathlib import Path
from fsgen.loader import load
from fsgen.store import LocalStore, iceberg
root, store_dir, src, chunk, commit = sys.argv[1:6]
store = LocalStore(Path(store_dir), load(Path(root)))
print("ready", flush=True)
result = store.ingest("user-events", src, chunk_rows=int(chunk), commit_rows=int(commit),
                      progress=lambda rows, position: print("chunk", flush=True))
print(result.read, result.written, result.rejected, flush=True)
"""
HEADER = "user_id,ts,amount,count,name,tags\n"


def make_csv(path: Path, rows: int, seed: int, prefix: str = "u") -> Path:
    rng = random.Random(seed)
    with path.open("w") as fh:
        fh.write(HEADER)
        for i in range(rows):
            day, hour = rng.randint(1, 2), rng.randint(0, 23)
            fh.write(
                f"{prefix}{rng.randint(0, 299)},2024-02-{day:02d}T{hour:02d}:"
                f"{rng.randint(0, 59):02d}:00Z,{i},{rng.randint(1, 4)},n{i},t\n"
            )
    return path


def child(
    project: ProjectConfig, store_dir: Path, src: Path, chunk: int, commit: int | None = None
) -> subprocess.Popen[str]:
    """An ingestion in a process of its own: chunks of ``chunk`` records, committed in groups
    of ``commit`` records (default: each chunk)."""
    env = {**os.environ, "PYTHONPATH": str(project.root)}
    args = [str(project.root), str(store_dir), str(src), str(chunk), str(commit or chunk)]
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def check_consistent(store: LocalStore, chunk: int, total_rows: int) -> None:
    """No partial file, whole commits (of ``chunk`` records) only, online == latest visible
    offline record. For an
    Iceberg group: every data file on disk is one the table references, and nothing but its
    metadata is not Parquet."""
    gdir = store.offline_dir("user-events")
    if store.table_format("user-events") == "Iceberg":
        files = iceberg.data_file_names(store.root, "user-events")
        assert sorted(str(p) for p in (gdir / "data").rglob("*.parquet")) == files
        listed = "[" + ", ".join(f"'{f}'" for f in files) + "]"
        others = [p for p in gdir.rglob("*") if p.is_file() and "metadata" not in p.parts]
    else:
        files = [str(p) for p in gdir.glob(GLOB)]
        listed = f"'{gdir}/{GLOB}'"
        others = [p for p in gdir.rglob("*") if p.is_file()]
    assert not [p for p in others if p.suffix != ".parquet"]
    assert not (gdir / "_staging").exists()
    if files:
        per_chunk = duckdb.sql(
            f"SELECT regexp_extract(filename, '_([0-9a-f]+_[0-9]+)\\.parquet$', 1) AS c, "
            f"count(*) FROM read_parquet({listed}, filename = true) GROUP BY c"
        ).fetchall()
        for name, count in per_chunk:
            number = int(name.rsplit("_", 1)[1])
            assert count == min(chunk, total_rows - number * chunk), name
    rt = store.runtime("user-events")
    online = store.online.snapshot(rt)
    offline = store.read_offline("user-events")
    latest: dict[str, tuple[float, object, dict[str, object]]] = {}
    for rec in offline.to_dict("records"):
        key = (parse_event_time("String", rec["ts"]), rec["api_invocation_time"])
        if rec["user_id"] not in latest or key >= latest[rec["user_id"]][:2]:
            latest[rec["user_id"]] = (*key, rec)
    assert set(online) == set(latest)
    for uid, (_, _, rec) in latest.items():
        assert online[uid][2]["ts"] == rec["ts"]
        assert online[uid][2]["score"] == rec["score"]


@pytest.mark.slow
@pytest.mark.parametrize("table_format", ["Glue", "Iceberg"])
def test_kill_at_random_points_then_rerun(
    request: pytest.FixtureRequest, tmp_path: Path, table_format: str
) -> None:
    fixture = "iceberg_project" if table_format == "Iceberg" else "project"
    config, spec = request.getfixturevalue(fixture)
    rows, chunk, commit = 8_000, 400, 1_200  # three chunks per commit
    src = make_csv(tmp_path / "in.csv", rows, seed=7)
    rng = random.Random(20240301)
    reference = LocalStore(tmp_path / "reference", spec)
    reference.ingest("user-events", src, chunk_rows=chunk)
    drop = ["write_time", "api_invocation_time"]
    expected_offline = reference.read_offline("user-events").drop(columns=drop)
    expected_online = reference.online.snapshot(reference.runtime("user-events"))
    survived = []
    for attempt in range(4):
        store_dir = tmp_path / f"store{attempt}"
        proc = child(config, store_dir, src, chunk, commit)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        for _ in range(rng.randint(0, rows // chunk - 1)):  # kill after a random chunk ...
            assert proc.stdout.readline().strip() == "chunk"
        time.sleep(rng.uniform(0.0, 0.05))  # ... plus a random moment
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        store = LocalStore(store_dir, spec)
        store.recover()
        check_consistent(store, commit, rows)
        survived.append(len(store.read_offline("user-events", dedup=False)))
        result = store.ingest("user-events", src, chunk_rows=chunk)
        assert (result.read, result.written) == (rows, rows)
        assert store.read_offline("user-events").drop(columns=drop).equals(expected_offline)
        assert store.online.snapshot(store.runtime("user-events")) == expected_online
        store.close()
    print("rows surviving each kill:", survived)


@pytest.mark.slow
def test_two_processes_ingesting_at_once(
    project: tuple[ProjectConfig, ProjectSpec], tmp_path: Path
) -> None:
    config, spec = project
    a = make_csv(tmp_path / "a.csv", 6000, seed=1, prefix="a")
    b = make_csv(tmp_path / "b.csv", 6000, seed=2, prefix="b")
    store_dir = tmp_path / "store"
    procs = [child(config, store_dir, src, 500) for src in (a, b)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert [o[0].split()[-3:] for o in outputs] == [["6000", "6000", "0"]] * 2
    store = LocalStore(store_dir, spec)
    assert len(store.read_offline("user-events", dedup=False)) == 12_000
    check_consistent(store, 500, 12_000)


def test_a_waiting_writer_says_who_holds_the_lock(spec: ProjectSpec, tmp_path: Path) -> None:
    holder = LocalStore(tmp_path / "store", spec)
    messages: list[str] = []
    waiter = LocalStore(tmp_path / "store", spec, on_wait=messages.append)
    row = {
        "user_id": "x",
        "ts": "2024-01-01T00:00:00Z",
        "amount": 1,
        "count": 1,
        "name": "n",
        "tags": "t",
    }
    with holder.lock("ingest user-events"):
        thread = threading.Thread(target=waiter.put_raw, args=("user-events", [row]))
        thread.start()
        deadline = time.monotonic() + 30
        while not messages and time.monotonic() < deadline:
            time.sleep(0.01)
        assert thread.is_alive()  # still waiting while the lock is held
    thread.join(30)
    assert messages and "held by pid" in messages[0] and "ingest user-events" in messages[0]
    assert waiter.get_record("user-events", "x", now=1704067200.0) is not None
