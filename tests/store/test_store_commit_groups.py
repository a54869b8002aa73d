"""Commit groups: an ingestion's chunks committed together once ``commit_rows`` records are
held give the same stored records, offline and online, as a commit per chunk; the latest
record per identifier chosen among the blocks' own latest rows is the state that applying
every row in order leaves (against a dict applying them one by one)."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
from test_store_safety import make_csv

from fsgen.spec import ProjectSpec
from fsgen.store import LocalStore
from fsgen.store.offline import GLOB
from fsgen.store.online import latest_rows

_RT = SimpleNamespace(identifier="id")


def _oracle(ids: list[str], seconds: list[float]) -> list[int]:
    """Apply the rows in order with the online rule (>=: the later of equal times wins)."""
    state: dict[str, tuple[float, int]] = {}
    for i, (key, s) in enumerate(zip(ids, seconds, strict=True)):
        if key not in state or s >= state[key][0]:
            state[key] = (s, i)
    return [state[k][1] for k in sorted(state)]  # sorted by identifier


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "é", "ab", "", "b\x00"]),
            st.sampled_from([0.0, -0.0, 1.5, 2.0]),
        ),
        max_size=60,
    ),
    cuts=st.lists(st.integers(0, 60), max_size=4),
)
def test_latest_rows_is_the_state_applying_every_row_leaves(
    rows: list[tuple[str, float]], cuts: list[int]
) -> None:
    ids = [r[0] for r in rows]
    seconds = [r[1] for r in rows]
    table = pa.table({"id": pa.array(ids, pa.string())})
    secs = np.asarray(seconds, dtype="float64")
    expected = _oracle(ids, seconds)
    assert latest_rows(_RT, table, secs).tolist() == expected  # type: ignore[arg-type]
    # the union of each block's latest rows holds the latest of the whole
    bounds = sorted({0, len(rows), *(c for c in cuts if c <= len(rows))})
    among = [
        start + j
        for start, stop in itertools.pairwise(bounds)
        for j in latest_rows(_RT, table.slice(start, stop - start), secs[start:stop]).tolist()  # type: ignore[arg-type]
    ]
    chosen = latest_rows(_RT, table, secs, np.asarray(among, dtype="int64"))  # type: ignore[arg-type]
    assert chosen.tolist() == expected


def test_commit_groups_store_what_a_commit_per_chunk_stores(
    spec: ProjectSpec, tmp_path: Path
) -> None:
    src = make_csv(tmp_path / "in.csv", 3_000, seed=21)
    drop = ["write_time", "api_invocation_time"]
    order = ["user_id", "ts", "label"]  # labels are unique
    stores, offline, online = [], [], []
    for commit in (500, 1_500, None):  # a commit per chunk, per three chunks, the default
        store = LocalStore(tmp_path / f"store{commit}", spec)
        kwargs = {} if commit is None else {"commit_rows": commit}
        result = store.ingest("user-events", src, chunk_rows=500, workers=0, **kwargs)  # type: ignore[arg-type]
        assert (result.read, result.written, result.rejected) == (3_000, 3_000, 0)
        every = store.read_offline("user-events", dedup=False).drop(columns=drop)
        offline.append(every.sort_values(order).reset_index(drop=True))
        online.append(store.online.snapshot(store.runtime("user-events")))
        stores.append(store)
    assert offline[0].equals(offline[1]) and offline[0].equals(offline[2])
    assert online[0] == online[1] == online[2]
    hours = {ts[:13] for ts in offline[0]["ts"]}
    files = [len(list(s.offline_dir("user-events").glob(GLOB))) for s in stores]
    # one file per event-time hour per commit: the default makes one commit of the run
    assert files[2] == len(hours) < files[1] <= 2 * len(hours) < files[0] <= 6 * len(hours)
    for store in stores:
        store.close()
