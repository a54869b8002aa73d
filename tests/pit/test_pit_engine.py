"""Point-in-time engine cases named one by one: the last tie-breaks, TTL override and defaults,
missing='error', knowledge time, label formats and their errors, the local store end to end,
and the CLI."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from pithelpers import Row, athena_on, deploy_with_ttl_history, iso, write_offline

from fsgen.cli import main
from fsgen.pit import PitError, build_dataset, finish, plan_for
from fsgen.pit.labels import read_labels

# every engine test runs under each join form the planner can choose
pytestmark = pytest.mark.usefixtures("pit_join_form")

T0 = 1_710_028_800 * 1_000_000  # 2024-03-10T00:00:00Z in µs
MIN = 60 * 1_000_000


def acct(
    key: str,
    event_us: int,
    level: int | None,
    *,
    api: int = 0,
    write: int = 0,
    deleted: bool = False,
) -> Row:
    values: dict[str, object] = {"acct_id": key, "ts": iso(event_us)}
    if not deleted:
        values.update(level=level, label=None if level is None else f"L{level}", hist=[])
    return Row(
        values=values, event_us=event_us, write_us=T0 + write, api_us=T0 + api, deleted=deleted
    )


def labels_at(*times: int, key: str = "a") -> pd.DataFrame:
    return pd.DataFrame({"acct_id": [key] * len(times), "ts_label": [iso(t) for t in times]})


def levels(frame: pd.DataFrame) -> list[object]:
    return [None if pd.isna(v) else int(v) for v in frame["level"]]


def test_complete_ties_later_file_then_later_row_then_delete_win(pit_project, tmp_path) -> None:
    config, spec = pit_project
    group = spec.group("accounts")
    e = T0 + 10 * MIN
    write_offline(tmp_path, group, [acct("a", e, 1), acct("a", e, 2)], "a0")  # later row wins
    write_offline(tmp_path, group, [acct("b", e, 3)], "b0")
    write_offline(tmp_path, group, [acct("b", e, 4)], "b1")  # later file wins
    write_offline(tmp_path, group, [acct("c", e, None, deleted=True), acct("c", e, 5)], "c0")
    frame = pd.DataFrame({"acct_id": ["a", "b", "c"], "ts_label": [iso(e)] * 3})
    out = build_dataset(
        config, spec, "pit-defaults", frame.assign(p=1, q="x", amount=1.0), store=tmp_path
    )
    assert levels(out) == [2, 4, -1]  # a delete wins a complete tie


def test_feature_set_ttl_overrides_group_ttl_and_defaults_fill(pit_project, tmp_path) -> None:
    config, spec = pit_project
    write_offline(tmp_path, spec.group("accounts"), [acct("a", T0, 7)], "b0")
    write_offline(
        tmp_path,
        spec.group("pairs"),
        [
            Row(
                values={"pair_key": "1x", "p": 1, "q": "x", "at": T0 / 1e6, "x": 2.0},
                event_us=T0,
                write_us=T0,
                api_us=T0,
            )
        ],
        "b0",
    )
    times = [T0 - 1000, T0, T0 + 30 * MIN, T0 + 30 * MIN + 1000]
    frame = labels_at(*times).assign(p=1, q="x", amount=3.0)
    out = build_dataset(config, spec, "pit-defaults", frame, store=tmp_path)
    # ttl=30m on the set (the group says 1h): exactly 30 minutes old counts, 1 ms more does not
    assert levels(out) == [-1, 7, 7, -1]
    assert out["label"].tolist() == ["none", "L7", "L7", "none"]
    assert out["x"].tolist() == [0.0, 2.0, 2.0, 0.0]  # default 0 typed as 0.0
    assert out["combo"].tolist() == [0.0, 6.5, 6.5, 0.0]  # missing input -> default
    assert out["level"].dtype == "int64"


def test_ttl_in_force_at_write_and_the_cache_survives_a_ttl_change(pit_project, tmp_path) -> None:
    """The group's TTL (1h) changed from 2h at T0 + 1 min: a record written before lives 2h,
    one written at or after the change 1h; the set's own TTL (30m) ignores the history. The
    history cache holds no TTL, so recording a change reuses it and changes the answer."""
    config, spec = pit_project
    e = T0 + 10 * MIN
    rows = [acct("a", e, 1), acct("b", e, 2, api=MIN), acct("c", e, 3, api=MIN - 1)]
    write_offline(tmp_path, spec.group("accounts"), rows, "b0")
    times = [e + 60 * MIN, e + 60 * MIN + 1000, e + 120 * MIN, e + 120 * MIN + 1000]
    frame = pd.concat([labels_at(*times, key=k) for k in "abc"], ignore_index=True)
    before = build_dataset(config, spec, "pit-strict", frame.iloc[[0, 4, 8]], store=tmp_path)
    assert levels(before) == [1, 2, 3]
    cached = sorted((tmp_path / "offline" / "accounts").rglob("history-*.parquet"))
    deploy_with_ttl_history(
        config, spec, tmp_path, {"accounts": [(T0 + MIN, 7200 * 10**6, 3600 * 10**6)]}
    )
    full = frame.assign(p=1, q="x", lu="x", lv="y", amount=1.0)
    out = build_dataset(config, spec, "pit-set", full, store=tmp_path)
    assert levels(out) == [1, 1, 1, None, 2, None, None, None, 3, 3, 3, None]
    assert sorted((tmp_path / "offline" / "accounts").rglob("history-*.parquet")) == cached
    own = build_dataset(
        config, spec, "pit-defaults", frame.assign(p=1, q="x", amount=1.0), store=tmp_path
    )
    assert levels(own) == [-1] * 12  # 30 minutes on the set, whatever the group's history


def test_missing_error_names_the_row(pit_project, tmp_path) -> None:
    config, spec = pit_project
    write_offline(tmp_path, spec.group("accounts"), [acct("a", T0, 1)], "b0")
    ok = build_dataset(config, spec, "pit-strict", labels_at(T0), store=tmp_path)
    assert levels(ok) == [1]
    with pytest.raises(PitError, match=r"label row 2: .*missing='error'.*'level'"):
        build_dataset(config, spec, "pit-strict", labels_at(T0, T0 - 1000), store=tmp_path)


def test_an_empty_labels_file_says_what_it_lacks(pit_project, tmp_path) -> None:
    """Zero bytes (or blank lines) is no labels table: the error says the file is empty and
    what a labels file holds, not pandas' "No columns to parse from file"."""
    config, spec = pit_project
    for name, text in (("empty.csv", ""), ("blank.csv", "\n\n")):
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(PitError) as caught:
            build_dataset(config, spec, "pit-strict", path, store=tmp_path)
        assert str(caught.value) == (
            f"{path}: the labels file is empty; it needs a header naming the key columns and "
            "the label time, and a row per label"
        )


def test_tombstone_hides_older_records_only_from_its_time_on(pit_project, tmp_path) -> None:
    config, spec = pit_project
    rows = [
        acct("a", T0, 1),
        acct("a", T0 + 10 * MIN, None, deleted=True),
        acct("a", T0 + 20 * MIN, 3),
    ]
    write_offline(tmp_path, spec.group("accounts"), rows, "b0")
    times = [T0, T0 + 10 * MIN - 1000, T0 + 10 * MIN, T0 + 15 * MIN, T0 + 20 * MIN]
    out = build_dataset(config, spec, "pit-set", _full(labels_at(*times)), store=tmp_path)
    assert levels(out) == [1, 1, None, None, 3]


def _full(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(p=1, q="x", lu="u", lv="v", amount=1.0, target=0)


def test_knowledge_time_ignores_records_written_later(pit_project, tmp_path) -> None:
    config, spec = pit_project
    rows = [acct("a", T0, 1, write=0), acct("a", T0 + MIN, 2, write=30 * MIN)]
    write_offline(tmp_path, spec.group("accounts"), rows, "b0")
    frame = _full(labels_at(T0 + 5 * MIN, T0 + 30 * MIN))
    assert levels(build_dataset(config, spec, "pit-set", frame, store=tmp_path)) == [2, 2]
    known = build_dataset(config, spec, "pit-set", frame, knowledge_time=True, store=tmp_path)
    assert levels(known) == [1, 2]


def test_labels_kept_as_given_in_order_with_duplicates(pit_project, tmp_path) -> None:
    config, spec = pit_project
    write_offline(tmp_path, spec.group("accounts"), [acct("b", T0, 5)], "b0")
    frame = _full(
        pd.DataFrame(
            {
                "acct_id": ["b", "zz", "b", "b"],
                "ts_label": [iso(T0), iso(T0), iso(T0 - 1000), iso(T0)],
            }
        )
    )
    frame.index = [10, 3, 7, 1]
    out = build_dataset(config, spec, "pit-set", frame, store=tmp_path)
    assert levels(out) == [5, None, None, 5]
    assert out["acct_id"].tolist() == ["b", "zz", "b", "b"]
    assert list(out.columns)[: len(frame.columns)] == list(frame.columns)


def test_label_time_formats_agree(pit_project, tmp_path) -> None:
    config, spec = pit_project
    write_offline(tmp_path, spec.group("accounts"), [acct("a", T0, 4)], "b0")
    times = [T0 - 1000, T0]
    forms = [
        [iso(t) for t in times],
        [t / 1e6 for t in times],
        pd.to_datetime(times, unit="us", utc=True),
        pd.to_datetime(times, unit="us"),  # naive = UTC
    ]
    for form in forms:
        frame = _full(pd.DataFrame({"acct_id": ["a", "a"], "ts_label": form}))
        assert levels(build_dataset(config, spec, "pit-set", frame, store=tmp_path)) == [None, 4]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (
            pd.DataFrame({"acct_id": ["a"], "when": ["x"]}),
            r"lack column\(s\) 'ts_label' \(the label time: FeatureSet\(label_time=...\) "
            r"names it\) .* \(the labels have: acct_id, when\)",
        ),
        (
            pd.DataFrame({"acct_id": ["a"], "ts_label": ["yesterday"]}),
            r"label row 1: ts_label 'yesterday' is not an ISO-8601",
        ),
        (
            pd.DataFrame({"acct_id": ["a", "a"], "ts_label": [iso(T0), None]}),
            r"label row 2: label time 'ts_label' is empty",
        ),
        (pd.DataFrame({"acct_id": [1.5], "ts_label": [iso(T0)]}), r"label row 1: acct_id 1.5"),
        (pd.DataFrame({"acct_id": ["a"], "ts_label": [T0 // 1000]}), r"not epoch seconds"),
        (
            pd.DataFrame({"acct_id": ["a"], "ts_label": [iso(T0)], "level": [1]}),
            r"collide with feature columns",
        ),
    ],
)
def test_bad_labels_are_refused_clearly(pit_project, tmp_path, frame, message) -> None:
    config, spec = pit_project
    with pytest.raises(PitError, match=message):
        build_dataset(config, spec, "pit-strict", frame, store=tmp_path)


@pytest.mark.parametrize("big", [2**64, str(2**63)])
def test_an_integral_label_key_beyond_64_bits_is_refused_naming_the_row(
    pit_project, tmp_path, big
) -> None:
    """No record can have such a key (ingestion rejects it): a clear error, not Arrow's
    OverflowError."""
    config, spec = pit_project
    frame = pd.DataFrame(
        {"acct_id": ["a", "a"], "p": pd.Series([1, big], dtype=object), "q": ["x", "x"]}
        | {"lu": ["u", "u"], "lv": ["v", "v"], "ts_label": [iso(T0)] * 2, "amount": [1.0] * 2}
    )
    with pytest.raises(PitError, match=r"label row 2: p .* it does not fit SageMaker's 64-bit"):
        build_dataset(config, spec, "pit-set", frame, store=tmp_path)


def test_csv_labels_keep_string_keys_as_text(pit_project, tmp_path) -> None:
    config, spec = pit_project
    write_offline(tmp_path, spec.group("accounts"), [acct("007", T0, 9)], "b0")
    path = tmp_path / "labels.csv"
    path.write_text(f"acct_id,ts_label\n007,{iso(T0)}\n")
    out = build_dataset(config, spec, "pit-strict", path, store=tmp_path)
    assert out["acct_id"].tolist() == ["007"] and levels(out) == [9]


def test_local_store_end_to_end_and_athena_sql_agree(pit_project, tmp_path, sql_engine) -> None:
    """Records written through LocalStore (put_records, delete_record) come back point in time
    correct, and the transpiled Athena SQL reads the same store identically."""
    from fsgen.store import LocalStore

    config, spec = pit_project
    config = config.model_copy(update={"store_dir": str(tmp_path / "store")})
    with LocalStore.open(config, spec) as store:
        store.put_records(
            "accounts",
            [
                {"acct_id": "a", "ts": iso(T0), "level": 1, "label": "one", "hist": [1]},
                {
                    "acct_id": "a",
                    "ts": iso(T0 + 10 * MIN),
                    "level": 2,
                    "label": "two",
                    "hist": [1, 2],
                },
                {"acct_id": "a", "ts": iso(T0), "level": 10, "label": "rewrite", "hist": []},
            ],
        )
        store.delete_record("accounts", "a", iso(T0 + 20 * MIN))
        store.put_records(
            "pairs",
            [
                {"pair_key": "k1", "p": 1, "q": "23", "at": T0 / 1e6, "x": 1.25},
                {"pair_key": "k2", "p": 12, "q": "3", "at": T0 / 1e6, "x": 9.0},
            ],
        )
    times = [T0 - 1000, T0, T0 + 10 * MIN, T0 + 20 * MIN, T0 + 90 * MIN]
    frame = pd.DataFrame(
        {
            "acct_id": "a",
            "p": 1,
            "q": "23",
            "lu": "u",
            "lv": "v",
            "ts_label": [iso(t) for t in times],
            "amount": 2.0,
            "target": 1,
        }
    )
    out = build_dataset(config, spec, "pit-set", frame)
    assert levels(out) == [None, 10, 2, None, None]  # re-write wins; delete; beyond TTL
    assert [None if pd.isna(v) else v for v in out["label"]][:3] == [None, "rewrite", "two"]
    assert out["hist"].tolist()[:3] == [None, [], [1, 2]]
    assert out["x"].fillna(-1).tolist() == [-1, 1.25, 1.25, 1.25, 1.25]  # never (12, '3')
    assert out["combo"].tolist()[1] == 2.0 * 1.25 + 0.5
    plan = plan_for(spec, "pit-set")
    athena = finish(
        plan,
        read_labels(frame, plan),
        athena_on(*sql_engine, spec, "pit-set", config.store_path, frame, "iso8601"),
    )
    pd.testing.assert_frame_equal(athena, out)


def test_cli_dataset_writes_csv_and_prints_sql(pit_project, tmp_path) -> None:
    config, spec = pit_project
    store = config.store_path
    write_offline(store, spec.group("accounts"), [acct("a", T0, 3)], "cli")
    labels = tmp_path / "labels.csv"
    labels.write_text(f"acct_id,ts_label,target\na,{iso(T0)},1\nb,{iso(T0)},0\n")
    output = tmp_path / "out" / "train.csv"
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "--project",
            str(config.root),
            "dataset",
            "pit-strict",
            "--labels",
            str(labels),
            "--output",
            str(output),
        ],
    )
    assert result.exit_code == 1 and "label row 2" in result.output
    labels.write_text(f"acct_id,ts_label,target\na,{iso(T0)},1\n")
    result = runner.invoke(
        main,
        [
            "--project",
            str(config.root),
            "dataset",
            "pit-strict",
            "--labels",
            str(labels),
            "--output",
            str(output),
        ],
    )
    assert result.exit_code == 0, result.output
    assert output.read_text().splitlines() == ["acct_id,ts_label,target,level", f"a,{iso(T0)},1,3"]
    result = runner.invoke(main, ["--project", str(config.root), "dataset", "pit-set", "--sql"])
    assert result.exit_code == 0 and 'PARTITION BY "__fsgen_k0", "__fsgen_k1"' in result.output
    assert not (Path(output.parent) / f".{output.name}.tmp").exists()


@pytest.mark.parametrize("old_first", [True, False])
def test_files_written_before_a_feature_existed(pit_project, tmp_path, old_first) -> None:
    """A file without a column (the feature was added later) reads it as missing, whichever
    file comes first; the others keep their values."""
    import pyarrow.parquet as pq

    config, spec = pit_project
    group = spec.group("accounts")
    write_offline(tmp_path, group, [acct("a", T0, 1)], "a_old" if old_first else "b_old")
    old = next((tmp_path / "offline" / "accounts").rglob("*_old.parquet"))
    pq.write_table(pq.read_table(old).drop_columns(["label", "hist"]), old)
    write_offline(tmp_path, group, [acct("b", T0, 2)], "b_new" if old_first else "a_new")
    frame = _full(pd.DataFrame({"acct_id": ["a", "b"], "ts_label": [iso(T0)] * 2}))
    out = build_dataset(config, spec, "pit-set", frame, store=tmp_path)
    assert levels(out) == [1, 2]
    assert [None if pd.isna(v) else v for v in out["label"]] == [None, "L2"]
    assert out["hist"].tolist() == [None, []]


def test_compaction_keeps_complete_ties_decided(pit_project, tmp_path) -> None:
    """Records identical in event, api and write time, in different files and rows of one
    partition: the later file, then the later row, wins -- before and after compaction (which
    merges them into one file), and an exact copy left by an interrupted compaction changes
    nothing either."""
    import random

    from fsgen.store import LocalStore

    config, spec = pit_project
    config = config.model_copy(update={"store_dir": str(tmp_path / "store")})
    group = spec.group("accounts")
    e = T0 + 10 * MIN
    rng = random.Random(7)
    keys = [f"k{i}" for i in range(20)]
    for batch in range(4):
        rows = [acct(k, e, rng.randrange(100)) for k in keys for _ in range(rng.randrange(3))]
        rng.shuffle(rows)
        write_offline(config.store_path, group, rows, f"b{batch}")
    copy = next((config.store_path / "offline" / "accounts").rglob("b1.parquet"))
    (copy.parent / "b3x.parquet").write_bytes(copy.read_bytes())  # an exact copy, later
    frame = pd.DataFrame({"acct_id": keys, "ts_label": [iso(e)] * len(keys)}).assign(
        p=1, q="x", amount=1.0
    )
    before = build_dataset(config, spec, "pit-defaults", frame)
    with LocalStore.open(config, spec) as store:
        files, after_files = store.compact("accounts")
    assert (files, after_files) == (5, 1)
    after = build_dataset(config, spec, "pit-defaults", frame)
    pd.testing.assert_frame_equal(after, before)


def test_signed_zero_survives_every_join_form(pit_project, tmp_path) -> None:
    """A -0.0 comes back as -0.0 from each form (sorting by the ordering struct itself would
    turn it into 0.0 in the window form)."""
    import struct

    config, spec = pit_project
    write_offline(
        tmp_path,
        spec.group("pairs"),
        [
            Row({"pair_key": "1x", "p": 1, "q": "x", "at": T0 / 1e6, "x": 1.5}, T0, T0, T0),
            Row(
                {"pair_key": "1x", "p": 1, "q": "x", "at": (T0 + MIN) / 1e6, "x": -0.0},
                T0 + MIN,
                T0,
                T0,
            ),
        ],
        "b0",
    )
    frame = pd.DataFrame(
        {"acct_id": ["a"] * 2, "p": [1, 1], "q": ["x", "x"], "amount": [1.0, 1.0]}
    ).assign(ts_label=[iso(T0 + MIN), iso(T0 + 2 * MIN)])
    out = build_dataset(config, spec, "pit-defaults", frame, store=tmp_path)
    assert [struct.pack(">d", v) for v in out["x"]] == [struct.pack(">d", -0.0)] * 2
