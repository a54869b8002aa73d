"""The issue's four paths, end to end through fsgen's own entry points, agree on every
aggregation feature of a project at every query time:

1. the brute-force oracle of test_aggregation_property (exact rationals, from the README);
2. ``fsgen dataset``'s local engine: ``build_dataset`` over the offline event rows in a local
   store (label times as ISO-8601 text, the planner, the label code, the missing-value policy);
3. the statements ``fsgen dataset --engine athena`` sends (the runner's job: labels table, the
   PIT query and one aggregation query per group), each through trino-sql-validator, executed
   on DuckDB by sqlglot over the offline files as the Glue tables, read back from
   GetQueryResults text by the runner;
4. streaming and serving: the events that have arrived by T, in arrival order, streamed as
   Kinesis batches through the generated stream handler into a local store, then read
   through the generated parser (BatchGetRecord over the store) at T.

Paths 2 and 3 read the offline event rows the generated stream handler wrote for the whole
history (accepted events; replays and late events are not written), so the four paths share
nothing but the featuredefs functions and the raw events.

Hypothesis draws the histories: equal event times, late and out-of-order arrivals, events on
tile and window edges and at the query times, replays (the same event again, as a retried
Lambda batch writes it), values that contribute nothing, several entities, two hops, lifetime
windows. Counts, integer results, min/max/last/last_n/count_distinct are equal on every path;
Fractional sums, means and standard deviations are bit-identical between the oracle and
serving and within the README's SQL bound for the two SQL paths.
"""

from __future__ import annotations

import base64
import json
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
from fsgen.runtime.aggregate import coerce_value, event_hash
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
    return None if s == "-" else s


@events.aggregation(Fractional, function="sum", windows=["4s", "12s", "lifetime"], hop="4s",
                    description="s")
def fsum(x: float) -> float:
    return x


@events.aggregation(Fractional, function="mean", windows=["6s", "12s"], hop="6s",
                    description="m")
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
            "s": draw(st.sampled_from(["a", "b", "c", "é", "-"])),  # "-": no value to count
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


def kept_events(spec: ProjectSpec, arrivals: list[dict[str, object]]) -> list[dict[str, object]]:
    """What the stream accepts: an event older than the entity's newest by more than the
    lateness of any of the group's aggregations is rejected whole (dead-lettered)."""
    tightest = min(
        (a.runtime() for a in spec.group("events").aggregations), key=lambda d: d.lateness
    )
    return accepted_events(tightest, arrivals)[0]


def kinesis_event(arrivals: list[dict[str, object]]) -> dict[str, object]:
    """Arrivals as one Kinesis batch: the raw record as JSON, the arrival's sequence number
    (a replay carries its original's, as a retried batch does)."""
    records = []
    for e in arrivals:
        raw = {"thing_id": e["entity"], "at": iso_us(int(e["ts"])), **e["raw"]}  # type: ignore[call-overload,dict-item]
        records.append(
            {
                "kinesis": {
                    "partitionKey": str(e["entity"]),
                    "sequenceNumber": str(int(e["seq"]) + 1),  # type: ignore[call-overload]
                    "data": base64.b64encode(json.dumps(raw).encode()).decode(),
                    "approximateArrivalTimestamp": 0.0,
                },
                "eventID": f"shardId-000000000000:{e['seq']}",
                "eventSource": "aws:kinesis",
            }
        )
    return {"Records": records}


class _Dead:
    def __init__(self) -> None:
        self.entries: list[dict[str, object]] = []

    def send(self, entries: list[dict[str, object]]) -> None:
        self.entries += entries


def stream(config: ProjectConfig, store: LocalStore, arrivals: list[dict[str, object]]) -> int:
    """The arrivals through the generated stream handler in batches of three; returns how many
    were dead-lettered."""
    handler = import_generated(config, "groups.events.stream_handler")
    dead = _Dead()
    for start in range(0, len(arrivals), 3):
        batch = kinesis_event(arrivals[start : start + 3])
        handler.process_event(batch, store.writer("events"), dead)
    return len(dead.entries)


def _served(
    config: ProjectConfig,
    spec: ProjectSpec,
    root: Path,
    arrivals: list[dict[str, object]],
    queries: list[tuple[str, int]],
) -> list[dict[str, object]]:
    """Path 4: per query (entity, T), the entity's arrivals with event time <= T (the stream's
    state can be read exactly from its watermark on) streamed through the generated handler
    into a store of their own, then read through the generated parser at T. Events the
    stream rejects as late in the whole history are left out: they never reach a state."""
    parser = import_generated(config, "feature_sets.every.parser")
    kept = {id(e) for e in kept_events(spec, arrivals)}
    out = []
    for n, (entity, t) in enumerate(queries):
        mine = [
            e
            for e in arrivals
            if e["entity"] == entity
            and int(e["ts"]) <= t  # type: ignore[call-overload]
            and (id(e) in kept or _replay_of_kept(e, arrivals, kept))
        ]
        with LocalStore(root / f"served{n}", spec) as store:
            dead = stream(config, store, mine)
            assert dead == 0, "an event accepted in the whole history was dead-lettered"
            source = LocalRecordSource(store, clock=lambda: 0.0)
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
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        with LocalStore(root / "store", spec) as store:
            dead = stream(config, store, arrivals)
        kept = kept_events(spec, arrivals)
        late = len([e for e in arrivals if not any(e is k for k in kept)])
        assert dead <= late
        local = build_dataset(config, spec, "every", labels, store=root / "store")
        athena = _athena(config, spec, root / "store", labels)
        served = _served(config, spec, root, arrivals, queries)
    for row, (entity, t) in enumerate(queries):
        for agg in group.aggregations:
            d = agg.runtime()
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
