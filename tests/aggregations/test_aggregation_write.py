"""The aggregation write step: batch ingestion and the generated stream handler store the same
event rows and the same state bytes; a retried Lambda batch changes nothing; late and poison
events are dead-lettered and counted; Kinesis sequence numbers map to int64 in order."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsgen.config import load_config
from fsgen.generated_imports import import_generated
from fsgen.loader import load
from fsgen.runtime.aggregate import AggregationState
from fsgen.runtime.aggwrite import kinesis_sequence
from fsgen.store import LocalStore
from fsgen.stream.events import load_handler

REPO = Path(__file__).resolve().parents[2]
GROUP = "purchases"
START = datetime(2024, 3, 1, tzinfo=UTC)
STATES = ["avg_purchase_value__state", "purchase_count__state"]
EVENT_COLUMNS = [
    "customer_id",
    "purchased_at",
    "event_sequence",
    "event_hash",
    "avg_purchase_value__value",
    "purchase_count__value",
]


class ListDeadLetter:
    def __init__(self) -> None:
        self.entries: list[dict[str, object]] = []

    def send(self, entries: list[dict[str, object]]) -> None:
        self.entries += entries


@pytest.fixture(scope="module")
def example() -> tuple[object, object]:
    config = load_config(REPO)
    return config, load(REPO)


def handler_module(config: object) -> object:
    return import_generated(config, "groups.purchases.stream_handler")  # type: ignore[arg-type]


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def kinesis_event(rows: list[dict[str, object]], first: int) -> dict[str, object]:
    records = []
    for n, row in enumerate(rows, start=first):
        data = base64.b64encode(json.dumps(row).encode()).decode()
        records.append(
            {
                "kinesis": {
                    "partitionKey": str(row.get("customer_id")),
                    "sequenceNumber": str(n),
                    "data": data,
                    "approximateArrivalTimestamp": 0.0,
                },
                "eventID": f"shardId-000000000000:{n}",
                "eventSource": "aws:kinesis",
            }
        )
    return {"Records": records}


def stream(store: LocalStore, module: object, rows: list[dict[str, object]], sizes: Iterator[int]):
    dead = ListDeadLetter()
    results = []
    position = 0
    while position < len(rows):
        size = next(sizes)
        part = rows[position : position + size]
        event = kinesis_event(part, position + 1)
        results.append(module.process_event(event, store.writer(GROUP), dead))  # type: ignore[attr-defined]
        position += size
    return results, dead


def offline_rows(store: LocalStore) -> list[tuple[object, ...]]:
    frame = store.read_offline(GROUP, dedup=False)
    rows = frame[EVENT_COLUMNS].astype(object).where(frame[EVENT_COLUMNS].notna(), None)
    return sorted(map(tuple, rows.itertuples(index=False)), key=repr)


def as_streamed(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    """Batch event rows with each sequence as the stream numbers the same records: row n
    (``BATCH_SEQUENCE_BASE + n``) as record n."""
    from fsgen.runtime.aggwrite import BATCH_SEQUENCE_BASE

    at = EVENT_COLUMNS.index("event_sequence")
    return [(*r[:at], r[at] - BATCH_SEQUENCE_BASE, *r[at + 1 :]) for r in rows]  # type: ignore[operator]


def state_as_streamed(text: object, top: int | None = None) -> object:
    """A state string with its highest applied sequence set to ``top`` and a batch state's
    frontier sequences as the stream numbers the same records (the example's tiles, mean and
    count, hold none). A state rebuilt from batch rows only has no stream position (-1); the
    stream's is its newest record's number."""
    from fsgen.runtime.aggwrite import BATCH_SEQUENCE_BASE

    if not isinstance(text, str):
        return text
    body = json.loads(text)
    body[3] = top
    for entry in body[-2]:
        if entry[0] < 0:
            entry[0] -= BATCH_SEQUENCE_BASE
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def stream_positions(found: dict[str, tuple[object, ...] | None]) -> dict[str, object]:
    return {k: v and {json.loads(t)[3] for t in v if isinstance(t, str)} for k, v in found.items()}


def states(store: LocalStore, ids: list[str]) -> dict[str, tuple[object, ...]]:
    out = {}
    for i in ids:
        record = store.get_record(GROUP, i)
        out[i] = tuple(record[s] for s in STATES) if record else None
    return out


def write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    lines = ["customer_id,purchased_at,amount"]
    lines += [f"{r['customer_id']},{r['purchased_at']},{r['amount']}" for r in rows]
    path.write_text("\n".join(lines) + "\n")


# arrival order: each event is at most 9 minutes older than the newest so far (purchase_count
# allows 10 minutes), with equal times, tile and hour edges, refunds (amount 0: no count)
step = st.tuples(
    st.sampled_from(["C1", "C2"]),
    st.integers(-9, 70),  # minutes after (or before) the newest event time so far
    st.sampled_from([0.0, 1.5, 12.25, 99.99, 3.0]),
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(step, min_size=1, max_size=30), sizes=st.lists(st.integers(1, 7), min_size=1))
def test_batch_and_stream_store_identical_rows_and_state_bytes(
    tmp_path_factory: pytest.TempPathFactory, example: tuple[object, object], steps, sizes
) -> None:
    config, spec = example
    newest = START
    rows = []
    for customer, minutes, amount in steps:
        when = newest + timedelta(minutes=minutes)
        newest = max(newest, when)
        rows.append({"customer_id": customer, "purchased_at": iso(when), "amount": amount})
    root = tmp_path_factory.mktemp("agg")
    write_csv(root / "events.csv", rows)
    with LocalStore(root / "batch", spec) as batch:  # type: ignore[arg-type]
        result = batch.ingest(GROUP, root / "events.csv", workers=0)
        assert (result.read, result.written, result.rejected) == (len(rows), len(rows), 0)
        batch_rows, batch_states = offline_rows(batch), states(batch, ["C1", "C2"])
    # the same events, sequences aside: a batch row's is BATCH_SEQUENCE_BASE + its number
    batch_rows = sorted(as_streamed(batch_rows), key=repr)
    assert all(p in (None, {-1}) for p in stream_positions(batch_states).values())
    batch_states = {
        k: v if v is None else tuple(map(state_as_streamed, v)) for k, v in batch_states.items()
    }
    module = handler_module(config)
    with LocalStore(root / "stream", spec) as live:  # type: ignore[arg-type]
        cycle = iter(sizes * (len(rows) + 1))
        results, dead = stream(live, module, rows, cycle)
        assert sum(r.written for r in results) == len(rows) and not dead.entries
        assert offline_rows(live) == batch_rows
        streamed = states(live, ["C1", "C2"])
        last = {r["customer_id"]: n for n, r in enumerate(rows, start=1)}
        assert stream_positions(streamed) == {
            k: v and {last[k]}
            for k, v in streamed.items()  # type: ignore[misc]
        }
        assert {
            k: v if v is None else tuple(map(state_as_streamed, v)) for k, v in streamed.items()
        } == batch_states
        # the whole batch retried: nothing changes
        again, dead = stream(live, module, rows, iter([len(rows)]))
        assert again[0].written == len(rows) and not dead.entries
        assert offline_rows(live) == batch_rows
        assert states(live, ["C1", "C2"]) == streamed


def test_late_and_poison_events_are_dead_lettered_and_counted(
    tmp_path: Path, example: tuple[object, object]
) -> None:
    config, spec = example
    module = handler_module(config)
    rows = [
        {"customer_id": "C1", "purchased_at": iso(START + timedelta(hours=2)), "amount": 5.0},
        {"customer_id": "C1", "purchased_at": iso(START + timedelta(hours=1)), "amount": 7.0},
        {"customer_id": "C1", "purchased_at": iso(START), "amount": "lots"},
        {"customer_id": "C2", "purchased_at": iso(START), "amount": 1.0},
    ]
    with LocalStore(tmp_path / "store", spec) as store:  # type: ignore[arg-type]
        event = kinesis_event(rows, 1)
        event["Records"].append({"kinesis": {"sequenceNumber": "9", "data": "bm90IGpzb24="}})  # type: ignore[attr-defined]
        dead = ListDeadLetter()
        result = module.process_event(event, store.writer(GROUP), dead)  # type: ignore[attr-defined]
        assert (result.read, result.written, result.dead_lettered, result.failed) == (5, 2, 3, 0)
        reasons = {e["sequenceNumber"]: (e["field"], e["reason"]) for e in dead.entries}
        assert reasons["2"][0] == "<late>" and reasons["2"][1].startswith("event time")
        assert "older than the newest event" in reasons["2"][1]
        assert reasons["3"][0] == "amount"
        assert reasons["9"][0] == "<record>" and "not JSON" in reasons["9"][1]
        assert sorted(store.read_offline(GROUP, dedup=False)["event_sequence"]) == [1, 4]
        record = store.get_record(GROUP, "C1")
        assert record is not None
        d = spec.group(GROUP).aggregation("purchase_count").runtime()  # type: ignore[attr-defined]
        state = AggregationState.decode(d, record["purchase_count__state"])  # type: ignore[arg-type]
        assert state.finalize(int((START + timedelta(hours=3)).timestamp() * 1e6)) == {
            "purchase_count_1h": 1,  # [02:00, 03:00) holds the event at 02:00, not the late one
            "purchase_count_lifetime": 1,
        }


def test_backfill_rebuild_equals_the_stream_state(
    tmp_path: Path, example: tuple[object, object]
) -> None:
    """After streaming, an ingest of nothing new (the streamed event again, skipped as seen)
    rebuilds the states from the offline history: the same bytes."""
    config, spec = example
    module = handler_module(config)
    rows = [
        {"customer_id": "C1", "purchased_at": iso(START + timedelta(minutes=m)), "amount": a}
        for m, a in [(0, 2.0), (0, 3.0), (65, 4.5), (60, 1.0), (61, 0.0), (24 * 60, 8.0)]
    ]
    with LocalStore(tmp_path / "store", spec) as store:  # type: ignore[arg-type]
        stream(store, module, rows, iter([2, 1, 3]))
        streamed = states(store, ["C1"])
        (tmp_path / "one.csv").write_text(
            f"customer_id,purchased_at,amount\nC1,{rows[0]['purchased_at']},2.0\n"
        )
        result = store.ingest(GROUP, tmp_path / "one.csv", workers=0, duplicates="skip")
        assert (result.written, result.skipped) == (0, 1)  # the same event as seq 1
        assert states(store, ["C1"]) == streamed


def test_the_generated_handler_runs(example: tuple[object, object]) -> None:
    config, spec = example
    handler = load_handler(config, spec, GROUP)  # type: ignore[arg-type]
    assert handler.note == (
        "running generated.groups.purchases.stream_handler "
        "(generated/groups/purchases/stream_handler.py, up to date with the definitions)"
    )
    assert handler.aggregations
    assert handler._process is handler_module(config).process_event  # type: ignore[attr-defined]


def test_kinesis_sequence_numbers_map_to_int64_in_shard_order() -> None:
    # consecutive records of one shard, from AWS's documentation examples
    a = kinesis_sequence("49546986683135544286507457936321625675700192471156785154")
    b = kinesis_sequence("49546986683135544286507457936322834601519807100331491330")
    assert 0 < a < b < 2**63
    c = kinesis_sequence("49590338271490256608559692538361571095921575989136588898")
    d = kinesis_sequence("49590338271490256608559692540925702759324208523137515618")
    assert a < c < d < 2**63  # a shard created later orders after an older one's
    assert kinesis_sequence("42") == 42
    for bad in ("49000000000000000000933585057086000000000001", "-1", "x", "1e5"):
        with pytest.raises(ValueError):
            kinesis_sequence(bad)


def test_putrecord_sink_sends_events_offline_and_states_online(
    example: tuple[object, object],
) -> None:
    """On AWS the handler loads states with BatchGetRecord, writes event rows with
    TargetStores=["OfflineStore"] and states with ["OnlineStore"] (botocore validates every
    request against its model)."""
    import boto3
    from botocore.stub import ANY, Stubber

    from fsgen.bind import aggregation_runtime
    from fsgen.runtime.kinesis import process_event
    from fsgen.runtime.sinks import PutRecordSink

    _, spec = example
    art = aggregation_runtime(spec.group(GROUP))  # type: ignore[attr-defined]
    client = boto3.client(
        "sagemaker-featurestore-runtime",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    rows = [
        {"customer_id": "C1", "purchased_at": iso(START), "amount": 5.0},
        {"customer_id": "C1", "purchased_at": iso(START + timedelta(minutes=1)), "amount": 0.0},
    ]
    with Stubber(client) as stub:
        stub.add_response(
            "batch_get_record",
            {"Records": [], "Errors": [], "UnprocessedIdentifiers": []},
            {
                "Identifiers": [
                    {
                        "FeatureGroupName": GROUP,
                        "RecordIdentifiersValueAsString": ["C1"],
                        "FeatureNames": ["purchased_at", *STATES],
                    }
                ]
            },
        )
        for stores in (["OfflineStore"], ["OfflineStore"], ["OnlineStore"]):
            stub.add_response(
                "put_record",
                {},
                {"FeatureGroupName": GROUP, "Record": ANY, "TargetStores": stores},
            )
        result = process_event(art, kinesis_event(rows, 1), PutRecordSink(client=client))
        stub.assert_no_pending_responses()
    assert (result.written, result.failed, result.dead_lettered) == (2, 0, 0)


def test_local_store_gives_the_step_what_batchgetrecord_asks_for(
    tmp_path: Path, example: tuple[object, object]
) -> None:
    """The local store's ``update_states`` hands the step each stored (live) record's event
    time and state columns, as the SageMaker sink's BatchGetRecord (FeatureNames) does above,
    and no other column; missing entities are left out."""
    from fsgen.bind import aggregation_runtime
    from fsgen.runtime.aggwrite import Writes
    from fsgen.runtime.bulk import BlockResult

    config, spec = example
    art = aggregation_runtime(spec.group(GROUP))  # type: ignore[attr-defined]
    rows = [
        {"customer_id": c, "purchased_at": iso(START + timedelta(minutes=m)), "amount": 2.0}
        for m, c in enumerate(["C1", "C2", "C1"])
    ]
    seen: list[object] = []

    def step(stored: object) -> Writes:
        seen.append(stored)
        empty = BlockResult({c[0]: [] for c in art.group.columns}, [], [])
        return Writes(empty, empty)

    with LocalStore(tmp_path / "store", spec) as store:  # type: ignore[arg-type]
        stream(store, handler_module(config), rows, iter([3]))
        store.writer(GROUP).update_states(art, ["C2", "C9", "C1"], step)
        expected = {
            c: store.get_record(GROUP, c, ["purchased_at", *STATES], now=0) for c in ("C2", "C1")
        }
    assert seen == [expected]
    assert all(r and r["purchase_count__state"] for r in expected.values())


def test_malformed_rows_of_an_aggregation_group_are_rejects_in_row_order(
    tmp_path: Path, example: tuple[object, object]
) -> None:
    """A short row, a long row and a bad value in an event file: each is a reject with its
    row number, in row order, and read = written + rejected (as for a row group)."""
    _, spec = example
    path = tmp_path / "events.csv"
    path.write_text(
        "customer_id,purchased_at,amount\n"
        "C1,2024-03-01T00:00:00Z,2.0\n"
        "C1,2024-03-01T00:05:00Z,oops\n"
        "C2,2024-03-01T00:06:00Z\n"
        "C2,2024-03-01T00:07:00Z,1.0\n"
        "C3,2024-03-01T00:08:00Z,1.0,extra\n"
    )
    rejects: list[object] = []
    with LocalStore(tmp_path / "store", spec) as store:  # type: ignore[arg-type]
        result = store.ingest(GROUP, path, workers=0, rejects=rejects)
        assert (result.read, result.written, result.rejected) == (5, 2, 3)
        assert [r.row for r in rejects] == [2, 3, 5]  # type: ignore[attr-defined]
        assert len(offline_rows(store)) == 2


def test_dead_letters_and_failures_keep_the_batch_order(
    tmp_path: Path, example: tuple[object, object]
) -> None:
    """A late event, a bad value and a record that is no JSON, found by three different steps,
    reach the dead-letter destination (and the failures) in the stream's order, which is the
    order a redrive sends them in."""
    config, spec = example
    module = handler_module(config)
    rows: list[dict[str, object]] = [
        {"customer_id": "C1", "purchased_at": iso(START + timedelta(hours=2)), "amount": 5.0},
        {"customer_id": "C1", "purchased_at": iso(START), "amount": 7.0},  # late
        {"customer_id": "C1", "purchased_at": iso(START), "amount": "lots"},
    ]
    with LocalStore(tmp_path / "store", spec) as store:  # type: ignore[arg-type]
        event = kinesis_event(rows, 1)
        event["Records"].append({"kinesis": {"sequenceNumber": "4", "data": "bm90IGpzb24="}})  # type: ignore[attr-defined]
        event["Records"].append(kinesis_event(rows[:1], 5)["Records"][0])  # type: ignore[attr-defined,index]
        dead = ListDeadLetter()
        result = module.process_event(event, store.writer(GROUP), dead)  # type: ignore[attr-defined]
    assert [e["sequenceNumber"] for e in dead.entries] == ["2", "3", "4"]
    assert [f.sequence_number for f in result.failures] == ["2", "3", "4"]


def test_an_event_names_every_aggregation_that_refuses_its_value(
    example: tuple[object, object],
) -> None:
    """events_of: values no aggregation can take are one reject per event, naming each
    refusing aggregation in definition order (the shape of a RecordError's field/message)."""
    from fsgen.bind import aggregation_runtime
    from fsgen.runtime.aggwrite import events_of
    from fsgen.runtime.bulk import BlockResult

    _, spec = example
    art = aggregation_runtime(spec.group(GROUP))  # type: ignore[attr-defined]
    names = [c[0] for c in art.values.columns]
    values = {
        "customer_id": ["C1", "C2", "C3"],
        "purchased_at": [iso(START)] * 3,
        "avg_purchase_value__value": [1.0, "lots", math.inf],
        "purchase_count__value": [1, 1.5, 2],
    }
    block = BlockResult({n: values[n] for n in names}, [0, 1, 2], [START.timestamp()] * 3)
    events, rejected = events_of(art, block, [1, 2, 3])
    assert [e.index for e in events] == [0]
    assert [(r.index, r.field, r.message) for r in rejected] == [
        (
            1,
            "avg_purchase_value",
            "aggregation 'avg_purchase_value': expected a number to aggregate, got 'lots'; "
            "purchase_count: aggregation 'purchase_count': expected an integer to aggregate, "
            "got 1.5",
        ),
        (
            2,
            "avg_purchase_value",
            "aggregation 'avg_purchase_value': cannot aggregate the non-finite number inf",
        ),
    ]


def test_a_raising_aggregation_function_is_named_as_declared(
    tmp_path: Path, example: tuple[object, object]
) -> None:
    """The reject names the aggregation, never its internal ``<name>__value`` column, in
    batch ingestion and in the stream's dead letters; a late event reads 'late' once."""
    from fsgen.bind import aggregation_runtime

    _, spec = example
    art = aggregation_runtime(spec.group(GROUP))  # type: ignore[attr-defined]
    assert art.declared("avg_purchase_value__value") == "avg_purchase_value"
    assert art.declared("amount") == "amount"
    config, _ = example
    module = handler_module(config)
    rows = [
        {"customer_id": "C1", "purchased_at": iso(START + timedelta(hours=2)), "amount": 5.0},
        {"customer_id": "C1", "purchased_at": iso(START), "amount": 7.0},
    ]
    with LocalStore(tmp_path / "store", spec) as store:  # type: ignore[arg-type]
        dead = ListDeadLetter()
        module.process_event(kinesis_event(rows, 1), store.writer(GROUP), dead)  # type: ignore[attr-defined]
    (entry,) = dead.entries
    assert entry["field"] == "<late>" and str(entry["reason"]).startswith("event time ")
    assert "late:" not in str(entry["reason"])


def test_a_stream_from_sequence_one_continues_a_backfill(
    tmp_path: Path, example: tuple[object, object]
) -> None:
    """Batch rows' sequences sit below every stream sequence, an emulator's first numbers
    (moto counts from 1) included: after a backfill of ten rows, a stream record numbered 3 is a
    new event, applied, not taken for a replay of row 3."""
    from fsgen.runtime.aggwrite import BATCH_SEQUENCE_BASE

    config, spec = example
    module = handler_module(config)
    source = tmp_path / "purchases.csv"
    source.write_text(
        "customer_id,purchased_at,amount\n"
        + "".join(f"C1,{iso(START + timedelta(minutes=m))},1.0\n" for m in range(10))
    )
    with LocalStore(tmp_path / "store", spec) as store:  # type: ignore[arg-type]
        assert store.ingest(GROUP, source).written == 10
        history = store.read_offline(GROUP, dedup=False)["event_sequence"]
        assert sorted(history) == [BATCH_SEQUENCE_BASE + n for n in range(1, 11)]
        late = {"customer_id": "C1", "purchased_at": iso(START + timedelta(hours=1)), "amount": 9.0}
        result = module.process_event(kinesis_event([late], 3), store.writer(GROUP), None)  # type: ignore[attr-defined]
        assert (result.written, result.dead_lettered) == (1, 0)
        record = store.get_record(GROUP, "C1")
    assert record is not None
    d = spec.group(GROUP).aggregation("purchase_count").runtime()  # type: ignore[attr-defined]
    state = AggregationState.decode(d, record["purchase_count__state"])  # type: ignore[arg-type]
    assert state.max_sequence == 3
    assert state.finalize(int((START + timedelta(hours=1, minutes=10)).timestamp() * 1e6)) == {
        "purchase_count_1h": 1,  # tiles from 00:10: the streamed event only
        "purchase_count_lifetime": 11,
    }


def test_an_event_of_an_older_source_is_dead_lettered_not_dropped_as_a_replay(
    tmp_path: Path, example: tuple[object, object]
) -> None:
    """A state updated from one source (a replay numbered from its start time, a newer shard)
    cannot order another's lower sequences: such an event is dead-lettered with field
    <sequence> and its reason, counted, and the state is unchanged; a retry of the state's own
    source is still a replay (written, nothing changes)."""
    from fsgen.runtime.aggregate import SOURCE_BITS
    from fsgen.stream.replay import arrival_sequence

    config, spec = example
    module = handler_module(config)
    newer = int(arrival_sequence(1, 1_780_000_000_000))
    assert newer >> SOURCE_BITS > 0
    rows = [
        {"customer_id": "C1", "purchased_at": iso(START + timedelta(minutes=m)), "amount": 2.0}
        for m in range(3)
    ]
    with LocalStore(tmp_path / "store", spec) as store:  # type: ignore[arg-type]
        first = module.process_event(kinesis_event(rows[:1], newer), store.writer(GROUP), None)  # type: ignore[attr-defined]
        assert first.written == 1
        before = store.get_record(GROUP, "C1")
        dead = ListDeadLetter()
        event = kinesis_event(rows[1:2], 7)  # an emulator's number: another source
        event["Records"] += kinesis_event(rows[:1], newer)["Records"]  # type: ignore[operator]
        result = module.process_event(event, store.writer(GROUP), dead)  # type: ignore[attr-defined]
        assert (result.read, result.written, result.dead_lettered) == (2, 1, 1)
        assert [(e["sequenceNumber"], e["field"]) for e in dead.entries] == [("7", "<sequence>")]
        assert "older source" in dead.entries[0]["reason"]  # type: ignore[operator]
        assert "re-ingest it as a backfill" in dead.entries[0]["reason"]  # type: ignore[operator]
        after = store.get_record(GROUP, "C1")
    assert before is not None and after is not None
    assert after["purchase_count__state"] == before["purchase_count__state"]


@given(st.integers(0, 2**62), st.integers(0, 2**62))
def test_other_source_is_a_lower_sequence_of_an_older_source(a: int, b: int) -> None:
    from fsgen.runtime.aggregate import SOURCE_BITS, other_source

    top, seq = max(a, b), min(a, b)
    assert other_source(seq, top) == (seq >> SOURCE_BITS != top >> SOURCE_BITS)
    assert not other_source(seq, -1)


def test_an_event_far_ahead_of_the_clock_is_rejected_in_batch_and_stream(
    tmp_path: Path, example: tuple[object, object]
) -> None:
    """A reading from a wrong clock (a device's reset RTC: 2999) would move its entity's
    watermark there, and every real event after it would be dead-lettered as late: batch and
    stream reject it (field: the event time), and keep the real events. A day ahead is taken."""
    config, spec = example
    module = handler_module(config)
    now = datetime.now(UTC)
    soon = iso(now + timedelta(hours=23))
    path = tmp_path / "events.csv"
    path.write_text(
        "customer_id,purchased_at,amount\n"
        "C1,2999-01-01T00:00:00Z,2.0\n"
        f"C1,{iso(now + timedelta(days=2))},2.0\n"
        f"C1,{soon},3.0\n"
    )
    rejects: list[object] = []
    with LocalStore(tmp_path / "store", spec) as store:  # type: ignore[arg-type]
        result = store.ingest(GROUP, path, workers=0, rejects=rejects)
        assert (result.read, result.written, result.rejected) == (3, 1, 2)
        assert [(r.row, r.field) for r in rejects] == [(1, "purchased_at"), (2, "purchased_at")]  # type: ignore[attr-defined]
        reason = rejects[0].reason  # type: ignore[attr-defined]
        assert reason.startswith("event time 2999-01-01T00:00:00Z is ")
        assert "ahead of this write's clock" in reason and "more than the 1d" in reason
        rows = [
            {"customer_id": "C2", "purchased_at": "2999-01-01T00:00:00Z", "amount": 5.0},
            {"customer_id": "C2", "purchased_at": iso(now), "amount": 7.0},
        ]
        dead = ListDeadLetter()
        streamed = module.process_event(kinesis_event(rows, 1), store.writer(GROUP), dead)  # type: ignore[attr-defined]
        assert (streamed.written, streamed.dead_lettered) == (1, 1)
        assert [(e["sequenceNumber"], e["field"]) for e in dead.entries] == [("1", "purchased_at")]
        assert "ahead of this write's clock" in dead.entries[0]["reason"]
