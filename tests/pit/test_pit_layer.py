"""The compacted layer (fsgen.store.layer): compaction merges a history of many small hourly
files into a few large ones that the local engine reads, and no dataset changes -- with and
without knowledge time, under each join form, cached or not, after later writes into covered
partitions, and when the published files change under the layer (then it is not used)."""

from __future__ import annotations

import os
import random

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pithelpers import Row, iso, pit_form, write_offline

from fsgen.pit import build_dataset
from fsgen.store import LocalStore, layer

T0 = 1_710_028_800 * 1_000_000  # 2024-03-10T00:00:00Z in µs
MIN = 60 * 1_000_000
HOUR = 60 * MIN
FORMS = (("auto", "on"), ("window", "off"), ("asof", "on"), ("asof", "off"))


def acct(key: str, event_us: int, level: int | None, write: int, deleted: bool = False) -> Row:
    values: dict[str, object] = {"acct_id": key, "ts": iso(event_us)}
    if not deleted:
        values.update(level=level, label=None if level is None else f"L{level}", hist=[level])
    return Row(values, event_us, T0 + write, T0 + write, deleted)


def history(rng: random.Random, batch: int, keys: list[str]) -> list[Row]:
    """Records over 30 hours, re-writes of earlier (key, event time)s that hide the earlier
    rows, complete ties inside a batch, and deletes."""
    rows = []
    for k in keys:
        for _ in range(rng.randrange(1, 6)):
            event = T0 + rng.randrange(30) * HOUR + rng.choice([0, MIN, 59 * MIN])
            write = batch * 10 * HOUR + rng.randrange(3)  # equal writes: complete ties
            rows.append(acct(k, event, rng.randrange(100), write, rng.random() < 0.1))
    rng.shuffle(rows)
    return rows


def datasets(config, spec, frame: pd.DataFrame) -> list[pd.DataFrame]:
    out = []
    for form, cache in FORMS:
        with pit_form(form, cache):
            for knowledge in (False, True):
                out.append(build_dataset(config, spec, "pit-defaults", frame, knowledge))
    return out


def assert_same(after: list[pd.DataFrame], before: list[pd.DataFrame]) -> None:
    for a, b in zip(after, before, strict=True):
        pd.testing.assert_frame_equal(a, b)


@pytest.fixture
def store_config(pit_project, tmp_path):
    config, spec = pit_project
    return config.model_copy(update={"store_dir": str(tmp_path / "store")}), spec


def labels(rng: random.Random, keys: list[str]) -> pd.DataFrame:
    rows = [(k, T0 + rng.randrange(32 * 60) * MIN) for k in keys for _ in range(4)]
    rows += [(k, T0 + 10 * HOUR) for k in keys]  # on an event time exactly
    return pd.DataFrame(
        {
            "acct_id": [k for k, _ in rows],
            "ts_label": [iso(t) for _, t in rows],
            "p": 1,
            "q": "x",
            "amount": 1.0,
        }
    )


def test_compaction_merges_hourly_files_and_changes_no_dataset(store_config) -> None:
    config, spec = store_config
    rng = random.Random(11)
    keys = [f"k{i}" for i in range(25)]
    for batch in range(3):
        write_offline(
            config.store_path, spec.group("accounts"), history(rng, batch, keys), f"b{batch}"
        )
    gdir = config.store_path / "offline" / "accounts"
    published = layer.published_files(gdir)
    assert len(published) > 30
    frame = labels(rng, keys)
    before = datasets(config, spec, frame)
    with LocalStore.open(config, spec) as store:
        store.compact("accounts")
        files = store.read_files("accounts")
    assert len(files) == 1 and "/_compacted/" in files[0]
    merged = pq.read_table(files[0])
    rows = pa.concat_tables([pq.read_table(p) for p in layer.published_files(gdir)])
    assert merged.equals(rows.select(merged.column_names))  # every row, in published order
    assert_same(datasets(config, spec, frame), before)

    # later writes into covered partitions (a later file there) are read after the layer
    write_offline(config.store_path, spec.group("accounts"), history(rng, 3, keys), "c3")
    with LocalStore.open(config, spec) as store:
        files = store.read_files("accounts")
    assert "/_compacted/" in files[0] and len(files) > 1
    with_layer = datasets(config, spec, frame)
    layer.remove(gdir)
    assert_same(with_layer, datasets(config, spec, frame))


def test_a_changed_or_missing_published_file_turns_the_layer_off(store_config) -> None:
    config, spec = store_config
    rng = random.Random(5)
    keys = [f"k{i}" for i in range(10)]
    for batch in range(2):
        write_offline(
            config.store_path, spec.group("accounts"), history(rng, batch, keys), f"b{batch}"
        )
    gdir = config.store_path / "offline" / "accounts"
    with LocalStore.open(config, spec) as store:
        store.compact("accounts")
    published = layer.published_files(gdir)
    assert layer.read_files(gdir, published) != published
    # a file sorting before a covered one of its partition, written after the layer
    first = published[0]
    early = first.rsplit("/", 1)[0] + "/0-early.parquet"
    pq.write_table(pq.read_table(first), early)
    assert layer.read_files(gdir, layer.published_files(gdir)) == layer.published_files(gdir)
    os.unlink(early)
    assert layer.read_files(gdir, published) != published
    # a covered file rewritten (another size or time)
    table = pq.read_table(first)
    pq.write_table(table.slice(0, max(table.num_rows - 1, 0)), first)
    assert layer.read_files(gdir, layer.published_files(gdir)) == layer.published_files(gdir)
    # a covered file gone
    with LocalStore.open(config, spec) as store:
        store.compact("accounts")
    published = layer.published_files(gdir)
    os.unlink(published[-1])
    assert layer.read_files(gdir, layer.published_files(gdir)) == layer.published_files(gdir)


def test_an_interrupted_compaction_leaves_the_old_layer_in_use(store_config) -> None:
    """Files a killed compaction wrote before its manifest replace are never read, and the
    next compaction removes them."""
    config, spec = store_config
    rng = random.Random(9)
    keys = [f"k{i}" for i in range(10)]
    write_offline(config.store_path, spec.group("accounts"), history(rng, 0, keys), "b0")
    gdir = config.store_path / "offline" / "accounts"
    with LocalStore.open(config, spec) as store:
        store.compact("accounts")
        files = store.read_files("accounts")
    leftovers = [gdir / layer.LAYER / "zzz-0000.parquet", gdir / layer.LAYER / ".x.parquet.tmp"]
    for path in leftovers:
        path.write_bytes(b"partial")
    with LocalStore.open(config, spec) as store:
        assert store.read_files("accounts") == files
        store.compact("accounts")
        assert len(store.read_files("accounts")) == 1
    assert not any(p.exists() for p in leftovers)
