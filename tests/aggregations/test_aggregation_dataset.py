"""``fsgen dataset`` with aggregation features: each label row gets every window at its label
time from the offline event history, beside the row features of other groups, through the
dataset builder and the CLI; the Athena engine's query equals the local engine; spark and
knowledge time refuse clearly."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from aggproject import HOUR, T0, event_rows, iso, make, write_events
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsgen.cli import main
from fsgen.pit import PitError, build_dataset, plan_for
from fsgen.store.local import LocalStore

EVENTS = [
    ("c1", T0 + 0.5 * HOUR, 1, {"amount": 10.0, "category": "books"}),
    ("c1", T0 + 2 * HOUR, 2, {"amount": 30.0, "category": "games"}),
    ("c1", T0 + 2 * HOUR, 3, {"amount": 0.0, "category": "books"}),  # same time, count skips
    ("c1", T0 + 30 * HOUR, 4, {"amount": 5.0, "category": "toys"}),
    ("c2", T0 + 1 * HOUR, 5, {"amount": 7.5, "category": "food"}),
]


def _store(make_project: Callable[..., Path]):  # type: ignore[no-untyped-def]
    config, spec = make(make_project)
    group = spec.group("purchases")
    rows = event_rows(group, EVENTS)
    with LocalStore.open(config, spec) as store:
        write_events(store, group, rows + rows[:2])  # a replayed batch: the same events again
        store.put_records(
            "profile",
            [{"customer_id": "c1", "updated_at": iso(T0), "tenure": 4}],
        )
    return config, spec


def labels() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["c1", "c1", "c1", "c1", "c2", "c3", None],
            "label_time": [
                iso(T0 + 2 * HOUR),  # the event at exactly T is not included
                iso(T0 + 2 * HOUR + 1),
                iso(T0 + 31 * HOUR),
                iso(T0 + 9 * 24 * HOUR),
                iso(T0 + 1.5 * HOUR),
                iso(T0 + 5 * HOUR),
                iso(T0 + 5 * HOUR),
            ],
        }
    )


def test_dataset_computes_every_window_at_each_label_time(
    make_project: Callable[..., Path],
) -> None:
    config, spec = _store(make_project)
    frame = build_dataset(config, spec, "shop", labels())
    assert list(frame.columns) == [
        "customer_id",
        "label_time",
        "tenure",
        "avg_purchase_value_1d",
        "avg_purchase_value_7d",
        "purchase_count_1h",
        "purchase_count_lifetime",
        "last_categories_7d",
        "max_purchase_1d",
    ]
    rows = frame.to_dict("records")
    # T = 02:00: only the 00:30 event (the two at 02:00 are at T)
    assert rows[0]["avg_purchase_value_1d"] == 10.0
    assert rows[0]["purchase_count_1h"] == 0  # window [01:00, 02:00)
    assert rows[0]["purchase_count_lifetime"] == 1
    assert rows[0]["last_categories_7d"] == ["books"]
    # T = 02:00 + 1 µs: both events at 02:00 count; amount 0 contributes to the mean, not count
    assert rows[1]["avg_purchase_value_1d"] == (10.0 + 30.0 + 0.0) / 3
    assert rows[1]["purchase_count_1h"] == 1
    assert rows[1]["purchase_count_lifetime"] == 2
    assert rows[1]["max_purchase_1d"] == 30.0
    assert rows[1]["last_categories_7d"] == ["books", "games"]  # equal times: by sequence
    # T = day 1, 07:00: the 1d window starts at floor_h(T - 1d) = day 0, 07:00
    assert rows[2]["avg_purchase_value_1d"] == 5.0
    assert rows[2]["avg_purchase_value_7d"] == (10.0 + 30.0 + 0.0 + 5.0) / 4
    assert rows[2]["purchase_count_1h"] == 1  # [30:00, 31:00)
    # 9 days later: the 7d windows are empty; lifetime still counts
    assert math.isnan(rows[3]["avg_purchase_value_7d"])
    assert rows[3]["purchase_count_lifetime"] == 3
    assert rows[4]["avg_purchase_value_1d"] == 7.5 and rows[4]["purchase_count_1h"] == 1
    assert pd.isna(rows[4]["tenure"])
    # an entity without events: counts 0, means missing; a label without a key: all missing
    assert rows[5]["purchase_count_lifetime"] == 0 and math.isnan(rows[5]["max_purchase_1d"])
    assert pd.isna(rows[6]["purchase_count_lifetime"])
    assert rows[0]["tenure"] == 4


def test_a_set_of_only_aggregations_and_the_cli(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    config, spec = _store(make_project)
    plan = plan_for(spec, "only-aggregations")
    assert not plan.joins and [j.group.name for j in plan.aggregations] == ["purchases"]
    source = tmp_path / "labels.csv"
    labels().iloc[:3].to_csv(source, index=False)
    out = tmp_path / "train.parquet"
    result = CliRunner().invoke(
        main,
        [
            "--project",
            str(config.root),
            "dataset",
            "only-aggregations",
            "--labels",
            str(source),
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    expected = build_dataset(config, spec, "only-aggregations", source)
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False)
    assert frame["purchase_count_lifetime"].tolist() == [1, 2, 3]


def test_dataset_sql_says_where_the_aggregation_features_are_computed(
    make_project: Callable[..., Path],
) -> None:
    """--sql prints the row groups' point-in-time query, which holds no aggregation feature:
    stderr names the features left out and the generated aggregation query of their group,
    rather than hand over a query that silently lacks them."""
    config, _spec = make(make_project)
    runner = CliRunner()
    base = ["--project", str(config.root), "dataset"]
    result = runner.invoke(main, [*base, "only-aggregations", "--sql"])
    assert result.exit_code == 0, result.output
    assert "purchase_count_lifetime" not in result.stdout
    assert "note: the aggregation features of feature set 'only-aggregations' (" in result.stderr
    assert "purchase_count_lifetime" in result.stderr
    assert "generated/groups/purchases/aggregate_query.athena.sql" in result.stderr
    mixed = runner.invoke(main, [*base, "shop", "--sql"])  # row features and aggregations
    assert mixed.exit_code == 0, mixed.output
    assert "avg_purchase_value_1d" in mixed.stderr


def test_a_labels_file_with_only_a_header_gives_an_empty_training_set(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    """No label rows is no error: the set's columns come back with no rows (it used to stop
    at an internal Arrow error on the empty key mask)."""
    config, _spec = _store(make_project)
    source = tmp_path / "labels.csv"
    source.write_text("customer_id,label_time\n")
    out = tmp_path / "train.parquet"
    args = ["--project", str(config.root), "dataset", "shop", "--labels", str(source)]
    result = CliRunner().invoke(main, [*args, "--output", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert len(frame) == 0
    assert "purchase_count_lifetime" in frame.columns and "tenure" in frame.columns


def test_spark_and_knowledge_time_refuse_aggregation_features(
    make_project: Callable[..., Path],
) -> None:
    config, spec = make(make_project)
    with pytest.raises(PitError, match="spark engine does not compute"):
        build_dataset(config, spec, "shop", labels(), engine="spark")
    with pytest.raises(PitError, match="knowledge-time"):
        build_dataset(config, spec, "shop", labels(), knowledge_time=True)


def test_ingest_with_the_spark_engine_refuses_an_aggregation_group(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    """Aggregation groups have no generated Spark job; the refusal says why and which engine
    to use, instead of pointing at ``fsgen generate`` (which would not make one)."""
    config, _spec = make(make_project)
    events = tmp_path / "events.csv"
    events.write_text(
        "customer_id,purchased_at,amount,category\nc1,2026-11-01T00:00:00Z,3.0,books\n"
    )
    args = ["--project", str(config.root), "ingest", "purchases", str(events), "--engine"]
    result = CliRunner().invoke(main, [*args, "spark"])
    assert result.exit_code == 1
    assert "--engine spark does not run aggregation groups: 'purchases' declares" in (result.output)
    assert "default --engine local" in result.output and "Traceback" not in result.output
    assert not list(config.store_path.rglob("*.parquet"))


def test_the_athena_runner_statements_equal_the_local_engine(
    make_project: Callable[..., Path],
) -> None:
    """The statements ``--engine athena`` sends, each through trino-sql-validator, executed on
    DuckDB (sqlglot) over the offline files as the Glue tables, converted from
    GetQueryResults text by the runner: the local engine's frame (Fractional means within the
    stated SQL tolerance, everything else equal)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pit"))
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sqlengines import Table, athena_text, offline_table, run_duckdb, validate_trino

    from fsgen.pit.athena_runner import athena_job, label_table, to_arrow
    from fsgen.pit.dataset import finish
    from fsgen.pit.labels import read_labels
    from fsgen.pit.local import data_files

    config, spec = _store(make_project)
    group = spec.group("purchases")
    foreign = event_rows(group, [("c1", T0 + 1.5 * HOUR, 0, {"amount": 99.0, "category": "x"})])
    with LocalStore.open(config, spec) as store:  # no event: no sequence (another client's)
        write_events(store, group, [{**foreign[0], "event_sequence": None, "event_hash": None}])
    plan = plan_for(spec, "shop")
    rows = read_labels(labels(), plan)
    names = {j.group.name: f"{j.group.name}-1710028800" for j in plan.all_joins}
    job = athena_job(
        spec,
        plan,
        rows,
        {g: ("sagemaker_featurestore", t) for g, t in names.items()},
        database="sagemaker_featurestore",
        location="s3://bucket/labels/",
        run_id="agg",
    )
    assert len(job.aggregations) == 1 and len(job.statements) == 4
    tables = [Table("sagemaker_featurestore", job.labels_table, label_table(plan, rows))]
    for join in plan.all_joins:
        files = data_files(config.store_path / "offline" / join.group.name)
        schema = pa.unify_schemas([pq.read_schema(p) for p in files])
        tables.append(offline_table(files, schema, names[join.group.name]))
    results = []
    for sql in (job.query, *job.aggregations):
        validate_trino(sql)
        answer = run_duckdb(sql, tables)
        results.append([{k: athena_text(v) for k, v in r.items()} for r in answer.to_pylist()])
    stored = to_arrow(plan, len(rows.frame), results[0], results[1:])
    athena = finish(plan, rows, stored)
    local = build_dataset(config, spec, "shop", labels())
    for column in local.columns:
        for got, want in zip(athena[column], local[column], strict=True):
            if isinstance(want, float) and not math.isnan(want):
                assert abs(got - want) <= 1e-12 * abs(want), (column, got, want)
            elif isinstance(want, list):
                assert list(got) == want, column
            else:
                assert (pd.isna(got) and pd.isna(want)) or got == want, (column, got, want)


def test_an_aggregation_group_without_events_is_warned_of(
    make_project: Callable[..., Path],
) -> None:
    """Its windows are empty for every label row (count 0, mean missing): as for a row group
    with no stored value, the dataset says which group and why instead of handing a training
    set of zeros over silently; a group with events gets no warning."""
    config, spec = make(make_project)
    with LocalStore.open(config, spec) as store:
        store.put_records("profile", [{"customer_id": "c1", "updated_at": iso(T0), "tenure": 4}])
    labels = pd.DataFrame({"customer_id": ["c1", "c2"], "label_time": [iso(T0 + HOUR)] * 2})
    frame = build_dataset(config, spec, "shop", labels)
    assert [w["group"] for w in frame.attrs["warnings"]] == ["purchases"]
    warning = frame.attrs["warnings"][0]
    assert warning["message"].startswith(
        "feature group 'purchases' has no events for any of the 2 label rows (nothing has been "
        "ingested into it yet); its columns (avg_purchase_value_1d, "
    ), warning["message"]
    assert "are all empty-window values (count 0" in warning["message"]
    config, spec = _store(make_project)
    frame = build_dataset(config, spec, "shop", labels)
    assert frame.attrs["warnings"] == []


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["c1", "c2"]),
            st.integers(0, 40 * 3600),
            st.floats(0.5, 100.0),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_a_row_without_an_event_sequence_is_no_event_for_the_dataset_either(
    make_project: Callable[..., Path],
    foreign: list[tuple[str, int, float]],
) -> None:
    """A PutRecord of another client (boto3 against ``fsgen serve`` or SageMaker) can put a row
    with values but no ``event_sequence`` / ``event_hash`` into the offline history. The state
    rebuild (backfill, ``fsgen get``, serving) reads no such row as an event; the training set
    and its Athena query must not either, or training and serving disagree."""
    config, spec = _store(make_project)
    before = build_dataset(config, spec, "shop", labels())
    group = spec.group("purchases")
    rows = []
    for customer, seconds, amount in foreign:
        raw = {"amount": amount, "category": "x"}
        (row,) = event_rows(group, [(customer, T0 + seconds, 0, raw)])
        rows.append({**row, "event_sequence": None, "event_hash": None})
    with LocalStore.open(config, spec) as store:
        write_events(store, group, rows)
    after = build_dataset(config, spec, "shop", labels())
    pd.testing.assert_frame_equal(after, before)
