"""The issue's four paths, end to end through fsgen's own entry points, agree on every
aggregation feature of a project at every query time:

1. the brute-force oracle of test_aggregation_property (exact rationals, from the README);
2. ``fsgen dataset``'s local engine: ``build_dataset`` over the offline event rows in a local
   store (label times as ISO-8601 text, the planner, the label code, the missing-value policy);
3. the statements ``fsgen dataset --engine athena`` sends (the runner's job: labels table, the
   PIT query and one aggregation query per group), each through trino-sql-validator, executed
   on DuckDB by sqlglot over the offline files as the Glue tables, read back from
   GetQueryResults text by the runner;
4. serving: the events that have arrived by T, in arrival order, applied to the online state
   (accepting, ignoring replays, rejecting late ones, as the stream handler does), the state
   record stored in the online store, then read through the generated parser (BatchGetRecord
   over the store) at T.

Hypothesis draws the histories: equal event times, late and out-of-order arrivals, events on
tile and window edges and at the query times, replays (the same event again, as a retried
Lambda batch writes it), values that contribute nothing, several entities, two hops, lifetime
windows. Counts, integer results, min/max/last/last_n/count_distinct are equal on every path;
Fractional sums, means and standard deviations are bit-identical between the oracle and
serving and within the README's SQL bound for the two SQL paths.
"""

from __future__ import annotations

import math
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_aggregation_property import _replay_of_kept, accepted_events, bound, oracle, same

from fsgen.codegen import generate
from fsgen.config import ProjectConfig
from fsgen.generated_imports import import_generated
from fsgen.loader import load_with_config
from fsgen.pit import build_dataset, plan_for
from fsgen.runtime.aggregate import AggregationState, coerce_value, encode_states, event_hash
from fsgen.serving.sources import LocalRecordSource
from fsgen.spec import ProjectSpec
from fsgen.store.local import LocalStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pit"))

DEFS = """
from fsgen import Entity, FeatureGroup, FeatureSet, Fractional, Integral, List, String

thing = Entity("thing_id", String, description="Anything with events")
events = FeatureGroup("events", entity=thing, event_time="at", owner="o", description="Events")


@events.aggregation(Integral, function="count", windows=["4s", "12s", "lifetime"], hop="4s",
                    description="c")
def cnt(s: str) -> str | None:
    return None if s == "" else s


@events.aggregation(Fractional, function="sum", windows=["4s", "12s", "lifetime"], hop="4s",
                    description="s")
def fsum(x: float) -> float:
    return x


@events.aggregation(Fractional, function="mean", windows=["6s", "12s"], hop="6s",
                    lateness="0s", description="m")
def fmean(x: float) -> float | None:
    return None if x > 1e8 else x


@events.aggregation(Integral, function="min", windows=["8s", "lifetime"], hop="4s",
                    description="mn")
def imin(i: int) -> int:
    return i


@events.aggregation(Fractional, function="stddev", windows=["8s"], hop="4s", description="sd")
def fsd(x: float) -> float:
    return x


@events.aggregation(String, function="last", windows=["4s", "lifetime"], hop="4s",
                    description="l")
def slast(s: str) -> str:
    return s


@events.aggregation(List(Integral), function="last_n", n=3, windows=["8s", "lifetime"],
                    hop="4s", description="ln")
def lastn(i: int) -> int:
    return i


@events.aggregation(Integral, function="count_distinct", n=2, windows=["12s", "lifetime"],
                    hop="6s", description="cd")
def cdist(s: str) -> str:
    return s


every = FeatureSet("every", [events], label_time="label_time")
"""

T0 = 1_710_028_800  # 2024-03-10T00:00:00Z, a multiple of every hop
US = 1_000_000
ENTITIES = ("a", "b")
APPROX = {"fsum", "fmean", "fsd"}


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ProjectConfig, ProjectSpec]]:
    root = tmp_path_factory.mktemp("paths")
    (root / "pyproject.toml").write_text(
        '[project]\nname = "paths"\nversion = "0"\n\n[tool.fsgen]\ndefinitions = "pathdefs"\n'
    )
    (root / "pathdefs").mkdir()
    (root / "pathdefs" / "__init__.py").write_text("")
    (root / "pathdefs" / "events.py").write_text(DEFS)
    config, spec = load_with_config(root)
    generate(config, spec)
    yield config, spec


def iso_us(micros: int) -> str:
    moment = datetime.fromtimestamp(micros // US, UTC).replace(microsecond=micros % US)
    return moment.isoformat().replace("+00:00", "Z")


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[dict[str, object]], list[tuple[str, int]]]:
    """Arrivals (raw fields, event time in µs at millisecond precision) and query times."""
    arrivals: list[dict[str, object]] = []
    millis = st.integers(0, 40_000) | st.sampled_from([0, 4000, 6000, 8000, 12000, 24000, 36000])
    for seq in range(draw(st.integers(0, 24))):
        if arrivals and draw(st.integers(0, 6)) == 0:
            arrivals.append(dict(draw(st.sampled_from(arrivals))))  # a replayed record
            continue
        raw = {
            "x": draw(
                st.sampled_from([0.0, -0.0, 0.1, 0.2, 1e16, -1e16, 2.5, 3e8])
                | st.floats(-1e6, 1e6, allow_nan=False)
            )
            + 0.0,
            "i": draw(st.integers(-(2**31), 2**31) | st.integers(0, 3)),
            "s": draw(st.sampled_from(["a", "b", "c", "é", ""])),
        }
        arrivals.append(
            {
                "entity": draw(st.sampled_from(ENTITIES)),
                "ts": (T0 * 1000 + draw(millis)) * 1000,
                "seq": seq,
                "raw": raw,
            }
        )
    times = [int(e["ts"]) for e in arrivals] or [T0 * US]  # type: ignore[call-overload]
    query = st.integers(T0 * US, (T0 + 50) * US) | st.sampled_from(times)
    queries = draw(st.lists(st.tuples(st.sampled_from(ENTITIES), query), min_size=1, max_size=5))
    return arrivals, queries


def _with_values(spec: ProjectSpec, arrivals: list[dict[str, object]]) -> None:
    """Each arrival's mapped value per aggregation (the featuredefs function) and its hash."""
    import importlib

    group = spec.group("events")
    for e in arrivals:
        if "values" in e:
            continue
        values = {}
        for agg in group.aggregations:
            fn = getattr(importlib.import_module(agg.transform.module), agg.transform.name)
            mapped = fn(**{i.name: e["raw"][i.name] for i in agg.inputs})  # type: ignore[index]
            values[agg.value_column] = coerce_value(agg.value_dtype.scalar.value, mapped)
        e["values"] = values
        e["hash"] = event_hash(e["entity"], int(e["ts"]), values)  # type: ignore[call-overload]


def _offline_rows(spec: ProjectSpec, arrivals: list[dict[str, object]]) -> list[dict[str, object]]:
    """The event rows the stream writes offline: every arrival (replays too), a value the
    stream rejected as late for its aggregation stored as null."""
    group = spec.group("events")
    kept = {
        a.name: {id(e) for e in accepted_events(a.runtime(), arrivals)[0]}
        for a in group.aggregations
    }
    first = {}
    for e in arrivals:
        first.setdefault((e["entity"], e["seq"]), e)
    rows = []
    for e in arrivals:
        original = first[(e["entity"], e["seq"])]
        row = {
            "thing_id": e["entity"],
            "at": iso_us(int(e["ts"])),  # type: ignore[call-overload]
            "event_sequence": e["seq"],
            "event_hash": e["hash"],
        }
        for agg in group.aggregations:
            value = e["values"][agg.value_column]  # type: ignore[index]
            row[agg.value_column] = value if id(original) in kept[agg.name] else None
        rows.append(row)
    return rows


def _served(
    config: ProjectConfig,
    spec: ProjectSpec,
    store_root: Path,
    arrivals: list[dict[str, object]],
    queries: list[tuple[str, int]],
) -> list[dict[str, object]]:
    """Path 4: per query, the state the stream holds at T, stored online, read by the parser."""
    from aggproject import state_runtime

    group = spec.group("events")
    parser = import_generated(config, "feature_sets.every.parser")
    out = []
    with LocalStore(store_root / "served", spec) as store:
        store.adopt(state_runtime(group), online=True, offline=False)
        source = LocalRecordSource(store, clock=lambda: 0.0)
        for n, (entity, t) in enumerate(queries):
            states = []
            for agg in group.aggregations:
                d = agg.runtime()
                kept = {id(e) for e in accepted_events(d, arrivals)[0]}
                state = AggregationState(d)
                for e in arrivals:
                    if e["entity"] != entity or int(e["ts"]) > t:  # type: ignore[call-overload]
                        continue
                    if id(e) not in kept and not _replay_of_kept(e, arrivals, kept):
                        continue  # rejected as late in the full history: never in the state
                    value = e["values"][d.value_column]  # type: ignore[index]
                    state.apply(int(e["ts"]), int(e["seq"]), str(e["hash"]), value)  # type: ignore[call-overload]
                states.append(state)
            record = {"thing_id": entity, "at": iso_us((T0 + n) * US), **encode_states(states)}
            store.put_records("events", [record])
            request = {"thing_id": entity}
            response = source.batch_get_record(**parser.batch_get_request(request))
            vector = parser.from_batch_get_record(response, request, now=t / US)
            out.append(dict(zip(parser.COLUMNS, vector, strict=True)))
    return out


def _athena(
    config: ProjectConfig, spec: ProjectSpec, store_root: Path, labels: pd.DataFrame
) -> pd.DataFrame:
    """Path 3: the runner's statements on DuckDB, converted as GetQueryResults text."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sqlengines import Table, athena_text, offline_table, run_duckdb, validate_trino

    from fsgen.pit.athena_runner import athena_job, label_table, to_arrow
    from fsgen.pit.dataset import finish
    from fsgen.pit.labels import read_labels
    from fsgen.pit.local import data_files

    plan = plan_for(spec, "every")
    rows = read_labels(labels, plan)
    job = athena_job(
        spec,
        plan,
        rows,
        {"events": ("sagemaker_featurestore", "events-1710028800")},
        database="sagemaker_featurestore",
        location="s3://bucket/labels/",
        run_id="paths",
    )
    tables = [Table("sagemaker_featurestore", job.labels_table, label_table(plan, rows))]
    files = data_files(store_root / "offline" / "events")
    if files:
        schema = pa.unify_schemas([pq.read_schema(p) for p in files])
        tables.append(offline_table(files, schema, "events-1710028800"))
    else:
        return pd.DataFrame()
    results = []
    for sql in job.aggregations:
        validate_trino(sql)
        answer = run_duckdb(sql, tables)
        results.append([{k: athena_text(v) for k, v in r.items()} for r in answer.to_pylist()])
    base = [{"fsgen_row": str(i)} for i in range(len(labels))]
    return finish(plan, rows, to_arrow(plan, len(labels), base, results))


def _plain(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA:
        return None
    if hasattr(value, "tolist"):
        return value.tolist()  # type: ignore[union-attr]
    return value


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(histories())
def test_oracle_dataset_athena_and_serving_agree(
    project: tuple[ProjectConfig, ProjectSpec],
    history: tuple[list[dict[str, object]], list[tuple[str, int]]],
) -> None:
    config, spec = project
    arrivals, queries = history
    _with_values(spec, arrivals)
    group = spec.group("events")
    labels = pd.DataFrame(
        {"thing_id": [k for k, _ in queries], "label_time": [iso_us(t) for _, t in queries]}
    )
    from aggproject import event_runtime

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        rows = _offline_rows(spec, arrivals)
        with LocalStore(root, spec) as store:
            if rows:
                store.adopt(event_runtime(group), online=False, offline=True)
                store.put_records("events", rows)
        local = build_dataset(config, spec, "every", labels, store=root)
        athena = _athena(config, spec, root, labels)
        served = _served(config, spec, root, arrivals, queries)
    for row, (entity, t) in enumerate(queries):
        for agg in group.aggregations:
            d = agg.runtime()
            kept = accepted_events(d, arrivals)[0]
            for w, name in zip(d.windows, d.feature_names, strict=True):
                expected = oracle(d, kept, entity, t, w)
                where = f"{name} at {t} for {entity}"
                assert same(served[row][name], expected), (
                    "serving",
                    where,
                    served[row][name],
                    expected,
                )
                engines = [("dataset", local)] + ([("athena", athena)] if len(athena) else [])
                for engine, frame in engines:
                    got = _plain(frame[name].iloc[row])
                    if agg.name in APPROX and expected is not None:
                        tol = bound(d, kept, entity, t, w)
                        assert isinstance(got, float), (engine, where, got)
                        assert abs(got - expected) <= tol, (engine, where, got, expected, tol)  # type: ignore[operator]
                    else:
                        assert same(got, expected), (engine, where, got, expected)
