"""The stream's batch step applies a batch's events per entity in one pass, and its events are
coerced column by column; both give exactly what applying and coercing event by event gives.

- :meth:`AggregationState.apply_accepted` of accepted events, in chunks (a chunk of one:
  :meth:`AggregationState.apply_one`), leaves the same
  state (equal, and the same string) as :meth:`AggregationState.apply` of each in turn, from a
  kept state or from one decoded from its string;
- :func:`fsgen.runtime.aggwrite.apply_events` over batches, with kept states or decoded ones,
  writes the state strings, rejects (late reasons against the states as of each event's
  arrival) and applied positions of a reference written here event by event;
- the column-wise coercion takes a column only when every value coerces, to the same values
  bit for bit, and takes every column of the kind's own type that does (else the row path
  decides and names the aggregation)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_aggregation_property import DEFS, ENTITIES, histories, same

from fsgen.config import load_config
from fsgen.generated_imports import import_generated
from fsgen.runtime import aggwrite
from fsgen.runtime.aggregate import (
    APPLIED,
    FRACTIONAL,
    INTEGRAL,
    STRING,
    AggregationError,
    AggregationState,
    coerce_value,
    event_hash,
)
from fsgen.runtime.aggwrite import LATE_FIELD, Event, apply_events
from fsgen.runtime.encoding import format_event_time

REPO = Path(__file__).resolve().parents[2]
HOUR = 3_600_000_000
MINUTE = 60_000_000
T0 = 1_709_251_200_000_000  # 2024-03-01T00:00:00Z


@settings(max_examples=100, deadline=None)
@given(histories(), st.lists(st.integers(1, 6), min_size=1, max_size=30), st.booleans())
def test_a_chunk_applied_at_once_equals_its_events_applied_one_by_one(
    history: tuple[list[dict[str, object]], list[tuple[str, int]]],
    cuts: list[int],
    through_strings: bool,
) -> None:
    arrivals, _ = history
    for d in DEFS:
        for entity in ENTITIES:
            probe = AggregationState(d)
            accepted = []
            for e in arrivals:
                if e["entity"] != entity:
                    continue
                args = (int(e["ts"]), int(e["seq"]), str(e["hash"]), e["values"][d.value_column])  # type: ignore[call-overload,index]
                if probe.apply(*args) == APPLIED:  # type: ignore[arg-type]
                    accepted.append(args)
            one, many = AggregationState(d), AggregationState(d)
            start = 0
            for cut in cuts * (len(accepted) + 1):
                if start >= len(accepted):
                    break
                chunk = accepted[start : start + cut]
                start += cut
                for args in chunk:
                    assert one.apply(*args) == APPLIED  # type: ignore[arg-type]
                if len(chunk) == 1:  # the stream's single-event path
                    many.apply_one(*chunk[0])  # type: ignore[arg-type]
                else:
                    many.apply_accepted(chunk)  # type: ignore[arg-type]
                assert many == one, d.name
                text = one.encode()
                assert many.encode() == text, d.name
                if through_strings:
                    many = AggregationState.decode(d, text)


@pytest.fixture(scope="module")
def purchases() -> object:
    config = load_config(REPO)
    return import_generated(config, "groups.purchases.runtime").AGGREGATIONS


# one purchase: entity, minutes after (or before) the newest time so far, amount, and whether
# it repeats an earlier event's sequence (a replay)
purchase = st.tuples(
    st.sampled_from(["C1", "C2", "C3"]),
    st.sampled_from([-130, -61, -60, -59, -11, -10, -9, -1, 0, 0, 1, 4, 5, 59, 60, 61, 300]),
    st.sampled_from([0.0, 1.5, 12.25, -0.0, 3.0]),
    st.integers(0, 8),
)


def reference(art: object, states: dict[str, list[AggregationState]], events: list[Event]):  # type: ignore[no-untyped-def]
    """One event at a time: a replay when its sequence is not above its record's, late when
    any aggregation finds it late (the first such one gives the reason), else applied."""
    rejected, applied = [], []
    for e in events:
        mine = states.setdefault(e.record_id, [AggregationState(d) for d in art.definitions])  # type: ignore[attr-defined]
        if e.sequence <= max(s.max_sequence for s in mine):
            applied.append(e.index)
            continue
        late = [
            s
            for s in mine
            if s.watermark is not None and e.micros < s.watermark - s.definition.lateness
        ]
        if late:
            rejected.append((e.index, LATE_FIELD, late[0].late_reason(e.micros)))
            continue
        for s, value in zip(mine, e.values, strict=True):
            assert s.apply(e.micros, e.sequence, e.content_hash, value) == APPLIED
        applied.append(e.index)
    return rejected, applied


@settings(max_examples=150, deadline=None)
@given(
    st.lists(purchase, min_size=1, max_size=40),
    st.lists(st.integers(1, 9), min_size=1, max_size=10),
    st.lists(st.booleans(), min_size=1, max_size=10),
)
def test_a_batch_step_equals_its_events_applied_one_by_one(
    purchases: object, rows: list[tuple[str, int, float, int]], sizes: list[int], forget: list[bool]
) -> None:
    art = purchases
    rt = art.group  # type: ignore[attr-defined]
    newest, events, sequence = T0, [], 0
    for entity, minutes, amount, replay in rows:
        newest = max(newest, newest + minutes * MINUTE)
        t = newest + minutes * MINUTE if minutes < 0 else newest
        if replay == 0 and events:
            seq = events[len(events) // 2].sequence  # an earlier sequence: a replay
        else:
            sequence += 1
            seq = sequence
        values = (amount + 0.0, 1 if amount > 0 else None)
        named = dict(zip([d.value_column for d in art.definitions], values, strict=True))  # type: ignore[attr-defined]
        stamp = format_event_time(rt.event_time_kind, t / 1e6)
        events.append(
            Event(0, entity, (entity,), stamp, t, seq, event_hash(entity, t, named), values)
        )
    stored: dict[str, dict[str, object]] = {}
    expected_states: dict[str, list[AggregationState]] = {}
    position = 0
    for n, size in enumerate(sizes * len(events)):
        if position >= len(events):
            break
        batch = [e._replace(index=i) for i, e in enumerate(events[position : position + size])]
        position += size
        if forget[n % len(forget)]:
            for kept in aggwrite._WRITTEN.values():  # the next states are decoded from strings
                kept.clear()
        writes = apply_events(art, batch, stored, 2e9)  # type: ignore[arg-type]
        rejected, applied = reference(art, expected_states, batch)
        assert [(r.index, r.field, r.message) for r in writes.rejected] == sorted(rejected)
        assert writes.applied == sorted(applied)
        cols = writes.states.columns
        for j, record_id in enumerate(cols[rt.identifier]):
            record = {c: cols[c][j] for c in art.state_columns}  # type: ignore[attr-defined]
            want = {s.definition.state_column: s.encode() for s in expected_states[record_id]}
            assert record == want, record_id
            stored[str(record_id)] = {**record, rt.event_time: cols[rt.event_time][j]}
        for record_id, mine in expected_states.items():
            if record_id in stored:
                got = [stored[record_id][s.definition.state_column] for s in mine]
                assert got == [s.encode() for s in mine], record_id


odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-0.0, 0.0, 2**63 - 1, -(2**63), 2**63]),
    st.text(max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([INTEGRAL, FRACTIONAL, STRING]), st.lists(odd_values, max_size=8))
def test_column_coercion_equals_coercing_each_value(kind: str, values: list[object]) -> None:
    column = aggwrite._coerced(kind, list(values))
    try:
        each = [coerce_value(kind, v) for v in values]
    except AggregationError:
        assert column is None
        return
    own = {INTEGRAL: int, FRACTIONAL: float, STRING: str}[kind]
    if all(v is None or type(v) is own for v in values):
        assert column is not None
    if column is not None:
        assert len(column) == len(each)
        for a, b in zip(column, each, strict=True):
            assert same(a, b), (a, b)


def test_the_collector_is_paused_for_a_step_only() -> None:
    """The stream step pauses the cyclic collector and resumes it, also when the step raises;
    a collector paused by the caller stays paused."""
    assert gc.isenabled()
    with aggwrite.paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError), aggwrite.paused_gc():
        raise ValueError("a failed step")
    assert gc.isenabled()
    gc.disable()
    try:
        with aggwrite.paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_an_event_that_overflows_its_state_does_not_take_the_batchs_other_events_with_it(
    make_project,  # type: ignore[no-untyped-def]
) -> None:
    """One event whose value would push its entity's state past a record (a 400 KB category)
    is dead-lettered alone: the entity's other events of the same batch are applied, as they
    are when each arrives in a batch of its own, so the outcome does not depend on how the
    stream happened to batch the records."""
    from aggproject import make

    from fsgen.bind import aggregation_runtime

    _, spec = make(make_project)
    art = aggregation_runtime(spec.group("purchases"))
    rt = art.group
    huge = "Z" * 400_000

    def event(i: int, minutes: int, category: str) -> Event:
        t = T0 + minutes * MINUTE
        values = (10.0, 1, 10.0, category)
        named = dict(zip([d.value_column for d in art.definitions], values, strict=True))
        stamp = format_event_time(rt.event_time_kind, t / 1e6)
        return Event(i, "C1", ("C1",), stamp, t, i + 1, event_hash("C1", t, named), values)

    events = [event(0, 0, "food"), event(1, 1, huge), event(2, 2, "fuel")]
    together = apply_events(art, events, {}, 2e9)  # type: ignore[arg-type]
    assert [(r.index, r.field) for r in together.rejected] == [(1, "<state>")]
    assert together.applied == [0, 2]
    stored: dict[str, dict[str, object]] = {}
    for e in events:  # one batch per event
        aggwrite._forget()
        alone = apply_events(art, [e._replace(index=0)], stored, 2e9)  # type: ignore[arg-type]
        cols = alone.states.columns
        for j, record_id in enumerate(cols[rt.identifier]):
            stored[str(record_id)] = {c: cols[c][j] for c in [*art.state_columns, rt.event_time]}
    cols = together.states.columns
    assert {c: cols[c][0] for c in art.state_columns} == {
        c: stored["C1"][c] for c in art.state_columns
    }


def test_a_value_no_state_record_can_hold_is_rejected_before_anything_is_written(
    make_project,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    """A 400 KB category can never fit its entity's state: the batch rejects that row (named
    by its aggregation) instead of writing it offline and leaving the entity's online state
    unrebuildable from then on, while training counts it; the entity's other rows are
    written and its state rebuilt with them."""
    from aggproject import make

    from fsgen.store.local import LocalStore

    config, spec = make(make_project)
    source = tmp_path / "events.csv"
    source.write_text(
        "customer_id,purchased_at,amount,category\n"
        f"c1,2024-03-01T00:00:00Z,5.0,{'Z' * 400_000}\n"
        "c1,2024-03-01T01:00:00Z,2.0,toys\n"
    )
    rejects: list[object] = []
    with LocalStore.open(config, spec) as store:
        result = store.ingest("purchases", source, workers=0, rejects=rejects)
        assert (result.read, result.written, result.rejected) == (2, 1, 1), rejects
        assert [(r.row, r.field) for r in rejects] == [(1, "last_categories")]  # type: ignore[attr-defined]
        assert "can never fit" in rejects[0].reason  # type: ignore[attr-defined]
        assert len(store.read_offline("purchases", dedup=False)) == 1
        record = store.get_record("purchases", "c1")
        assert record is not None and "toys" in str(record["last_categories__state"])
