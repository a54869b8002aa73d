"""Hostile bytes inside otherwise readable files: a CSV row that is both ragged and not UTF-8,
strings that are not UTF-8 and integers beyond 64 bits inside Parquet files. Each bad row is a
reject with its row number (the rest is written, ``read == written + rejected``), rejects come
in row order, and nothing ends in a traceback."""

from __future__ import annotations

import decimal
import gzip
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from fsgen.cli import main
from fsgen.runtime.sources import Utf8Guard, read_source
from fsgen.store import LocalStore

sys.path.insert(0, str(Path(__file__).parents[1] / "store"))
from storehelpers import make_project

from fsgen.loader import load

HEADER = b"user_id,ts,amount,count,name,tags\n"


def row(i: int, name: bytes = b"n") -> bytes:
    return b"u%d,2024-02-01T%02d:00:00Z,%d.5,%d,%s,a|b\n" % (i, i % 24, i, i % 4 + 1, name)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, deploy: Callable[[Path], None]) -> Path:
    project = make_project(tmp_path_factory.mktemp("hostilesources"), package="hostilesrcdefs")
    deploy(project)
    return project


def run(root: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main, ["--project", str(root), *args], env={"COLUMNS": "200", "NO_COLOR": "1"}
    )
    return result.exit_code, result.stdout, result.stderr


def ingest(root: Path, src: Path, tmp_path: Path) -> tuple[dict[str, int], list[dict[str, object]]]:
    rejects = tmp_path / f"{src.name}.rejects.jsonl"
    code, out, err = run(
        root, "ingest", "user-events", str(src), "--rejects", str(rejects), "--json"
    )
    assert code in (0, 1), err
    assert "Traceback" not in err and "error:" not in err, err
    counts = json.loads(out)
    assert counts["read"] == counts["written"] + counts["rejected"]
    lines = rejects.read_text().splitlines() if rejects.exists() else []
    return counts, [json.loads(line) for line in lines]


# ---------------------------------------------------------------------------------- CSV

PIECES = [
    b"a",
    b"z9",
    "\u00e9".encode(),
    "\u20ac".encode(),
    "\U0001f600".encode(),
    "\ufdd0".encode(),  # the reader's own escape character, as data
    b"\xff",
    b"\xe2\x82",  # a cut-off character
    b"\xc3",
    b"\x80",
    b" ",
]
FIELD = st.lists(st.sampled_from(PIECES), min_size=1, max_size=4).map(b"".join)
ROWS = st.lists(st.lists(FIELD, min_size=1, max_size=5), min_size=1, max_size=30)


def expected(rows: list[list[bytes]]) -> tuple[dict[int, list[str]], dict[int, tuple[str, str]]]:
    """What the reader must return, from the bytes alone: accepted values per record number,
    and (field, reason) per rejected one."""
    accepted: dict[int, list[str]] = {}
    rejected: dict[int, tuple[str, str]] = {}
    for n, fields in enumerate(rows, start=1):
        if len(fields) != 3:
            rejected[n] = ("<record>", f"row has {len(fields)} values but the header has 3 columns")
            continue
        for name, value in zip("abc", fields, strict=True):
            try:
                value.decode("utf-8")
            except UnicodeDecodeError as exc:
                rejected[n] = (name, f"not UTF-8 text: {exc}")
                break
        else:
            accepted[n] = [v.decode("utf-8") for v in fields]
    return accepted, rejected


@settings(max_examples=150, deadline=None)
@given(rows=ROWS, block=st.integers(1, 64), chunk=st.integers(1, 8))
def test_csv_values_and_rejects_match_the_bytes(
    tmp_path_factory: pytest.TempPathFactory, rows: list[list[bytes]], block: int, chunk: int
) -> None:
    """Whatever the bytes (valid or not, the escape character included, cut anywhere by the
    read blocks): every valid row's values exactly, every other row a reject with its number."""
    src = tmp_path_factory.mktemp("csv") / "in.csv"
    src.write_bytes(b"a,b,c\n" + b"".join(b",".join(r) + b"\n" for r in rows))
    want_accepted, want_rejected = expected(rows)
    got_accepted: dict[int, list[str]] = {}
    got_rejected: dict[int, tuple[str, str]] = {}
    saved = Utf8Guard.BLOCK
    Utf8Guard.BLOCK = block
    try:
        for c in read_source(src, chunk_rows=chunk):
            for i in range(c.rows):
                got_accepted[c.row_number(i)] = [c.columns[k][i] for k in "abc"]
            for r in c.rejected:
                got_rejected[r.row] = (r.field, r.reason)
                if r.field == "<record>":
                    line = b",".join(rows[r.row - 1])
                    assert r.record == line.decode("utf-8", errors="replace")
    finally:
        Utf8Guard.BLOCK = saved
    assert got_accepted == want_accepted
    assert got_rejected == want_rejected


def test_ragged_non_utf8_row_after_committed_chunks_is_one_reject(tmp_path: Path) -> None:
    """pyarrow cannot decode such a row for its invalid-row handler: it used to end the run
    with an error after 1,000 rows had been committed."""
    spec = load(make_project(tmp_path / "p", "raggeddefs"))
    src = tmp_path / "in.csv"
    src.write_bytes(
        HEADER
        + b"".join(row(i) if i != 1201 else b"u\xff1201,2024-02-01,1\n" for i in range(1, 2501))
    )
    with LocalStore(tmp_path / "store", spec) as store:
        result = store.ingest("user-events", src, rejects=[], workers=0, chunk_rows=500)
        assert (result.read, result.written, result.rejected) == (2500, 2499, 1)
        (reject,) = result.samples
        assert (reject.row, reject.field) == (1201, "<record>")
        assert "row has 3 values" in reject.reason and reject.record == "u\ufffd1201,2024-02-01,1"
        assert len(store.read_offline("user-events")) == 2499


def test_ingest_command_rejects_come_in_row_order(root: Path, tmp_path: Path) -> None:
    csv_src = tmp_path / "mixed.csv"
    csv_src.write_bytes(
        HEADER
        + row(1).replace(b",1.5,", b",x,")  # row 1: invalid value
        + b"u2,2024-02-01T00:00:00Z,1.0\n"  # row 2: too few values
        + row(3)
        + b"u\xff4,2024-02-01T00:00:00Z,1.0\n"  # row 4: too few values, not UTF-8
        + row(5, name=b"\xe9")  # row 5: not UTF-8
        + row(6).replace(b",3,", b",three,")  # row 6: invalid value
    )
    counts, rejects = ingest(root, csv_src, tmp_path)
    assert (counts["read"], counts["written"]) == (6, 1)
    assert [r["row"] for r in rejects] == [1, 2, 4, 5, 6]
    assert [r["field"] for r in rejects] == ["amount", "<record>", "<record>", "name", "count"]

    jsonl_src = tmp_path / "mixed.jsonl"
    good = {
        "user_id": "u",
        "ts": "2024-02-01T00:00:00Z",
        "amount": 1,
        "count": 1,
        "name": "n",
        "tags": "t",
    }
    jsonl_src.write_text(
        "\n".join([json.dumps({**good, "amount": "x"}), "[1]", json.dumps(good), "{oops"]) + "\n"
    )
    counts, rejects = ingest(root, jsonl_src, tmp_path)
    assert [r["row"] for r in rejects] == [1, 2, 4]


def test_a_gzip_file_is_one_clear_error(root: Path, tmp_path: Path) -> None:
    for name in ("in.csv", "in.csv.gz", "in.jsonl.gz"):
        src = tmp_path / name
        src.write_bytes(gzip.compress(HEADER + row(1)))
        code, _, err = run(root, "ingest", "user-events", str(src))
        assert code == 1
        assert f"error: {src}: the file is gzip-compressed; decompress it first" in err


# ------------------------------------------------------------------------------ Parquet


def parquet_rows(n: int, **columns: object) -> pa.Table:
    base: dict[str, object] = {
        "user_id": [f"u{i}" for i in range(1, n + 1)],
        "ts": ["2024-02-01T00:00:00Z"] * n,
        "amount": [float(i) for i in range(n)],
        "count": list(range(1, n + 1)),
        "name": ["n"] * n,
        "tags": ["a"] * n,
    }
    return pa.table({**base, **columns})


def not_utf8(values: list[bytes]) -> pa.Array:
    """A Parquet string column whose bytes are not all UTF-8 (as a foreign writer leaves it)."""
    raw = pa.array(values, pa.binary())
    return pa.Array.from_buffers(pa.string(), len(raw), raw.buffers())


def test_parquet_strings_that_are_not_utf8_are_rejects(root: Path, tmp_path: Path) -> None:
    n = 70_000  # two validation batches; the bad rows sit in both row groups
    names = [b"n"] * n
    for bad in (3, 65_537, 69_999):
        names[bad - 1] = b"caf\xe9"
    src = tmp_path / "names.parquet"
    pq.write_table(parquet_rows(n, name=not_utf8(names)), src, row_group_size=40_000)
    counts, rejects = ingest(root, src, tmp_path)
    assert (counts["read"], counts["written"], counts["rejected"]) == (n, n - 3, 3)
    assert [(r["row"], r["field"]) for r in rejects] == [
        (3, "name"),
        (65_537, "name"),
        (69_999, "name"),
    ]
    assert rejects[0]["reason"].startswith("not UTF-8 text: 'utf-8' codec can't decode byte 0xe9")
    assert rejects[0]["record"]["user_id"] == "u3" and rejects[0]["record"]["name"] == "caf\ufffd"


@pytest.mark.parametrize(
    "column",
    [
        pa.array([1, 2, 2**63, 2**64 - 1, 3, 4], pa.uint64()),
        pa.array([decimal.Decimal(v) for v in (1, 2, 10**30, -(10**30), 3, 4)], pa.decimal128(38)),
        pa.array([decimal.Decimal(v) for v in (1, 2, 10**60, 2**63, 3, 4)], pa.decimal256(76)),
    ],
    ids=["uint64", "decimal128", "decimal256"],
)
def test_parquet_integers_beyond_64_bits_are_rejects(
    root: Path, tmp_path: Path, column: pa.Array
) -> None:
    """The raw ``count`` takes them (a Python int), the stored Integral ``double_count`` cannot:
    rows 3 and 4 are rejects naming it; the small DECIMAL values are plain integers."""
    src = tmp_path / f"big-{column.type}.parquet".replace("(", "").replace(")", "")
    pq.write_table(parquet_rows(6, count=column), src)
    counts, rejects = ingest(root, src, tmp_path)
    assert (counts["read"], counts["written"], counts["rejected"]) == (6, 4, 2)
    assert [(r["row"], r["field"]) for r in rejects] == [(3, "double_count"), (4, "double_count")]
    reason = str(rejects[0]["reason"])
    assert "does not fit SageMaker's 64-bit Integral" in reason
    # the function returned a value, it did not raise; the reject points at its definition
    assert reason.startswith("transformation returned ") and "raised" not in reason, reason
    assert re.search(r"\(double_count defined at \S+hostilesrcdefs\S*\.py:\d+\)$", reason), reason
