"""The join-form planner: window form on shallow histories, ASOF on deep ones, counts cached
by the file list (and counted again when it changes), FSGEN_PIT_FORM forcing a form."""

from __future__ import annotations

import shutil

import duckdb
import pytest
from pithelpers import Row, iso, write_offline

from fsgen.pit import PitError, plan_for
from fsgen.pit.cache import CACHE_DIR
from fsgen.pit.local import data_file_names
from fsgen.pit.planner import (
    STATS_FILE,
    GroupStats,
    choose_form,
    forced_form,
    group_stats,
    plan_form,
)

T0 = 1_710_028_800 * 1_000_000


def acct(key: str, event_us: int, level: int) -> Row:
    values: dict[str, object] = {"acct_id": key, "ts": iso(event_us), "level": level}
    return Row(values=values, event_us=event_us, write_us=T0, api_us=T0)


def test_shallow_histories_take_the_window_form_deep_ones_asof() -> None:
    # the benchmark's shapes: 10 and 1,000 rows per entity, 1e5 labels over 1e6 rows
    assert choose_form(100_000, GroupStats(1_000_000, 100_000)) == "window"
    assert choose_form(100_000, GroupStats(1_000_000, 1_000)) == "asof"
    assert choose_form(10, GroupStats(0, 0)) == "window"


def test_counts_are_cached_by_file_list(pit_project, tmp_path) -> None:
    _, spec = pit_project
    plan = plan_for(spec, "pit-set")
    join = next(j for j in plan.joins if j.group.name == "accounts")
    group = spec.group("accounts")
    write_offline(tmp_path, group, [acct(k, T0 + i * 1000, i) for i, k in enumerate("aabbc")], "f0")
    group_dir = tmp_path / "offline" / "accounts"
    con = duckdb.connect()
    files = data_file_names(group_dir)
    assert plan_form(con, join, group_dir, files, labels=1) == "window"
    assert (group_dir / CACHE_DIR / STATS_FILE).is_file()
    assert group_stats(con, join, group_dir, files) == GroupStats(5, 3)
    # a deep history written later: the cached counts no longer match the file list
    write_offline(tmp_path, group, [acct("a", T0 + (10 + i) * 1000, i) for i in range(2_000)], "f1")
    files = data_file_names(group_dir)
    assert group_stats(con, join, group_dir, files) == GroupStats(2_005, 3)
    assert plan_form(con, join, group_dir, files, labels=1_000) == "asof"
    assert STATS_FILE not in {p.rsplit("/", 1)[-1] for p in files}


def test_counts_from_the_history_cache_equal_the_files(pit_project, tmp_path) -> None:
    """A build counts the one history cache file, not the published files: same counts."""
    from fsgen.pit.cache import cached_history
    from fsgen.pit.local import event_micros, q

    _, spec = pit_project
    join = next(j for j in plan_for(spec, "pit-set").joins if j.group.name == "accounts")
    group = spec.group("accounts")
    write_offline(tmp_path, group, [acct(k, T0 + i * 1000, i) for i, k in enumerate("aabbc")], "f0")
    write_offline(tmp_path, group, [acct(k, T0 + i * 1000, i) for i, k in enumerate("cdd")], "f1")
    group_dir = tmp_path / "offline" / "accounts"
    con = duckdb.connect()
    files = data_file_names(group_dir)
    column = q(group.event_time.name)
    cached = cached_history(con, group_dir, files, column, event_micros(join, column))
    assert cached is not None
    assert group_stats(con, join, group_dir, files, cached) == GroupStats(8, 4)
    (group_dir / CACHE_DIR / STATS_FILE).unlink()
    assert group_stats(con, join, group_dir, files) == GroupStats(8, 4)


def test_forced_form(monkeypatch) -> None:
    monkeypatch.setenv("FSGEN_PIT_FORM", "window")
    assert forced_form() == "window"
    monkeypatch.setenv("FSGEN_PIT_FORM", "auto")
    assert forced_form() is None
    monkeypatch.setenv("FSGEN_PIT_FORM", "merge")
    with pytest.raises(PitError, match="FSGEN_PIT_FORM='merge': expected one of auto"):
        forced_form()


def test_history_cache_is_keyed_by_the_file_list_and_optional(pit_project, tmp_path) -> None:
    """The cache lives outside data/, is replaced when a file is added, and a store it cannot
    be written to is read directly with the same answer."""
    import pandas as pd

    from fsgen.pit import build_dataset

    config, spec = pit_project
    group = spec.group("accounts")
    write_offline(tmp_path, group, [acct("a", T0, 1)], "f0")
    frame = pd.DataFrame({"acct_id": ["a"], "ts_label": [iso(T0 + 60_000_000)]})
    cache = tmp_path / "offline" / "accounts" / CACHE_DIR

    def level() -> object:
        labels = frame.assign(p=1, q="x", amount=1.0)
        out = build_dataset(config, spec, "pit-defaults", labels, store=tmp_path)
        return out["level"].tolist()

    assert level() == [1]
    (first,) = cache.glob("history-*.parquet")
    write_offline(tmp_path, group, [acct("a", T0 + 1000, 2)], "f1")
    assert level() == [2]
    (second,) = cache.glob("history-*.parquet")
    assert second != first and not first.exists()
    assert all(CACHE_DIR not in p for p in data_file_names(tmp_path / "offline" / "accounts"))
    write_offline(tmp_path, group, [acct("a", T0 + 2000, 3)], "f2")
    # no cache can be written (its folder's name taken by a file): the files are read
    shutil.rmtree(cache)
    cache.write_text("")
    assert level() == [3]
    assert cache.is_file()
