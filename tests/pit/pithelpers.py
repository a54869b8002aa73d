"""Helpers for the point-in-time tests: a small project with three kinds of groups, and a
writer that puts offline records straight into the store's layout (contracts.md 1)."""

from __future__ import annotations

import contextlib
import os
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fsgen.spec import GroupSpec

DEFS = {
    "pitdefs/__init__.py": "",
    "pitdefs/groups.py": """
        from fsgen import Entity, FeatureGroup, Fractional, Integral, Online, String
        from fsgen.types import List

        account = Entity("acct_id", String)
        pair = Entity(keys={"p": Integral, "q": String}, name="pair")
        dual = Entity(keys={"u": String, "v": String}, name="dual")

        accounts = FeatureGroup("accounts", entity=account, event_time="ts",
                                online=Online(ttl="1h", storage="InMemory"), owner="t",
                                description="String time")
        pairs = FeatureGroup("pairs", entity=pair, event_time="at", event_time_type=Fractional,
                             owner="t", description="Fractional time, no TTL")
        duals = FeatureGroup("duals", entity=dual, event_time="et", online=Online(ttl="2h"),
                             owner="t", description="String time, renamed label keys")


        @accounts.feature(Integral, description="level")
        def level(raw_level: int) -> int:
            return raw_level


        @accounts.feature(String, description="label")
        def label(raw_label: str) -> str:
            return raw_label


        @accounts.feature(List(Integral), description="history")
        def hist(raw_hist: list[int]) -> list[int]:
            return raw_hist


        @pairs.feature(Fractional, description="x")
        def x(raw_x: float) -> float:
            return raw_x


        @duals.feature(Integral, description="y")
        def y(raw_y: int) -> int:
            return raw_y
    """,
    "pitdefs/sets.py": """
        from fsgen import FeatureSet, Fractional, on_demand

        from pitdefs.groups import duals, hist, label, level, pairs, x, y


        @on_demand(Fractional, sources=[pairs], description="amount times x")
        def combo(amount: float, x: float) -> float:
            return amount * x + 0.5


        pit_set = FeatureSet("pit-set", [level, label, hist, x, y, combo],
                             keys={duals: ["lu", "lv"]}, label_time="ts_label", owner="t",
                             labels=["target"])
        pit_defaults = FeatureSet("pit-defaults", [level, label, x, combo],
                                  label_time="ts_label", missing="default", ttl="30m",
                                  defaults={level: -1, label: "none", x: 0, combo: 0.0})
        pit_strict = FeatureSet("pit-strict", [level], label_time="ts_label", missing="error")
    """,
}

PYPROJECT = (
    '[project]\nname = "pitproject"\nversion = "0"\n\n[tool.fsgen]\ndefinitions = "pitdefs"\n'
)


def write_pit_project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    for rel, text in DEFS.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


_ARROW = {"Integral": pa.int64(), "Fractional": pa.float64(), "String": pa.string()}
TS = pa.timestamp("us", tz="UTC")


def arrow_schema(group: GroupSpec) -> pa.Schema:
    fields = []
    for name, dtype in group.stored_columns():
        inner = _ARROW[dtype.scalar.value]
        fields.append(pa.field(name, pa.list_(inner) if dtype.is_collection else inner))
    fields += [
        pa.field("write_time", TS),
        pa.field("api_invocation_time", TS),
        pa.field("is_deleted", pa.bool_()),
    ]
    return pa.schema(fields)


@dataclass(frozen=True)
class Row:
    """One offline row: stored values, event-time instant (µs), write/api times (µs)."""

    values: dict[str, object]
    event_us: int
    write_us: int
    api_us: int
    deleted: bool = False


def write_offline(store: Path, group: GroupSpec, rows: Sequence[Row], name: str) -> list[Path]:
    """Write ``rows`` as ``<store>/offline/<group>/data/year=/month=/day=/hour=/<name>.parquet``
    (one file per event-time hour), exactly the contract's columns and types."""
    schema = arrow_schema(group)
    by_hour: dict[str, list[Row]] = {}
    for row in rows:
        hour = datetime.fromtimestamp(row.event_us // 1_000_000, tz=UTC)
        part = f"year={hour:%Y}/month={hour:%m}/day={hour:%d}/hour={hour:%H}"
        by_hour.setdefault(part, []).append(row)
    written = []
    for part, part_rows in sorted(by_hour.items()):
        columns: dict[str, list[object]] = {f.name: [] for f in schema}
        for row in part_rows:
            for f in schema:
                if f.name == "write_time":
                    columns[f.name].append(row.write_us)
                elif f.name == "api_invocation_time":
                    columns[f.name].append(row.api_us)
                elif f.name == "is_deleted":
                    columns[f.name].append(row.deleted)
                else:
                    columns[f.name].append(row.values.get(f.name))
        arrays = [
            pa.array(columns[f.name], type=pa.int64() if f.type == TS else f.type).cast(f.type)
            for f in schema
        ]
        directory = store / "offline" / group.name / "data" / part
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{name}.parquet"
        pq.write_table(pa.Table.from_arrays(arrays, schema=schema), path)
        written.append(path)
    return written


def iso(us: int) -> str:
    """The store's canonical String event time: 'YYYY-MM-DDTHH:MM:SS[.mmm]Z'."""
    seconds, micros = divmod(us, 1_000_000)
    text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    assert micros % 1000 == 0
    return f"{text}.{micros // 1000:03d}Z" if micros else f"{text}Z"


def athena_on(
    engine: str,
    postgres: object,
    spec: object,
    feature_set: str,
    store: Path,
    labels: object,
    label_time_type: str,
    knowledge_time: bool = False,
    ttl_history: dict[str, tuple[object, ...]] | None = None,
) -> pa.Table:
    """Render the feature set's Athena SQL as ``fsgen generate`` does (its Glue tables the
    explicit placeholders; with ``ttl_history``, the groups' deployed TTL changes), check it
    with trino-sql-validator, and execute it on ``engine``
    (DuckDB or PostgreSQL) over the store's offline files exposed under those names.
    Returns the stored values shaped like the local engine's output, after checking that the
    rows came back in label order."""
    import pandas as pd
    from sqlengines import Table, execute, group_tables, validate_trino

    from fsgen.codegen.sql import glue_table_placeholder
    from fsgen.pit.athena import render_pit_sql
    from fsgen.pit.model import plan_for

    assert isinstance(labels, pd.DataFrame)
    plan = plan_for(spec, feature_set, ttl_history)  # type: ignore[arg-type]
    sql = render_pit_sql(
        spec,
        feature_set,
        label_time_type=label_time_type,
        knowledge_time=knowledge_time,
        ttl_history=ttl_history,
    )
    validate_trino(sql)
    names = {j.group.name: glue_table_placeholder(j.group).strip('"') for j in plan.joins}
    frame = labels.copy()
    frame.insert(0, "fsgen_row", range(len(frame)))
    label_table = Table(
        "sagemaker_featurestore",
        f"{feature_set.replace('-', '_')}_labels",
        pa.Table.from_pandas(frame, preserve_index=False),
    )
    result = execute(
        engine,  # type: ignore[arg-type]
        postgres,  # type: ignore[arg-type]
        sql,
        [label_table, *group_tables(spec, plan, store, names)],
    )
    assert result.column("fsgen_row").to_pylist() == list(range(len(frame)))
    columns = {"__fsgen_row": pa.array(range(result.num_rows), type=pa.int64())}
    for item in plan.stored:
        columns[item.column] = result.column(item.column)
    return pa.table(columns)


def runner_on(
    engine: str,
    postgres: object,
    spec: object,
    feature_set: str,
    store: Path,
    labels: object,
    knowledge_time: bool = False,
    ttl_history: dict[str, tuple[object, ...]] | None = None,
) -> pa.Table:
    """The query ``fsgen dataset --engine athena`` sends for these labels (tables named by
    their placeholders, label times as exact µs, constant partition bounds), executed on
    ``engine``, its rows rendered as GetQueryResults text and converted back by the runner."""
    from sqlengines import Table, athena_text, execute, group_tables, validate_trino

    from fsgen.pit.athena_runner import athena_job, label_table, to_arrow
    from fsgen.pit.labels import read_labels
    from fsgen.pit.model import plan_for

    plan = plan_for(spec, feature_set, ttl_history)  # type: ignore[arg-type]
    rows = read_labels(labels, plan)  # type: ignore[arg-type]
    names = {j.group.name: f"{j.group.name}-1710028800" for j in plan.joins}  # as SageMaker
    job = athena_job(
        spec,  # type: ignore[arg-type]
        plan,
        rows,
        {g: ("sagemaker_featurestore", t) for g, t in names.items()},
        database="sagemaker_featurestore",
        location="s3://bucket/labels/",
        run_id="prop",
        knowledge_time=knowledge_time,
    )
    validate_trino(job.query)
    answer = execute(
        engine,  # type: ignore[arg-type]
        postgres,  # type: ignore[arg-type]
        job.query,
        [
            Table("sagemaker_featurestore", job.labels_table, label_table(plan, rows)),
            *group_tables(spec, plan, store, names),
        ],
    )
    text = [{k: athena_text(v) for k, v in r.items()} for r in answer.to_pylist()]
    return to_arrow(plan, len(rows.frame), text)


def deploy_with_ttl_history(
    config: object,
    spec: object,
    store: Path,
    changes: dict[str, list[tuple[int, int | None, int | None]]],
) -> dict[str, tuple[object, ...]]:
    """Deploy the groups in ``store``'s registry, each with its TTL changes in the tag
    ``fsgen apply`` keeps (µs -> seconds); returns them as the engines' ``ttl_history``."""
    from fsgen.backends.registry import Registry
    from fsgen.sagemaker import create_request, desired_state
    from fsgen.ttl_history import TAG, TtlChange, render

    registry = Registry(store)
    out: dict[str, tuple[object, ...]] = {}
    for group in spec.groups:  # type: ignore[attr-defined]
        registry.create_feature_group(create_request(desired_state(group, config)))  # type: ignore[arg-type]
        seconds = [
            TtlChange(at, *(None if t is None else t // 1_000_000 for t in (old, new)))
            for at, old, new in changes.get(group.name, [])
        ]
        if seconds:
            value = render(seconds)
            registry.add_tags(
                {"ResourceArn": registry.arn(group.name), "Tags": [{"Key": TAG, "Value": value}]}
            )
            out[group.name] = tuple(sorted(seconds))
    return out


FORMS = ("auto", "window", "asof")
# (join form, history cache): the planner's choice and each form, from the cache and from the
# published files directly
VARIANTS = (
    ("auto", "on"),
    ("window", "on"),
    ("asof", "on"),
    ("window", "off"),
    ("asof", "off"),
)


@contextlib.contextmanager
def pit_form(form: str, cache: str = "on") -> Iterator[None]:
    """The local engine's join form forced to ``form`` (``auto``: the planner's choice), its
    history cache on or off."""
    settings = {"FSGEN_PIT_FORM": form, "FSGEN_PIT_CACHE": cache}
    before = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
