"""DESIGN semantics 1, 3, 4: the same raw records ingested by the batch path and by the stream
handler -- in any order, in any batching -- give identical offline rows (ignoring write times)
and identical online records, value for value; both equal an independent oracle; re-running
the stream adds no visible record; late events reach the offline store only."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pandas as pd
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from streamhelpers import GROUP, event, good

from fsgen.config import ProjectConfig
from fsgen.runtime.deadletter import JsonlDeadLetter, read_jsonl
from fsgen.runtime.pipeline import RecordError, TransformError
from fsgen.spec import ProjectSpec
from fsgen.store import LocalStore
from fsgen.stream.events import Handler

BASE = datetime(2024, 3, 1, tzinfo=UTC)

valid_raw = st.fixed_dictionaries(
    {
        "customer_id": st.sampled_from(["C1", "C2", "C3", "C 4", "ü5"]),
        "last_updated_time": st.integers(0, 72 * 3600 * 1000).map(
            lambda ms: (
                (BASE + timedelta(milliseconds=ms))
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z")
            )
        ),
        "birth_date": st.sampled_from(["1985-06-15", "2000-02-29", "1999-12-31"]),
        "membership_tier": st.sampled_from(["prime", "standard", " PRIME_PLUS "]),
        "tenure_months": st.one_of(st.integers(-5, 600), st.integers(0, 99).map(str)),
        "total_spend": st.one_of(st.floats(0, 1e7, allow_nan=False), st.integers(0, 10**6)),
    }
)
poison_raw = st.sampled_from(
    [
        {"customer_id": "C9"},
        good("C9", tenure_months="many"),
        good("C9", birth_date="1985-13-01"),
        good("C9", last_updated_time="yesterday"),
    ]
)
raw_records = st.lists(
    st.one_of(valid_raw, valid_raw, valid_raw, poison_raw),
    max_size=40,
    unique_by=lambda r: (r.get("customer_id"), r.get("last_updated_time"), json.dumps(r)),
)


def _unique_keys(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """At most one record per (id, event time): with two different records at the same event
    time, which one is 'latest' depends on arrival order, on any path (semantics 3 ties)."""
    seen: set[tuple[object, object]] = set()
    out = []
    for r in rows:
        key = (r.get("customer_id"), r.get("last_updated_time"))
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def offline_rows(store: LocalStore) -> list[tuple[object, ...]]:
    frame = store.read_offline(GROUP)
    if frame.empty:
        return []
    frame = frame.drop(columns=["write_time", "api_invocation_time"])
    return sorted(
        tuple(None if isinstance(v, float) and pd.isna(v) else v for v in row)
        for row in frame.itertuples(index=False)
    )


def online_records(store: LocalStore, ids: list[str]) -> dict[str, object]:
    return dict(zip(ids, store.batch_get(GROUP, ids, now=0), strict=True))


def oracle(
    handler: Handler, rows: list[dict[str, object]]
) -> tuple[dict[str, dict[str, object]], int]:
    """Latest valid record per id by GroupRuntime.process, row by row; and the valid count."""
    latest: dict[str, tuple[float, dict[str, object]]] = {}
    valid = 0
    for raw in rows:
        try:
            record = handler.runtime.process(raw)
        except (RecordError, TransformError):
            continue
        valid += 1
        seconds = handler.runtime.event_seconds(record)
        rid = str(record["customer_id"])
        if rid not in latest or seconds >= latest[rid][0]:
            latest[rid] = (seconds, record)
    return {k: v for k, (_, v) in latest.items()}, valid


@settings(
    max_examples=25,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=raw_records, seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 12))
def test_batch_and_stream_give_identical_stores(
    example: tuple[ProjectConfig, ProjectSpec],
    handler: Handler,
    tmp_path_factory,  # type: ignore[no-untyped-def]
    rows: list[dict[str, object]],
    seed: int,
    batch: int,
) -> None:
    _config, spec = example
    rows = _unique_keys(rows)
    work = tmp_path_factory.mktemp("parity")
    source = work / "raw.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    batch_store = LocalStore(work / "batch", spec)
    stream_store = LocalStore(work / "stream", spec)
    try:
        ingested = batch_store.ingest(GROUP, source, work / "rejects.jsonl", fmt="jsonl")
        shuffled = list(rows)
        random.Random(seed).shuffle(shuffled)
        dlq = JsonlDeadLetter(work / "dlq.jsonl")
        written = 0
        for start in range(0, len(shuffled), batch):
            result = handler.process(
                event(shuffled[start : start + batch], start=start + 1),
                stream_store.writer(GROUP),
                dlq,
            )
            assert result.response() == {"batchItemFailures": []}
            written += result.written
        assert written == ingested.written
        assert len(list(read_jsonl(dlq.path))) == ingested.rejected
        assert offline_rows(stream_store) == offline_rows(batch_store)
        latest, valid = oracle(handler, rows)
        assert len(offline_rows(stream_store)) == valid
        ids = sorted({str(r.get("customer_id")) for r in rows})
        online = online_records(stream_store, ids)
        assert online == online_records(batch_store, ids)
        assert online == {i: latest.get(i) for i in ids}
    finally:
        batch_store.close()
        stream_store.close()


def test_rerunning_a_batch_adds_no_visible_record(handler: Handler, store: LocalStore) -> None:
    batch = event(
        [good("C1", "2024-03-01T00:00:00Z"), good("C1", "2024-03-02T00:00:00Z"), good("C2")]
    )
    for _ in range(3):
        assert handler.process(batch, store.writer(GROUP), None).written == 3
    assert len(store.read_offline(GROUP)) == 3
    assert len(store.read_offline(GROUP, dedup=False)) == 9
    assert store.get_record(GROUP, "C1", now=0)["last_updated_time"] == "2024-03-02T00:00:00Z"  # type: ignore[index]


def test_late_events_reach_offline_only(handler: Handler, store: LocalStore) -> None:
    newest = good("C1", "2024-03-05T00:00:00Z", tenure_months=50)
    late = [good("C1", f"2024-03-0{d}T00:00:00Z", tenure_months=d) for d in (1, 4, 2)]
    handler.process(event([newest]), store.writer(GROUP), None)
    for i, record in enumerate(late, start=2):
        handler.process(event([record], start=i), store.writer(GROUP), None)
        online = store.get_record(GROUP, "C1", now=0)
        assert online is not None and online["last_updated_time"] == "2024-03-05T00:00:00Z"
    offline = store.read_offline(GROUP)
    assert sorted(offline["last_updated_time"]) == [
        "2024-03-01T00:00:00Z",
        "2024-03-02T00:00:00Z",
        "2024-03-04T00:00:00Z",
        "2024-03-05T00:00:00Z",
    ]
    # an event at the same time as the stored one replaces it (ties: the later write wins)
    handler.process(
        event([good("C1", "2024-03-05T00:00:00Z", tenure_months=1)], start=9),
        store.writer(GROUP),
        None,
    )
    assert store.get_record(GROUP, "C1", now=0)["avg_monthly_spend"] == 1000.0  # type: ignore[index]
