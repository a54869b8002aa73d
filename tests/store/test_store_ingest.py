"""Batch ingestion: sources, rejects and their accounting, the offline layout and schema,
idempotent re-runs and compaction that changes no result."""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from storehelpers import user_row

from fsgen.errors import IngestError
from fsgen.store import LocalStore
from fsgen.store.offline import GLOB

HEADER = "user_id,ts,amount,count,name,tags\n"


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text(HEADER + "".join(line + "\n" for line in lines))
    return path


def rejects_of(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_csv_ingest_accounts_for_every_row(store: LocalStore, tmp_path: Path) -> None:
    src = write_csv(
        tmp_path / "in.csv",
        [
            "u1,2024-01-01T00:00:00Z,10,2,Ann,a|b",  # ok
            ",2024-01-01T00:00:00Z,10,2,Ann,a",  # empty identifier
            "u3,,10,2,Ann,a",  # missing event time
            "u4,2024-01-01T00:00:00Z,ten,2,Ann,a",  # wrong type
            "u5,2024-01-01T00:00:00Z,10,0,Ann,a",  # transformation raises
            "u6,2024-01-01T00:00:00Z,NaN,2,Ann,a",  # NaN is not a number here
            "u7,2024-01-01T00:00:00Z,,2,Ann,a",  # empty numeric = missing
            "u8,2024-01-01T00:00:00Z,-1,2,,",  # empty required text = missing
            "u9,not-a-time,10,2,Ann,a",  # bad event time
        ],
    )
    rejects = tmp_path / "rejects.jsonl"
    result = store.ingest("user-events", src, rejects)
    assert (result.read, result.written, result.rejected) == (9, 1, 8)
    assert result.read == result.written + result.rejected
    got = [(r["row"], r["field"]) for r in rejects_of(rejects)]
    assert got == [
        (2, "user_id"),
        (3, "ts"),
        (4, "amount"),
        (5, "score"),
        (6, "amount"),
        (7, "amount"),
        (8, "name"),
        (9, "ts"),
    ]
    first = rejects_of(rejects)[0]
    assert first["source"] == str(src) and first["reason"] == "record identifier is empty"
    assert first["record"] == {
        "user_id": "",
        "ts": "2024-01-01T00:00:00Z",
        "amount": "10",
        "count": "2",
        "name": "Ann",
        "tags": "a",
    }
    assert "ZeroDivisionError" in rejects_of(rejects)[3]["reason"]
    u8 = rejects_of(rejects)[6]
    assert u8["reason"] == "missing required field; tags: missing required field"
    assert store.get_record("user-events", "u8", now=1704067200.0) is None


def test_jsonl_parquet_and_dataframe_give_the_same_records(
    store: LocalStore, tmp_path: Path
) -> None:
    rows = [
        user_row(f"u{i}", f"2024-01-0{1 + i % 3}T0{i}:00:00Z", amount=i + 0.5, count=i + 1)
        for i in range(6)
    ]
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken\n[1, 2]\n")
    parquet = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    frame = pd.DataFrame(rows)
    results = [store.ingest("user-events", s) for s in (jsonl, parquet, frame)]
    assert [(r.read, r.written, r.rejected) for r in results] == [(8, 6, 2), (6, 6, 0), (6, 6, 0)]
    assert [(s.row, s.field) for s in results[0].samples] == [(7, "<record>"), (8, "<record>")]
    every = store.read_offline("user-events", dedup=False)
    assert len(every) == 18
    visible = store.read_offline("user-events")
    assert len(visible) == 6  # same (id, event time) three times: one visible record each
    assert visible.drop(columns=["write_time", "api_invocation_time"]).equals(
        every.drop(columns=["write_time", "api_invocation_time"]).iloc[2::3].reset_index(drop=True)
    )


def test_dataframe_missing_values(store: LocalStore) -> None:
    frame = pd.DataFrame(
        {
            "user_id": ["a", "b", None],
            "ts": ["2024-01-01T00:00:00Z"] * 3,
            "amount": [1.0, math.nan, 2.0],
            "count": pd.array([1, 2, None], dtype="Int64"),
            "name": ["x", "y", "z"],
            "tags": ["t", "t", "t"],
        }
    )
    result = store.ingest("user-events", frame)
    assert (result.written, [(s.row, s.field) for s in result.samples]) == (
        1,
        [(2, "amount"), (3, "user_id")],
    )


def test_offline_layout_and_schema(store: LocalStore, tmp_path: Path) -> None:
    src = write_csv(
        tmp_path / "in.csv",
        [
            "u1,2024-01-01T00:30:00Z,10,2,Ann,a|b",
            "u2,2024-01-01T01:15:00.500Z,1.5,3,Bo,b",
            "u3,2023-12-31T23:59:59Z,2,1,Cy,c",
        ],
    )
    store.ingest("user-events", src)
    gdir = store.offline_dir("user-events")
    parts = sorted(str(p.parent.relative_to(gdir)) for p in gdir.glob(GLOB))
    assert parts == [
        "data/year=2023/month=12/day=31/hour=23",
        "data/year=2024/month=01/day=01/hour=00",
        "data/year=2024/month=01/day=01/hour=01",
    ]
    schema = pq.read_schema(next(gdir.glob(GLOB)))
    assert [(f.name, str(f.type)) for f in schema] == [
        ("user_id", "string"),
        ("ts", "string"),
        ("score", "double"),
        ("double_count", "int64"),
        ("label", "string"),
        ("tag_list", "list<element: string>"),
        ("positive_amount", "double"),
        ("write_time", "timestamp[us, tz=UTC]"),
        ("api_invocation_time", "timestamp[us, tz=UTC]"),
        ("is_deleted", "bool"),
    ]
    types = duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{gdir}/{GLOB}')").fetchall()
    assert {r[0]: r[1] for r in types}["double_count"] == "BIGINT"
    assert {r[0]: r[1] for r in types}["tag_list"] == "VARCHAR[]"
    assert not list(gdir.rglob("*.tmp")) and not (gdir / "_staging").exists()
    rows = store.read_offline("user-events", dedup=False)
    assert (rows["write_time"] >= rows["api_invocation_time"]).all()
    assert rows["api_invocation_time"].is_unique


def test_rerun_adds_no_visible_record_and_compaction_changes_nothing(
    store: LocalStore, tmp_path: Path
) -> None:
    lines = [
        f"u{i % 7},2024-01-0{1 + i % 2}T{i % 24:02d}:00:00Z,{i},{1 + i % 3},N{i},t"
        for i in range(60)
    ]
    src = write_csv(tmp_path / "in.csv", lines)
    first = store.ingest("user-events", src, chunk_rows=16)
    online_before = store.online.snapshot(store.runtime("user-events"))
    visible_before = store.read_offline("user-events").drop(
        columns=["write_time", "api_invocation_time"]
    )
    second = store.ingest("user-events", src, chunk_rows=16)
    assert first.written == second.written == 60
    assert len(store.read_offline("user-events", dedup=False)) == 120
    visible = store.read_offline("user-events")
    assert visible.drop(columns=["write_time", "api_invocation_time"]).equals(visible_before)
    after = store.online.snapshot(store.runtime("user-events"))
    assert {k: v[2] for k, v in after.items()} == {k: v[2] for k, v in online_before.items()}
    gdir = store.offline_dir("user-events")
    files_before = len(list(gdir.glob(GLOB)))
    order = ["api_invocation_time", "write_time"]
    every_row = store.read_offline("user-events", dedup=False).sort_values(order)
    before, after_files = store.compact("user-events")
    assert before == files_before and after_files < before
    assert len(list(gdir.glob(GLOB))) == after_files
    compacted = store.read_offline("user-events")
    assert compacted.equals(visible)
    # hidden rows stay: a knowledge-time dataset (records written by T) still needs them
    kept = store.read_offline("user-events", dedup=False).sort_values(order)
    assert kept.reset_index(drop=True).equals(every_row.reset_index(drop=True))


def test_unreadable_sources_are_errors(store: LocalStore, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="no such file"):
        store.ingest("user-events", tmp_path / "nope.csv")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(IngestError, match="cannot tell the format"):
        store.ingest("user-events", tmp_path / "x.txt")
    with pytest.raises(IngestError, match="DataFrame"):
        store.ingest("user-events", [1, 2])


def test_worker_processes_give_the_same_result(spec: object, tmp_path: Path) -> None:
    lines = [
        f"u{i % 13},2024-01-0{1 + i % 3}T{i % 24:02d}:{i % 60:02d}:00Z,{i % 50 - 3},"
        f"{i % 4},N{i},a|b"
        for i in range(400)
    ]
    lines[17] = "u1,2024-01-01T00:00:00Z,x,1,N,a"
    src = write_csv(tmp_path / "in.csv", lines)
    results = []
    stores = []
    for workers in (0, 2):
        store = LocalStore(tmp_path / f"store{workers}", spec)  # type: ignore[arg-type]
        rejects = tmp_path / f"rejects{workers}.jsonl"
        results.append(store.ingest("user-events", src, rejects, chunk_rows=64, workers=workers))
        stores.append(store)
    assert [(r.read, r.written, r.rejected) for r in results] == [(400, 299, 101)] * 2
    assert (tmp_path / "rejects0.jsonl").read_text() == (tmp_path / "rejects2.jsonl").read_text()
    drop = ["write_time", "api_invocation_time"]
    a, b = (s.read_offline("user-events", dedup=False).drop(columns=drop) for s in stores)
    assert a.equals(b)
    rt = stores[0].runtime("user-events")
    assert stores[0].online.snapshot(rt) == stores[1].online.snapshot(rt)


def test_a_rejects_path_that_is_no_file_is_written_into_not_replaced(
    store: LocalStore, tmp_path: Path
) -> None:
    """--rejects /dev/null (or a FIFO, /dev/stderr) gets the lines written into it: the
    rejects file's temp-then-rename would replace the device with a file of rejects."""
    import os
    import stat
    import threading

    fifo = tmp_path / "rejects.fifo"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    src = write_csv(tmp_path / "in.csv", ["u1,2024-01-01T00:00:00Z,oops,2,Ann,a"])
    result = store.ingest("user-events", src, fifo)
    reader.join(10)
    assert result.rejected == 1 and result.rejects_path == fifo
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert [json.loads(line)["field"] for line in got[0].splitlines()] == ["amount"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "rejects.fifo", "store"]
