"""Readers and the commit window: a writer killed between a chunk's online commit and its
last file move leaves online ahead of offline; every reader that does not open a LocalStore
(``fsgen dataset``, the catalog's statistics, freshness) reads through
:func:`fsgen.store.commit.settled`, which finishes that chunk first, so what it reads is
consistent: the offline store holds whole chunks only, and as many records as online."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from test_store_safety import make_csv

from fsgen.catalog.stats import group_stats
from fsgen.config import ProjectConfig
from fsgen.freshness import group_freshness
from fsgen.spec import ProjectSpec
from fsgen.store import LocalStore, offline
from fsgen.store.commit import settled

# kill -9 itself after moving the first file of its third chunk: inside the commit window
KILLED_IN_THE_WINDOW = """
import os, signal, sys
from pathlib import Path
from fsgen.loader import load
from fsgen.store import LocalStore, offline
root, store_dir, src = sys.argv[1:4]
publish, calls = offline.publish, []
def dying_publish(pairs):
    calls.append(1)
    if len(calls) == 3:
        publish(list(pairs)[:1])
        os.kill(os.getpid(), signal.SIGKILL)
    publish(pairs)
offline.publish = dying_publish
store = LocalStore(Path(store_dir), load(Path(root)))
store.ingest("user-events", src, chunk_rows=400, commit_rows=400)
"""


def _killed_in_the_window(config: ProjectConfig, store_dir: Path, src: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(config.root)}
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_IN_THE_WINDOW, str(config.root), str(store_dir), str(src)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr


def _offline_rows(store_dir: Path) -> int:
    import pyarrow.parquet as pq

    files = offline.data_files(store_dir / "offline" / "user-events")
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def test_readers_after_a_kill_inside_the_commit_window(
    project: tuple[ProjectConfig, ProjectSpec], tmp_path: Path
) -> None:
    config, spec = project
    src = make_csv(tmp_path / "in.csv", 2_000, seed=3)
    store_dir = tmp_path / "store"
    _killed_in_the_window(config, store_dir, src)
    assert _offline_rows(store_dir) < 3 * 400  # the window is open: the third chunk is partial
    group = spec.group("user-events")
    stats = group_stats(store_dir, group)  # the catalog's reader finishes the chunk first
    assert stats is not None and stats.rows == 3 * 400
    assert _offline_rows(store_dir) == 3 * 400
    fresh = group_freshness(store_dir, group, now=1e10)
    assert fresh.online is not None and fresh.offline is not None
    store = LocalStore(store_dir, spec)
    try:
        assert len(store.online.snapshot(store.runtime("user-events"))) == stats.records
    finally:
        store.close()


def test_settled_rolls_forward_once_and_then_reads_as_is(
    project: tuple[ProjectConfig, ProjectSpec], tmp_path: Path
) -> None:
    config, _ = project
    src = make_csv(tmp_path / "in.csv", 2_000, seed=4)
    store_dir = tmp_path / "store"
    _killed_in_the_window(config, store_dir, src)
    with settled(store_dir) as rolled:  # what `fsgen dataset` reads through
        assert rolled == 1
        assert _offline_rows(store_dir) == 3 * 400
    with settled(store_dir) as rolled:
        assert rolled == 0
    with settled(tmp_path / "no-store-yet") as rolled:
        assert rolled == 0
