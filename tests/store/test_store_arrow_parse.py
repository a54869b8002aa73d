"""Text parsed by Arrow on the fast path gives exactly what the row path gives: numeric text
(``int()`` / ``float()`` against ``coerce``), canonical event times (against the fast path's
own parser), and whole CSV chunks (against ``GroupRuntime.process`` row by row: the same
records and the same rejects, reasons and row numbers)."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_store_bulk import _iso

from fsgen.bind import group_runtime
from fsgen.runtime.bulk import _iso_column, _Slow, process_rows
from fsgen.runtime.chunks import iso_seconds, parsed_numbers
from fsgen.runtime.ingest import BLOCK_ROWS, RejectSink, process_chunk
from fsgen.runtime.pipeline import coerce
from fsgen.runtime.sources import read_source
from fsgen.spec import ProjectSpec

_numeric = st.text(alphabet=st.sampled_from(list("0123456789+-.eE_ x")), min_size=0, max_size=12)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    return type(a) is type(b) and a == b


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(_numeric, min_size=1, max_size=8), type_name=st.sampled_from(["int", "float"])
)
def test_parsed_numeric_text_is_what_the_row_path_coerces(
    values: list[str], type_name: str
) -> None:
    parsed = parsed_numbers(pa.chunked_array([pa.array(values, pa.string())]), type_name)
    if parsed is None:
        return  # left as text: the fast path and the row path decide as before
    for text, value in zip(values, parsed, strict=True):
        assert _same(value, coerce(type_name, text) if math.isfinite(float(text)) else value)
        assert _same(value, int(text) if type_name == "int" else float(text))


@settings(max_examples=300, deadline=None)
@given(values=st.lists(_iso(), min_size=1, max_size=6))
def test_event_times_parsed_by_arrow_are_the_fast_paths(values: list[object]) -> None:
    texts = [v for v in values if isinstance(v, str)]
    if not texts:
        return
    seconds = iso_seconds(pa.chunked_array([pa.array(texts, pa.string())]))
    if seconds is None:
        return
    try:
        expected = _iso_column(texts)[0]
    except _Slow:  # pragma: no cover - iso_seconds accepts only what the fast path does
        pytest.fail(f"Arrow accepted {texts!r}, the fast path does not")
    assert [struct.pack("<d", s) for s in seconds] == [struct.pack("<d", s) for s in expected]


_cells = st.sampled_from(
    ["1", "-3", "+4", " 5", "1_0", "2.0", "x", "", "1e400", "9223372036854775808", "0.5", "-0"]
)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(odd=st.lists(st.tuples(st.integers(0, BLOCK_ROWS + 99), _cells, _cells), max_size=3))
def test_a_csv_chunk_is_processed_as_row_by_row(
    spec: ProjectSpec, tmp_path: Path, odd: list[tuple[int, str, str]]
) -> None:
    rows = BLOCK_ROWS + 100  # more than a block: the whole chunk tries the fast path
    cells = {i: (amount, count) for i, amount, count in odd}
    lines = ["user_id,ts,amount,count,name,tags"]
    for i in range(rows):
        amount, count = cells.get(i, (f"{i * 0.37:.2f}", str(1 + i % 5)))
        lines.append(
            f"u{i % 97},2024-02-0{1 + i % 3}T{i % 24:02d}:0{i % 10}:00Z,{amount},{count},n,a"
        )
    src = tmp_path / "odd.csv"
    src.write_text("\n".join(lines) + "\n")
    rt = group_runtime(spec.group("user-events"))
    (chunk,) = read_source(src, rows + 1)
    rejects = RejectSink(None, keep=0, into=[])
    block = process_chunk(rt, chunk, rejects)
    raw = [dict(zip(lines[0].split(","), line.split(","), strict=True)) for line in lines[1:]]
    expected = process_rows(rt, raw)
    assert block.columns == expected.columns
    assert block.rows == expected.rows and block.seconds == expected.seconds
    assert rejects.into is not None
    assert [(r.row, r.field, r.reason, r.record) for r in rejects.into] == [
        (i + 1, e.field, e.message, raw[i]) for i, e in expected.errors
    ]
