"""``--engine spark`` equals the local DuckDB engine row for row and cell for cell.

The property suite generates offline histories with event-time ties broken by
api_invocation_time, then write_time, then a delete, then the later file, then the later row
*in the same file* (complete ties, which only the local engines can see); writes out of order;
deletes; records exactly TTL old and one microsecond or millisecond either side; composite keys
whose concatenations collide; unknown entities and missing keys; duplicate label rows;
sub-millisecond label times as ISO-8601 text, epoch seconds or datetimes; Fractional event
times with microseconds; -0.0, NaN, huge and subnormal values; empty and missing lists;
knowledge-time mode; two feature sets (TTL from the groups, or the set's own with defaults).

All Spark tests live in this one module, so under ``pytest -n 2 --dist loadfile`` one worker
starts one JVM.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pithelpers import Row, deploy_with_ttl_history, iso, write_offline

from fsgen.cli import main
from fsgen.pit import PitError, build_dataset

pytestmark = pytest.mark.usefixtures("spark")

REPO = Path(__file__).resolve().parents[2]
BASE_US = int(datetime(2024, 3, 10, tzinfo=UTC).timestamp()) * 1_000_000
UNIT_US = 600 * 1_000_000  # ten minutes
MS = 1000
HOUR_US = 3600 * 1_000_000

ACCOUNTS = ["a", "b", "ab", "A"]
PAIRS = [(1, "23"), (12, "3"), (1, "2"), (12, "23")]
DUALS = [("x", "yz"), ("xy", "z"), ("x", "y")]
ENTITIES: dict[str, list[tuple[object, ...]]] = {
    "accounts": [(a,) for a in ACCOUNTS],
    "pairs": list(PAIRS),
    "duals": list(DUALS),
}
TTL_US = {"accounts": HOUR_US, "pairs": None, "duals": 2 * HOUR_US}
FLOATS = [-0.0, 0.0, math.nan, 0.25, -1.5, 1e300, 5e-324, 0.1]


@dataclass(frozen=True)
class Rec:
    entity: int
    event_us: int
    api_us: int
    write_us: int
    deleted: bool
    batch: int
    value: int | None


def instant(units: int, jitter: int) -> int:
    return BASE_US + units * UNIT_US + jitter


def records(event_jitter: list[int]) -> st.SearchStrategy[Rec]:
    return st.builds(
        Rec,
        entity=st.integers(0, 3),
        event_us=st.builds(instant, st.integers(0, 12), st.sampled_from(event_jitter)),
        api_us=st.builds(instant, st.integers(0, 2), st.sampled_from([0, 1])),
        write_us=st.builds(instant, st.integers(0, 14), st.sampled_from([0, 1])),
        deleted=st.booleans(),
        batch=st.integers(0, 2),
        value=st.one_of(st.none(), st.integers(-5, 5)),
    )


TICKS = [-MS, -1, 0, 1, MS]
label_rows = st.tuples(
    st.integers(0, 5),  # account (4 = unknown, 5 = no key)
    st.integers(0, 4),  # pair (4 = unknown)
    st.integers(0, 3),  # dual (3 = unknown)
    st.integers(0, 15),  # label time unit
    st.sampled_from(TICKS),  # label time jitter, down to one microsecond
    st.sampled_from([1.5, -2.0, 3.25]),  # amount (request field)
    # anchor: T exactly at a record's event time or TTL boundary, or a tick either side
    st.one_of(
        st.none(),
        st.tuples(
            st.sampled_from(["accounts", "pairs", "duals"]),
            st.integers(0, 20),
            st.sampled_from(["at", "ttl"]),
            st.sampled_from(TICKS),
        ),
    ),
)

Label = tuple[int, int, int, int, float]  # account, pair, dual, T (µs), amount


def resolve(raw: tuple[object, ...], histories: dict[str, list[Rec]]) -> Label:
    acct, pair, dual, unit, jitter, amount, anchor = raw
    entity = {"accounts": acct, "pairs": pair, "duals": dual}
    t = instant(unit, jitter)  # type: ignore[arg-type]
    if anchor is not None:
        group, index, where, tick = anchor  # type: ignore[misc]
        recs = histories[group]
        if recs:
            n = len(ENTITIES[group])
            rec = recs[index % len(recs)]
            entity[group] = rec.entity % n
            t = rec.event_us + tick + ((TTL_US[group] or 0) if where == "ttl" else 0)
    return entity["accounts"], entity["pairs"], entity["duals"], t, amount  # type: ignore[return-value]


def values_of(group: str, rec: Rec) -> dict[str, object]:
    if rec.deleted or rec.value is None:
        return {}
    v = rec.value
    return {
        "accounts": {
            "level": v,
            "label": None if v == 5 else f"L{v}",
            "hist": None if v == -5 else [v, v + 1][: abs(v) % 3],
        },
        "pairs": {"x": FLOATS[v % len(FLOATS)]},
        "duals": {"y": v * 10},
    }[group]


def stored_row(group: str, rec: Rec) -> Row:
    key = ENTITIES[group][rec.entity % len(ENTITIES[group])]
    if group == "accounts":
        base: dict[str, object] = {"acct_id": key[0], "ts": iso(rec.event_us)}
    elif group == "pairs":  # identifier deliberately the colliding concatenation
        base = {
            "pair_key": f"{key[0]}{key[1]}",
            "p": key[0],
            "q": key[1],
            "at": rec.event_us / 1_000_000,
        }
    else:
        base = {"dual_key": f"{key[0]}{key[1]}", "u": key[0], "v": key[1], "et": iso(rec.event_us)}
    return Row(
        values={**base, **values_of(group, rec)},
        event_us=rec.event_us,
        write_us=rec.write_us,
        api_us=rec.api_us,
        deleted=rec.deleted,
    )


def iso_us(us: int) -> str:
    """ISO-8601 with as many fraction digits as the instant needs (down to microseconds)."""
    seconds, micros = divmod(us, 1_000_000)
    text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{micros:06d}Z" if micros else f"{text}Z"


def label_frame(labels: list[Label], time_format: str) -> pd.DataFrame:
    rows = []
    for acct, pair, dual, us, amount in labels:
        a = ACCOUNTS[acct] if acct < 4 else ("zz" if acct == 4 else None)
        p, q = PAIRS[pair] if pair < 4 else (99, "9")
        lu, lv = DUALS[dual] if dual < 3 else ("q", "q")
        ts: object = iso_us(us) if time_format == "iso8601" else us / 1_000_000
        rows.append(
            {
                "acct_id": a,
                "p": p,
                "q": q,
                "lu": lu,
                "lv": lv,
                "ts_label": ts,
                "amount": amount,
                "target": len(rows) % 2,
            }
        )
    frame = pd.DataFrame(rows)
    if time_format == "timestamp":
        frame["ts_label"] = pd.to_datetime([t for _, _, _, t, _ in labels], unit="us", utc=True)
    return frame


def cell(value: object) -> object:
    """A value compared exactly: floats by repr (-0.0 is not 0.0, NaN equals NaN)."""
    if isinstance(value, list | tuple | np.ndarray):
        return ("list", tuple(cell(v) for v in value))
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float | np.floating):
        return repr(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value


def cells(frame: pd.DataFrame) -> list[tuple[object, ...]]:
    return [tuple(cell(v) for v in row) for row in frame.itertuples(index=False)]


def assert_same(local: pd.DataFrame, spark: pd.DataFrame) -> None:
    """Equal frames, cell for cell, the sign of zero included."""
    assert list(spark.columns) == list(local.columns)
    assert spark.dtypes.to_dict() == local.dtypes.to_dict()
    assert cells(spark) == cells(local)


def write_histories(store: Path, spec: object, histories: dict[str, list[Rec]]) -> None:
    for group, recs in histories.items():
        for batch in range(3):
            rows = [stored_row(group, r) for r in recs if r.batch == batch]
            if rows:
                write_offline(store, spec.group(group), rows, f"b{batch}")  # type: ignore[attr-defined]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    accounts=st.lists(records([0, MS]), max_size=14),
    pairs=st.lists(records([0, 1, MS]), max_size=10),
    duals=st.lists(records([0, MS]), max_size=8),
    labels=st.lists(label_rows, min_size=1, max_size=10),
    duplicates=st.lists(st.integers(0, 9), max_size=3),
    twins=st.lists(
        st.tuples(
            st.sampled_from(["accounts", "pairs", "duals"]),
            st.integers(0, 20),  # which record
            st.integers(0, 2),  # into which file
            st.integers(-5, 5),  # with which value
        ),
        max_size=4,
    ),
    time_format=st.sampled_from(["iso8601", "epoch_seconds", "timestamp"]),
    knowledge_time=st.booleans(),
    feature_set=st.sampled_from(["pit-set", "pit-defaults"]),
    changes=st.fixed_dictionaries(
        {
            group: st.lists(
                st.tuples(
                    st.builds(instant, st.integers(0, 14), st.sampled_from([0, 1])),
                    st.sampled_from([HOUR_US // 2, HOUR_US, None]),
                    st.sampled_from([HOUR_US // 2, 2 * HOUR_US, None]),
                ),
                max_size=2,
                unique_by=lambda c: c[0],
            )
            for group in ("accounts", "pairs", "duals")
        }
    ),
)
def test_spark_and_local_agree(
    pit_project,
    accounts,
    pairs,
    duals,
    labels,
    duplicates,
    twins,
    time_format,
    knowledge_time,
    feature_set,
    changes,
) -> None:
    """``changes``: TTL changes deployed in the store's registry; both engines judge each
    record by the TTL in force at its write."""
    config, spec = pit_project
    histories = {"accounts": accounts, "pairs": pairs, "duals": duals}
    for group, index, batch, value in twins:  # complete ties: same entity and timestamps
        if histories[group]:
            twin = replace(histories[group][index % len(histories[group])], batch=batch)
            histories[group] = [*histories[group], replace(twin, value=value)]
    resolved = [resolve(raw, histories) for raw in labels]
    labels = resolved + [resolved[i % len(resolved)] for i in duplicates]
    store = Path(tempfile.mkdtemp(prefix="pit-spark-"))
    try:
        deploy_with_ttl_history(config, spec, store, changes)
        write_histories(store, spec, histories)
        frame = label_frame(labels, time_format)
        local = build_dataset(config, spec, feature_set, frame, knowledge_time, store=store)
        spark = build_dataset(
            config, spec, feature_set, frame, knowledge_time, store=store, engine="spark"
        )
        pd.testing.assert_frame_equal(spark[list(frame.columns)], frame)
        assert_same(local, spark)
    finally:
        shutil.rmtree(store, ignore_errors=True)


# ---------------------------------------------------------------------------- named cases

T0 = BASE_US
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


def full(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(p=1, q="x", lu="u", lv="v", amount=1.0, target=0)


def both(config, spec, feature_set, frame, store, knowledge_time=False):
    local = build_dataset(config, spec, feature_set, frame, knowledge_time, store=store)
    spark = build_dataset(
        config, spec, feature_set, frame, knowledge_time, store=store, engine="spark"
    )
    return local, spark


def levels(frame: pd.DataFrame) -> list[object]:
    return [None if pd.isna(v) else int(v) for v in frame["level"]]


def test_complete_ties_later_file_then_later_row_then_delete_win(pit_project, tmp_path) -> None:
    config, spec = pit_project
    group = spec.group("accounts")
    e = T0 + 10 * MIN
    write_offline(tmp_path, group, [acct("a", e, 1), acct("a", e, 2)], "a0")  # later row wins
    write_offline(tmp_path, group, [acct("b", e, 3)], "b0")
    # later file wins, though Spark reads it first (it packs files largest first)
    write_offline(
        tmp_path, group, [acct("b", e, 4), *(acct(f"z{i}", e, i) for i in range(50))], "b1"
    )
    write_offline(tmp_path, group, [acct("c", e, None, deleted=True), acct("c", e, 5)], "c0")
    write_offline(tmp_path, group, [acct("d", e, 6, api=1), acct("d", e, 7, write=1)], "d0")
    frame = pd.DataFrame({"acct_id": ["a", "b", "c", "d"], "ts_label": [iso(e)] * 4})
    local, spark = both(
        config, spec, "pit-defaults", frame.assign(p=1, q="x", amount=1.0), tmp_path
    )
    assert levels(spark) == [2, 4, -1, 6]  # a delete wins a complete tie; api before write
    assert_same(local, spark)


def test_sub_millisecond_label_times_and_ttl_edges(pit_project, tmp_path) -> None:
    """A record at e is found from e on (not 1 µs before), and until exactly e + TTL (not
    1 µs after); label times as ISO text with microseconds and as datetimes."""
    config, spec = pit_project
    e = T0 + 10 * MIN + 5 * MS
    write_offline(tmp_path, spec.group("accounts"), [acct("a", e, 9)], "b0")
    times = [e - 1, e, e + 1, e + HOUR_US, e + HOUR_US + 1]
    for ts in ([iso_us(t) for t in times], pd.to_datetime(times, unit="us", utc=True)):
        frame = full(pd.DataFrame({"acct_id": ["a"] * 5, "ts_label": ts}))
        local, spark = both(config, spec, "pit-set", frame, tmp_path)
        assert levels(spark) == [None, 9, 9, 9, None]
        assert_same(local, spark)


def test_ttl_in_force_at_each_records_write(pit_project, tmp_path) -> None:
    """After a TTL change 2h -> 1h (recorded in the registry as apply records it), a record
    written before it lives 2h, one written after it 1h, to the microsecond, on both engines."""
    config, spec = pit_project
    deploy_with_ttl_history(
        config, spec, tmp_path, {"accounts": [(T0 + MIN, 2 * HOUR_US, HOUR_US)]}
    )
    e = T0 + 10 * MS
    rows = [acct("a", e, 1), acct("b", e, 2, api=MIN), acct("c", e, 3, api=MIN - 1)]
    write_offline(tmp_path, spec.group("accounts"), rows, "b0")
    times = [e + HOUR_US, e + HOUR_US + 1, e + 2 * HOUR_US, e + 2 * HOUR_US + 1]
    keys = [k for k in "abc" for _ in times]
    frame = full(pd.DataFrame({"acct_id": keys, "ts_label": [iso_us(t) for t in times] * 3}))
    local, spark = both(config, spec, "pit-set", frame, tmp_path)
    assert levels(spark) == [1, 1, 1, None, 2, None, None, None, 3, 3, 3, None]
    assert_same(local, spark)


def test_tombstone_hides_older_records_only_from_its_time_on(pit_project, tmp_path) -> None:
    config, spec = pit_project
    rows = [
        acct("a", T0, 1),
        acct("a", T0 + 10 * MIN, None, deleted=True),
        acct("a", T0 + 20 * MIN, 3),
    ]
    write_offline(tmp_path, spec.group("accounts"), rows, "b0")
    times = [T0, T0 + 10 * MIN - 1, T0 + 10 * MIN, T0 + 15 * MIN, T0 + 20 * MIN]
    frame = full(pd.DataFrame({"acct_id": ["a"] * 5, "ts_label": [iso_us(t) for t in times]}))
    local, spark = both(config, spec, "pit-set", frame, tmp_path)
    assert levels(spark) == [1, 1, None, None, 3]
    assert_same(local, spark)


def test_knowledge_time_ignores_records_written_later(pit_project, tmp_path) -> None:
    config, spec = pit_project
    rows = [acct("a", T0, 1, write=0), acct("a", T0 + MIN, 2, write=30 * MIN)]
    write_offline(tmp_path, spec.group("accounts"), rows, "b0")
    times = [T0 + 5 * MIN, T0 + 30 * MIN - 1, T0 + 30 * MIN]
    frame = full(pd.DataFrame({"acct_id": ["a"] * 3, "ts_label": [iso_us(t) for t in times]}))
    local, spark = both(config, spec, "pit-set", frame, tmp_path, knowledge_time=True)
    assert levels(spark) == [1, 1, 2]
    assert_same(local, spark)
    assert levels(
        build_dataset(config, spec, "pit-set", frame, store=tmp_path, engine="spark")
    ) == [
        2,
        2,
        2,
    ]


@pytest.mark.parametrize("knowledge_time", [False, True])
def test_signed_zero_nan_and_lists_survive(pit_project, tmp_path, knowledge_time) -> None:
    config, spec = pit_project
    xs = [-0.0, math.nan, 5e-324, -1e300]
    rows = [
        Row(
            values={"pair_key": f"{i}x", "p": i, "q": "x", "at": T0 / 1e6, "x": x},
            event_us=T0,
            write_us=T0,
            api_us=T0,
        )
        for i, x in enumerate(xs)
    ]
    write_offline(tmp_path, spec.group("pairs"), rows, "b0")
    write_offline(
        tmp_path,
        spec.group("accounts"),
        [
            Row(
                values={"acct_id": a, "ts": iso(T0), "level": 1, "hist": h},
                event_us=T0,
                write_us=T0,
                api_us=T0,
            )
            for a, h in (("a", [-3, 0, 7]), ("b", []), ("c", None))
        ],
        "b0",
    )
    frame = full(pd.DataFrame({"acct_id": ["a", "b", "c", "d"], "ts_label": [iso(T0)] * 4})).assign(
        p=range(4)
    )
    spark = build_dataset(
        config, spec, "pit-set", frame, knowledge_time, store=tmp_path, engine="spark"
    )
    assert [cell(x) for x in spark["x"]] == [cell(x) for x in xs]
    assert [cell(h) for h in spark["hist"]] == [
        ("list", (-3, 0, 7)),
        ("list", ()),
        None,
        None,
    ]
    local = build_dataset(config, spec, "pit-set", frame, knowledge_time, store=tmp_path)
    assert_same(local, spark)


def test_files_written_before_a_feature_existed(pit_project, tmp_path) -> None:
    """A file without a column (the feature was added later) reads it as missing."""
    config, spec = pit_project
    group = spec.group("accounts")
    write_offline(tmp_path, group, [acct("a", T0, 1)], "a_old")
    old = next((tmp_path / "offline" / "accounts").rglob("*_old.parquet"))
    pq.write_table(pq.read_table(old).drop_columns(["label", "hist"]), old)
    write_offline(tmp_path, group, [acct("b", T0, 2)], "b_new")
    frame = full(pd.DataFrame({"acct_id": ["a", "b"], "ts_label": [iso(T0)] * 2}))
    local, spark = both(config, spec, "pit-set", frame, tmp_path)
    assert levels(spark) == [1, 2]
    assert spark["hist"].tolist() == [None, []]
    assert_same(local, spark)


def test_no_offline_files_and_no_labels(pit_project, tmp_path) -> None:
    config, spec = pit_project
    frame = full(pd.DataFrame({"acct_id": ["a", None], "ts_label": [iso(T0)] * 2}))
    local, spark = both(config, spec, "pit-set", frame, tmp_path)
    assert levels(spark) == [None, None]
    assert_same(local, spark)
    write_offline(tmp_path, spec.group("accounts"), [acct("a", T0, 1)], "b0")
    local, spark = both(config, spec, "pit-set", frame.iloc[:0], tmp_path)
    assert len(spark) == 0
    assert_same(local, spark)


def test_a_null_label_time_is_the_same_error(pit_project, tmp_path) -> None:
    config, spec = pit_project
    write_offline(tmp_path, spec.group("accounts"), [acct("a", T0, 1)], "b0")
    frame = full(pd.DataFrame({"acct_id": ["a", "a"], "ts_label": [iso(T0), None]}))
    messages = []
    for engine in ("local", "spark"):
        with pytest.raises(PitError, match="label row 2") as info:
            build_dataset(config, spec, "pit-set", frame, store=tmp_path, engine=engine)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_missing_error_names_the_row(pit_project, tmp_path) -> None:
    config, spec = pit_project
    write_offline(tmp_path, spec.group("accounts"), [acct("a", T0, 1)], "b0")
    frame = pd.DataFrame({"acct_id": ["a", "a"], "ts_label": [iso(T0), iso(T0 - 1000)]})
    with pytest.raises(PitError, match=r"label row 2: .*missing='error'.*'level'"):
        build_dataset(config, spec, "pit-strict", frame, store=tmp_path, engine="spark")


def test_find_java_falls_back_to_an_installed_jdk(monkeypatch) -> None:
    from fsgen.pit.spark import find_java

    jdks = [p for p in Path("/usr/lib/jvm").glob("*") if (p / "bin" / "java").is_file()]
    if not jdks:
        pytest.skip("no JDK under /usr/lib/jvm (Java is on PATH some other way)")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    find_java()
    assert (Path(__import__("os").environ["JAVA_HOME"]) / "bin" / "java").is_file()


# ---------------------------------------------------------------------------- the CLI


def test_cli_dataset_engine_spark_on_the_example_project(tmp_path) -> None:
    """The example project end to end: apply, ingest the sample data, then the same training
    set from both engines."""
    root = tmp_path / "example"
    root.mkdir()
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(REPO / "featuredefs", root / "featuredefs")
    shutil.copytree(REPO / "data", root / "data")
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, ["--project", str(root), *args], env={"NO_COLOR": "1"})
        assert result.exit_code == 0, result.output
        return result.output

    run("apply", "--auto-approve")
    run("ingest", "customer-features", str(root / "data" / "customers.csv"))
    run("ingest", "merchant-features", str(root / "data" / "merchants.jsonl"))
    outputs = {}
    for engine in ("local", "spark"):
        output = tmp_path / f"{engine}.parquet"
        text = run(
            "dataset",
            "fraud-model",
            "--labels",
            str(root / "data" / "labels.csv"),
            "--output",
            str(output),
            "--engine",
            engine,
        )
        assert f"-> {output}" in text
        outputs[engine] = pd.read_parquet(output)
    labels = pd.read_csv(root / "data" / "labels.csv")
    assert len(outputs["spark"]) == len(labels)
    assert outputs["spark"]["customer_id"].tolist() == labels["customer_id"].tolist()
    assert_same(outputs["local"], outputs["spark"])
    # the sample's labels do meet stored values (the comparison is not all defaults)
    spark = outputs["spark"]
    assert (spark["age"] != -1).sum() > len(spark) // 2
    assert (spark["category"] != "unknown").sum() > len(spark) // 2


def test_an_iceberg_group_reads_like_a_glue_one(tmp_path) -> None:
    """``--engine spark`` over groups kept as Iceberg tables (their data files from the scan
    plan) equals the local engine over the same writes into Glue-format groups."""
    from pithelpers import write_pit_project
    from test_pit_iceberg import BASE, UNIT, apply, labels, write_iceberg_twin

    from fsgen.loader import load_with_config
    from fsgen.store import LocalStore

    glue = load_with_config(write_pit_project(tmp_path / "glue"))
    ice = load_with_config(write_iceberg_twin(tmp_path / "ice"))
    plan = [
        [
            ("put", "accounts", 0, 0, 0.0, 1),
            ("put", "accounts", 0, 0, 0.0, 2),  # an event-time tie: the later write wins
            ("put", "pairs", 1, 3, 0.25, 3),
            ("put", "duals", 0, 5, 0.0, -1),
            ("delete", "accounts", 1, 7, 0.0, None),
        ],
        [("put", "accounts", 1, 9, 0.0, 4), ("put", "duals", 1, 11, 0.25, 2)],
    ]
    for (_, spec), name in ((glue, "glue"), (ice, "ice")):
        with LocalStore(tmp_path / f"{name}-store", spec, clock=lambda: BASE + 30 * UNIT) as st:
            apply(st, plan, {0})
    local = build_dataset(*glue, "pit-set", labels(), store=tmp_path / "glue-store")
    spark = build_dataset(*ice, "pit-set", labels(), store=tmp_path / "ice-store", engine="spark")
    assert local["level"].notna().any()
    assert_same(local, spark)
