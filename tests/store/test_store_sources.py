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
from hypothesis import given, settings
from hypothesis import strategies as st

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
    with pytest.raises(IngestError, match=r"in the Parquet schema: user_id$"):
        store.ingest("user-events", dup)
    csv_dup = tmp_path / "dup.csv"  # which column, not just that one is repeated
    csv_dup.write_text(f"{HEADER},ts,user_id\n")
    with pytest.raises(IngestError, match=r"duplicate column names in the header: ts, user_id$"):
        store.ingest("user-events", csv_dup)
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


def test_a_csv_row_over_the_row_limit_is_a_reject_of_that_row(
    store: LocalStore, tmp_path: Path
) -> None:
    """A row longer than pyarrow's block (8 MiB) used to fail the whole file ("straddling
    object straddles two block boundaries", near row 1); now it is that row's reject."""
    from fsgen.runtime.sources import MAX_ROW_BYTES

    src = tmp_path / "long.csv"
    huge = "u9,2024-01-01T00:00:00Z,1,1," + "x" * (2 * MAX_ROW_BYTES + 5) + ",a"
    # at the limit, of tags PutRecord can hold (a value is at most 358,400 characters)
    tags = "|".join(["y" * 99_999] * ((MAX_ROW_BYTES - 30) // 100_000))
    at_limit = "u8,2024-01-01T00:00:00Z,1,1,y," + tags.ljust(MAX_ROW_BYTES - 30, "z")
    lines = [GOOD, GOOD.replace("u1", "u2"), huge, at_limit, GOOD.replace("u1", "u3")]
    src.write_text(HEADER + "\n" + "\n".join(lines) + "\n")
    rejects: list[object] = []
    result = store.ingest("user-events", src, rejects)  # type: ignore[arg-type]
    # the row at the CSV limit is read, and is then over a SageMaker record's 350 KB: a reject
    # of its own (PutRecord would refuse it), not the file's failure; its tags alone are
    assert (result.read, result.written, result.rejected) == (5, 3, 2)
    reject, too_big = result.samples
    assert (too_big.row, too_big.field) == (4, "tag_list")
    assert "a SageMaker record holds at most 358,400 (350 KB): not written" in too_big.reason
    assert (reject.row, reject.field) == (3, "<record>")
    assert reject.reason == (
        f"row is {len(huge):,} bytes, longer than the {MAX_ROW_BYTES:,} bytes a CSV row may have"
    )
    assert str(reject.record).startswith("u9,2024-01-01T00:00:00Z,1,1,xxx")
    assert len(str(reject.record)) < 3_000
    names = set(store.read_offline("user-events")["user_id"])
    assert names == {"u1", "u2", "u3"}


@settings(max_examples=150, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 40), min_size=1, max_size=12),
    block=st.integers(1, 16),
    ending=st.sampled_from(["\n", "\r\n"]),
)
def test_rows_over_the_limit_are_rejects_wherever_the_blocks_cut(
    tmp_path_factory: pytest.TempPathFactory, lengths: list[int], block: int, ending: str
) -> None:
    """With a limit of 20 bytes and read blocks of 1-16: every row longer is a reject with
    its number and size, every other row is read as it is."""
    from fsgen.runtime import csvreader, sources

    src = tmp_path_factory.mktemp("long") / "in.csv"
    rows = [f"{i}," + "v" * n for i, n in enumerate(lengths, start=1)]
    src.write_bytes(("a,b" + ending + ending.join(rows) + ending).encode())
    saved = csvreader.MAX_ROW_BYTES, csvreader.Utf8Guard.BLOCK
    csvreader.MAX_ROW_BYTES, csvreader.Utf8Guard.BLOCK = 20, block
    try:
        got: dict[int, object] = {}
        for chunk in sources.read_source(src, chunk_rows=5):
            for i in range(chunk.rows):
                got[chunk.row_number(i)] = chunk.columns["b"][i]
            for r in chunk.rejected:
                got[r.row] = r.reason
    finally:
        csvreader.MAX_ROW_BYTES, csvreader.Utf8Guard.BLOCK = saved
    want = {
        i: "v" * (len(row) - len(f"{i},"))
        if len(row) <= 20
        else f"row is {len(row):,} bytes, longer than the 20 bytes a CSV row may have"
        for i, row in enumerate(rows, start=1)
    }
    assert got == want


def test_parquet_and_dataframe_timestamp_columns_are_event_times(
    store: LocalStore, tmp_path: Path
) -> None:
    """A native timestamp column (Parquet, or a pandas datetime column) carries a String event
    time as ISO text would: in UTC, a zone-less one read as UTC, milliseconds kept, finer
    precision refused as SageMaker cannot store it; a date column gives a String field its
    date. They were rejects (``expected a string, got datetime.datetime(...)``)."""
    import datetime as dt

    import pandas as pd

    utc = dt.UTC
    berlin = pa.timestamp("us", tz="Europe/Berlin")
    when = [
        dt.datetime(2023, 11, 14, 10, 0, 0, tzinfo=utc),
        dt.datetime(2023, 11, 14, 10, 0, 0, 250000, tzinfo=utc),
        dt.datetime(2023, 11, 14, 10, 0, 0, 250001, tzinfo=utc),
    ]
    table = pa.table(
        {
            "user_id": ["u1", "u2", "u3"],
            "ts": pa.array(when, berlin),
            "amount": [1.0, 2.0, 3.0],
            "count": [1, 1, 1],
            "name": pa.array([dt.date(1980, 1, 2)] * 3, pa.date32()),
            "tags": ["a", "a", "a"],
        }
    )
    src = tmp_path / "times.parquet"
    pq.write_table(table, src)
    assert ingest(store, src) == (3, 2, 1, [(3, "ts")])
    first = store.get_record("user-events", "u1", now=0)
    second = store.get_record("user-events", "u2", now=0)
    assert first is not None and second is not None
    assert (first["ts"], first["label"]) == ("2023-11-14T10:00:00Z", "1980-01-02")
    assert second["ts"] == "2023-11-14T10:00:00.250Z"
    naive = tmp_path / "naive.parquet"
    pq.write_table(
        table.set_column(1, "ts", pa.array([w.replace(tzinfo=None) for w in when], "timestamp[ns]"))
        .slice(0, 1)
        .set_column(0, "user_id", pa.array(["u4"])),
        naive,
    )
    assert ingest(store, naive)[:3] == (1, 1, 0)
    assert store.get_record("user-events", "u4", now=0)["ts"] == "2023-11-14T10:00:00Z"  # type: ignore[index]
    frame = pd.DataFrame(
        {
            "user_id": ["u5"],
            "ts": pd.to_datetime(["2023-11-14T11:00:00+01:00"]),
            "amount": [1.0],
            "count": [1],
            "name": ["n"],
            "tags": ["a"],
        }
    )
    result = store.ingest("user-events", frame)
    assert (result.written, result.rejected) == (1, 0)
    assert store.get_record("user-events", "u5", now=0)["ts"] == "2023-11-14T10:00:00Z"  # type: ignore[index]


def test_a_value_longer_than_putrecord_takes_is_a_reject_of_its_row(
    store: LocalStore, tmp_path: Path
) -> None:
    """A String value over SageMaker's 358,400 characters (a feature or a List element) is
    that row's reject on the local store too, which SageMaker could never take; the other
    rows are written."""
    long = "x" * 358_401
    lines = [GOOD.replace("u1", f"u{i}") for i in range(1, 5)]
    lines[1] = lines[1].replace(",Ann,", f",{long},")
    lines[2] = lines[2].replace(",a", f",a|{long}")
    src = tmp_path / "long.csv"
    src.write_text(HEADER + "\n" + "\n".join(lines) + "\n")
    read, written, rejected, rows = ingest(store, src)
    assert (read, written, rejected, rows) == (4, 2, 2, [(2, "label"), (3, "tag_list")])
    reasons = [
        json.loads(line)["reason"] for line in src.with_suffix(".rejects").read_text().splitlines()
    ]
    assert reasons == [
        "user-events: feature label holds a value of 358,401 characters; SageMaker's "
        "PutRecord takes at most 358,400 per value",
        "user-events: feature tag_list holds a value of 358,401 characters; SageMaker's "
        "PutRecord takes at most 358,400 per value",
    ]
    assert store.get_record("user-events", "u4", now=0) is not None
    assert store.get_record("user-events", "u2", now=0) is None
    # a value of 358,400 characters is one PutRecord takes, but not with the record's other
    # name: that feature alone is over 350 KB (its reject says so); with room it fits
    just = tmp_path / "just.csv"
    just.write_text(HEADER + "\n" + GOOD.replace(",Ann,", f",{'y' * 358_400},") + "\n")
    assert ingest(store, just) == (1, 0, 1, [(1, "label")])
    fits = tmp_path / "fits.csv"
    fits.write_text(HEADER + "\n" + GOOD.replace(",Ann,", f",{'y' * 358_000},") + "\n")
    assert ingest(store, fits)[:3] == (1, 1, 0)


def test_an_event_time_finer_than_milliseconds_is_refused_at_any_digit(
    store: LocalStore, tmp_path: Path
) -> None:
    """Nanoseconds (digits past the sixth, which Python's ISO parser drops unread) are refused
    like microseconds, not truncated into an event time the file did not give; trailing zeros
    are no precision."""
    times = [
        "2023-11-14T10:00:00.000000500Z",
        "2023-11-14T10:00:00.123000001Z",
        "2023-11-14T10:00:00.000100Z",
        "2023-11-14T10:00:00.123000000Z",
        "2023-11-14T10:00:00.250Z",
    ]
    lines = [
        GOOD.replace("u1", f"u{i}").replace("2024-01-01T00:00:00Z", t) for i, t in enumerate(times)
    ]
    src = tmp_path / "fine.csv"
    src.write_text(HEADER + "\n" + "\n".join(lines) + "\n")
    assert ingest(store, src) == (5, 2, 3, [(1, "ts"), (2, "ts"), (3, "ts")])
    assert store.get_record("user-events", "u3", now=0)["ts"] == "2023-11-14T10:00:00.123Z"  # type: ignore[index]
    assert store.get_record("user-events", "u4", now=0)["ts"] == "2023-11-14T10:00:00.250Z"  # type: ignore[index]
