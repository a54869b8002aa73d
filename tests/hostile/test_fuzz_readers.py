"""Fuzzing every reader with random bytes and mutations of valid files: a source either
fails as one clear SourceError before anything is written, or every record read is written
or rejected (``read == written + rejected``); no other exception escapes."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fsgen.errors import IngestError
from fsgen.store import LocalStore

sys.path.insert(0, str(Path(__file__).parents[1] / "store"))
from storehelpers import make_project

from fsgen.loader import load

HEADER = b"user_id,ts,amount,count,name,tags\n"
ROWS = b"".join(
    f"u{i},2024-02-01T0{i % 10}:00:00Z,{i}.5,{i % 4 + 1},n{i},a|b\n".encode() for i in range(20)
)
JSONL = b"".join(
    json.dumps(
        {"user_id": f"u{i}", "ts": "2024-02-01T00:00:00Z", "amount": i, "count": 1, "name": "n"}
    ).encode()
    + b"\n"
    for i in range(20)
)
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _parquet() -> bytes:
    table = pa.table(
        {
            "user_id": [f"u{i}" for i in range(50)],
            "ts": ["2024-02-01T00:00:00Z"] * 50,
            "amount": [float(i) for i in range(50)],
            "count": list(range(1, 51)),
            "name": ["n"] * 50,
            "tags": ["a"] * 50,
        }
    )
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=10)
    return out.getvalue()


PARQUET = _parquet()


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return load(make_project(tmp_path_factory.mktemp("fuzzproject"), "fuzzdefs"))


def mutated(base: bytes) -> st.SearchStrategy[bytes]:
    """``base`` with random byte flips, cuts and insertions, or random bytes."""

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        data = bytearray(base)
        for _ in range(draw(st.integers(1, 6))):
            if not data:
                break
            at = draw(st.integers(0, len(data) - 1))
            op = draw(st.sampled_from(["flip", "cut", "insert"]))
            if op == "flip":
                data[at] = draw(st.integers(0, 255))
            elif op == "cut":
                del data[at : at + draw(st.integers(1, 64))]
            else:
                data[at:at] = draw(st.binary(max_size=16))
        return bytes(data)

    return st.one_of(mutate(), st.binary(max_size=512))


def _check(spec, tmp_path: Path, name: str, data: bytes) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / name
    src.write_bytes(data)
    store = LocalStore(tmp_path / "store", spec)
    try:
        result = store.ingest("user-events", src, rejects=[], workers=0)
    except IngestError:  # one clear error (the SourceError), before anything is written
        assert not (tmp_path / "store" / "offline" / "user-events" / "data").exists()
        return
    finally:
        store.close()
    assert result.read == result.written + result.rejected


@FUZZ
@given(data=mutated(HEADER + ROWS))
@example(data=HEADER + ROWS[:40] + b"u\xff,2024\n" + ROWS[40:])  # ragged and not UTF-8
@example(data=HEADER + b"\xef\xb7\x90,\xff\xef\xb7\x90ff,1\n")  # the reader's escape as data
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_fuzz_csv(spec, tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:  # type: ignore[no-untyped-def]
    _check(spec, tmp_path_factory.mktemp("csv"), "in.csv", data)


@FUZZ
@given(data=mutated(JSONL))
def test_fuzz_jsonl(spec, tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:  # type: ignore[no-untyped-def]
    _check(spec, tmp_path_factory.mktemp("jsonl"), "in.jsonl", data)


@FUZZ
@given(data=mutated(PARQUET))
def test_fuzz_parquet(spec, tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:  # type: ignore[no-untyped-def]
    _check(spec, tmp_path_factory.mktemp("parquet"), "in.parquet", data)
