"""The pieces that let an ingestion overlap its stages give what the plain order gives: the
reader run ahead on a thread yields the same chunks and raises its error at the same place,
and hour parts split block by block and merged equal the split of the whole."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsgen.runtime.ingest import read_ahead
from fsgen.runtime.sources import Chunk, SourceError
from fsgen.store import offline


def chunks(n: int, fail_at: int | None, closed: list[bool]) -> Iterator[Chunk]:
    try:
        for i in range(n):
            if i == fail_at:
                raise SourceError(f"bad data in chunk {i}")
            yield Chunk("src", i * 10 + 1, {"x": list(range(10))}, 10)
    finally:
        closed.append(True)


def test_read_ahead_yields_every_chunk_in_order() -> None:
    closed: list[bool] = []
    with read_ahead(chunks(5, None, closed)) as ahead:
        assert [c.first_row for c in ahead] == [1, 11, 21, 31, 41]
    assert closed == [True]


def test_read_ahead_raises_the_readers_error_after_the_chunks_before_it() -> None:
    closed: list[bool] = []
    seen = []
    with read_ahead(chunks(5, 3, closed)) as ahead, pytest.raises(SourceError, match="chunk 3"):
        for c in ahead:
            seen.append(c.first_row)
    assert seen == [1, 11, 21]
    assert closed == [True]


def test_leaving_early_stops_the_reader_and_closes_the_source() -> None:
    closed: list[bool] = []
    with read_ahead(chunks(1000, None, closed)) as ahead:
        assert next(iter(ahead)).first_row == 1
    assert closed == [True]
    assert not any(t.name == "fsgen-read-ahead" for t in threading.enumerate())


@settings(max_examples=60, deadline=None)
@given(
    blocks=st.lists(
        st.lists(st.integers(0, 5 * 3600 - 1).map(float), min_size=1, max_size=30),
        min_size=1,
        max_size=5,
    )
)
def test_hour_parts_of_blocks_merged_equal_the_split_of_the_whole(
    blocks: list[list[float]],
) -> None:
    tables, parts, offset = [], [], 0
    for secs in blocks:
        ids = pa.array([f"r{offset + i}" for i in range(len(secs))])
        table = pa.table({"id": ids})
        tables.append(table)
        parts.append((offline.hour_parts(table, np.array(secs)), offset))
        offset += len(secs)
    whole = pa.concat_tables(tables)
    all_secs = np.array([s for secs in blocks for s in secs])
    merged = offline.merge_hour_parts(parts)
    hours = sorted({int(s // 3600) for s in all_secs})  # the oracle: plain Python grouping
    expected = [(h, [i for i, s in enumerate(all_secs) if int(s // 3600) == h]) for h in hours]
    assert [h for h, _, _ in merged] == hours
    for (_, got, got_index), (_, want) in zip(merged, expected, strict=True):
        assert got_index.tolist() == want
        assert got.column("id").to_pylist() == [f"r{i}" for i in want]
    assert [d for d, _ in offline.split_by_hour(whole, all_secs)] == [
        offline.partition_dir(h * 3600.0) for h in hours
    ]
