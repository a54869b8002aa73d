"""Hostile sources (issue 20's reader cases): every bad row is a reject with its row number,
an unreadable file is one clear error before anything is written, and read = written +
rejected."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fsgen.errors import IngestError
from fsgen.store import LocalStore

HEADER = "user_id,ts,amount,count,name,tags"
GOOD = "u1,2024-01-01T00:00:00Z,10,2,Ann,a"


def rejects_of(path: Path) -> list[tuple[int, str]]:
    if not path.exists():
        return []
    return [(r["row"], r["field"]) for r in map(json.loads, path.read_text().splitlines())]


def ingest(store: LocalStore, path: Path) -> tuple[int, int, int, list[tuple[int, str]]]:
    rejects = path.with_suffix(".rejects")
    result = store.ingest("user-events", path, rejects)
    assert result.read == result.written + result.rejected
    return result.read, result.written, result.rejected, rejects_of(rejects)


def test_ragged_csv_rows_are_rejects_with_their_row_numbers(
    store: LocalStore, tmp_path: Path
) -> None:
    lines = [GOOD.replace("u1", f"u{i}") for i in range(1, 301)]
    lines[116] = "u117,2024-01-01T00:00:00Z"  # short
    lines[249] = GOOD + ",extra"  # long
    src = tmp_path / "ragged.csv"
    src.write_text(HEADER + "\n" + "\n".join(lines) + "\n")
    assert ingest(store, src) == (300, 298, 2, [(117, "<record>"), (250, "<record>")])
    # record numbers after a skipped row still count it: row 118 is u118
    result = store.ingest("user-events", src, chunk_rows=64)
    assert result.rejected == 2 and store.get_record("user-events", "u118", now=0) is not None


def test_bytes_that_are_not_utf8_reject_their_row(store: LocalStore, tmp_path: Path) -> None:
    src = tmp_path / "latin1.csv"
    src.write_bytes(f"{HEADER}\n{GOOD}\nu2,2024-01-01T00:00:00Z,1,1,J\xf6rg,a\n".encode("latin-1"))
    assert ingest(store, src) == (2, 1, 1, [(2, "name")])


def test_header_only_csv_without_newline_has_no_records(store: LocalStore, tmp_path: Path) -> None:
    src = tmp_path / "empty.csv"
    src.write_text(HEADER)
    assert ingest(store, src) == (0, 0, 0, [])


def test_unreadable_files_fail_before_anything_is_written(
    store: LocalStore, tmp_path: Path
) -> None:
    gz = tmp_path / "packed.csv"
    gz.write_bytes(gzip.compress(f"{HEADER}\n{GOOD}\n".encode()))
    with pytest.raises(IngestError, match="gzip-compressed"):
        store.ingest("user-events", gz)
    dup = tmp_path / "dup.parquet"
    pq.write_table(pa.table([pa.array(["u1"]), pa.array(["x"])], names=["user_id", "user_id"]), dup)
    with pytest.raises(IngestError, match="duplicate column names"):
        store.ingest("user-events", dup)
    assert store.read_offline("user-events").empty


def test_poison_json_values_are_rejects(store: LocalStore, tmp_path: Path) -> None:
    row = {"user_id": "u1", "ts": "2024-01-01T00:00:00Z", "amount": 1, "count": 2}
    row |= {"name": "a", "tags": "b"}
    lines = [
        json.dumps({**row, "count": 10**400}),  # the transformation overflows
        "[" * 100_000,  # nested too deep for the JSON parser
        json.dumps({**row, "ts": "9999-12-31T23:59:59-01:00"}),  # year 10000 in UTC
        json.dumps({**row, "user_id": "u\udfff"}),  # a lone surrogate cannot be stored
        json.dumps({**row, "user_id": "u5"}),
    ]
    src = tmp_path / "poison.jsonl"
    src.write_text("\n".join(lines) + "\n")
    assert ingest(store, src) == (
        5,
        1,
        4,
        [(1, "score"), (2, "<record>"), (3, "ts"), (4, "<record>")],
    )
