"""A coalescing writer (``fsgen stream replay`` / ``consume`` into the local store) holds the
stream steps' states uncommitted and commits many steps at once; it must store exactly what
committing every Lambda batch on its own stores.

Hypothesis generates streams (several entities, equal times, late events beyond the allowed
lateness, refunds that count nothing, replays of whole earlier batches, poison records, and
values that push a state past SageMaker's 350 KB record) cut into batches, and commit points;
both writers see the same Kinesis events. The per-batch outcomes (written, every failure with
its field and message), the offline event rows and the online records are equal.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsgen.bind import aggregation_runtime
from fsgen.loader import load_with_config
from fsgen.runtime import aggwrite
from fsgen.runtime.kinesis import process_aggregation_event
from fsgen.store.commit import HeldStepsLost, _Busy
from fsgen.store.local import LocalStore

DEFS = """
from fsgen import Entity, FeatureGroup, Fractional, Integral, List, String

device = Entity("device_id", String, description="A sensor")
readings = FeatureGroup(
    "readings", entity=device, event_time="read_at", owner="iot", description="Readings",
)
notes = FeatureGroup(
    "notes", entity=device, event_time="noted_at", owner="iot", description="Notes",
)


@readings.aggregation(Fractional, function="mean", windows=["1h", "1d"], hop="1h",
                      lateness="10m", description="Mean temperature")
def avg_temp(temp: float) -> float:
    return temp


@readings.aggregation(Integral, function="count", windows=["15m", "lifetime"], hop="5m",
                      lateness="10m", description="Readings above freezing")
def warm_count(temp: float) -> int | None:
    return 1 if temp > 0 else None


@readings.aggregation(Fractional, function="variance", windows=["1d"], hop="1h",
                      lateness="10m", description="Temperature variance")
def temp_var(temp: float) -> float:
    return temp


@notes.aggregation(List(String), function="last_n", n=2, windows=["1d"], hop="1h",
                   lateness="10m", description="Last notes")
def last_notes(note: str) -> str:
    return note


@notes.aggregation(Integral, function="count", windows=["1h"], hop="1h", lateness="10m",
                   description="Notes")
def note_count(note: str) -> int:
    return 1
"""

T0 = 1_710_028_800  # 2024-03-10T00:00:00Z
NOW = float(T0 + 40 * 86_400)  # the writers' clock: every event is in its past
BIG = "N" * 200_000  # two of them are over a record: the second one is rejected


def iso(seconds: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def kinesis(records: list[bytes], first: int) -> dict[str, object]:
    return {
        "Records": [
            {
                "kinesis": {
                    "partitionKey": "p",
                    "sequenceNumber": str(n),
                    "data": base64.b64encode(data).decode(),
                    "approximateArrivalTimestamp": 0.0,
                },
                "eventID": f"shardId-000000000000:{n}",
                "eventSource": "aws:kinesis",
            }
            for n, data in enumerate(records, start=first)
        ]
    }


@pytest.fixture
def project(make_project):  # type: ignore[no-untyped-def]
    return load_with_config(make_project({"featuredefs/iot.py": DEFS}))


# (device, minutes after the newest so far (negative: older; below -10: late), value)
step = st.tuples(
    st.sampled_from(["D1", "D2", "D3"]),
    st.integers(-14, 90),
    st.sampled_from([21.5, -3.0, 0.0, 7.25, 1e300, 5e-324]),
)


def stream_of(
    group: str, steps: list[tuple[str, int, float]], poison: list[bool], big: list[bool]
) -> list[bytes]:
    newest = T0
    out = []
    for n, (device, minutes, value) in enumerate(steps):
        t = newest + minutes * 60
        newest = max(newest, t)
        if poison[n % len(poison)]:
            out.append(b'{"device_id": "D1", "read_at": ' if n % 2 else b"not json")
        elif group == "readings":
            out.append(json.dumps({"device_id": device, "read_at": iso(t), "temp": value}).encode())
        else:
            note = BIG if big[n % len(big)] else f"note {value}"
            out.append(json.dumps({"device_id": device, "noted_at": iso(t), "note": note}).encode())
    return out


def outcome(result: object) -> tuple[object, ...]:
    return (
        result.written,  # type: ignore[attr-defined]
        [(f.sequence_number, f.field, f.message, f.kind) for f in result.failures],  # type: ignore[attr-defined]
    )


def stored(store: LocalStore, group: str) -> tuple[object, object]:
    frame = store.read_offline(group, dedup=False)
    columns = sorted(c for c in frame.columns if c not in ("write_time", "api_invocation_time"))
    rows = sorted(
        map(
            repr,
            frame[columns]
            .astype(object)
            .where(frame[columns].notna(), None)
            .itertuples(index=False),
        )
    )
    online = {d: store.get_record(group, d) for d in ("D1", "D2", "D3")}
    return rows, online


def run(
    store: LocalStore,
    art: object,
    batches: list[dict[str, object]],
    coalesce: int,
    commits: list[bool],
) -> list[tuple[object, ...]]:
    writer = store.writer(art.name)  # type: ignore[attr-defined]
    writer.coalesce = coalesce
    out = []
    for n, event in enumerate(batches):
        if not coalesce:
            writer = store.writer(art.name)  # type: ignore[attr-defined]
        result = process_aggregation_event(art, event, writer, None, clock=lambda: NOW)  # type: ignore[arg-type]
        out.append(outcome(result))
        if coalesce and commits[n % len(commits)]:
            writer.flush()
    writer.close()
    return out


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    group=st.sampled_from(["readings", "notes"]),
    steps=st.lists(step, min_size=1, max_size=40),
    sizes=st.lists(st.integers(1, 9), min_size=1, max_size=6),
    replays=st.lists(st.booleans(), min_size=1, max_size=4),
    poison=st.lists(st.sampled_from([False, False, False, True]), min_size=1, max_size=5),
    big=st.lists(st.booleans(), min_size=1, max_size=5),
    coalesce=st.sampled_from([1, 5, 100_000]),
    commits=st.lists(st.booleans(), min_size=1, max_size=5),
)
def test_a_coalescing_writer_stores_what_committing_every_batch_stores(
    tmp_path_factory: pytest.TempPathFactory,
    project,  # type: ignore[no-untyped-def]
    group: str,
    steps: list[tuple[str, int, float]],
    sizes: list[int],
    replays: list[bool],
    poison: list[bool],
    big: list[bool],
    coalesce: int,
    commits: list[bool],
) -> None:
    _, spec = project
    art = aggregation_runtime(spec.group(group))
    records = stream_of(group, steps, poison, big)
    batches: list[dict[str, object]] = []
    position, n = 0, 0
    while position < len(records):
        size = sizes[n % len(sizes)]
        batches.append(kinesis(records[position : position + size], position + 1))
        if replays[n % len(replays)]:
            batches.append(batches[len(batches) // 2])  # a Lambda retry of an earlier batch
        position, n = position + size, n + 1
    root = tmp_path_factory.mktemp("run")
    with LocalStore(root / "each", spec) as each, LocalStore(root / "held", spec) as held:
        one_by_one = run(each, art, batches, 0, [True])
        aggwrite._forget()  # the held run decodes what it reads, as a fresh process would
        together = run(held, art, batches, coalesce, commits)
        assert together == one_by_one
        assert stored(held, group) == stored(each, group)


def _events(n: int, start: int = 0) -> list[bytes]:
    return [
        json.dumps(
            {"device_id": f"D{i % 3 + 1}", "read_at": iso(T0 + 60 * (start + i)), "temp": 1.5 * i}
        ).encode()
        for i in range(n)
    ]


def step(art: object, event: dict[str, object], writer: object) -> object:
    return process_aggregation_event(art, event, writer, None, clock=lambda: NOW)  # type: ignore[arg-type]


def test_a_failed_commit_keeps_what_is_held_for_the_next_flush(
    tmp_path: Path,
    project,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The commit is atomic; when it fails, the held steps stay held (nothing of them is
    written) and the next flush writes them all."""
    _, spec = project
    art = aggregation_runtime(spec.group("readings"))
    with LocalStore(tmp_path / "ref", spec) as ref:
        run(ref, art, [kinesis(_events(6), 1), kinesis(_events(6, 6), 7)], 0, [True])
        expected = stored(ref, "readings")
    with LocalStore(tmp_path / "held", spec) as store:
        writer = store.writer("readings")
        writer.coalesce = 100
        for event in (kinesis(_events(6), 1), kinesis(_events(6, 6), 7)):
            process_aggregation_event(art, event, writer, None, clock=lambda: NOW)  # type: ignore[arg-type]
        real = type(store)._commit
        calls = []

        def failing(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(1)
            if len(calls) == 1:
                raise sqlite3.OperationalError("disk I/O error")
            return real(self, *args, **kwargs)

        monkeypatch.setattr(type(store), "_commit", failing)
        with pytest.raises(sqlite3.OperationalError):
            writer.flush()
        assert store.get_record("readings", "D1") is None  # nothing of it was written
        writer.flush()
        writer.close()
        assert stored(store, "readings") == expected


def test_a_step_that_fails_part_way_refuses_every_later_step_until_discarded(
    tmp_path: Path,
    project,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A step that raises after updating held states in place leaves them unusable: they are
    dropped, and the writer refuses to go on (so no checkpoint moves past what it held) until
    the caller discards, after which it starts again from what the store holds."""
    _, spec = project
    art = aggregation_runtime(spec.group("readings"))
    with LocalStore(tmp_path / "held", spec) as store:
        writer = store.writer("readings")
        writer.coalesce = 100
        first = process_aggregation_event(
            art, kinesis(_events(3), 1), writer, None, clock=lambda: NOW
        )  # type: ignore[arg-type]
        assert first.written == 3
        real = aggwrite._apply_mine

        def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise RuntimeError("injected")

        monkeypatch.setattr(aggwrite, "_apply_mine", boom)
        second = process_aggregation_event(
            art, kinesis(_events(3, 3), 4), writer, None, clock=lambda: NOW
        )  # type: ignore[arg-type]
        assert second.written == 0 and len(second.failures) == 3  # reported for retry
        monkeypatch.setattr(aggwrite, "_apply_mine", real)
        with pytest.raises(HeldStepsLost, match="dropped unwritten"):
            writer.flush()
        third = process_aggregation_event(
            art, kinesis(_events(3, 6), 7), writer, None, clock=lambda: NOW
        )  # type: ignore[arg-type]
        assert third.written == 0 and "dropped unwritten" in third.failures[0].message
        assert store.get_record("readings", "D1") is None
        writer.discard()
        again = process_aggregation_event(
            art, kinesis(_events(3), 1), writer, None, clock=lambda: NOW
        )  # type: ignore[arg-type]
        assert again.written == 3
        writer.close()
        assert store.get_record("readings", "D1") is not None


def test_the_store_lock_is_held_until_the_commit(
    tmp_path: Path,
    project,  # type: ignore[no-untyped-def]
) -> None:
    """No other writer changes a held entity's state between the steps and the commit."""
    _, spec = project
    art = aggregation_runtime(spec.group("readings"))
    with LocalStore(tmp_path / "s", spec) as store, LocalStore(tmp_path / "s", spec) as other:
        writer = store.writer("readings")
        writer.coalesce = 100
        step(art, kinesis(_events(3), 1), writer)
        with pytest.raises(_Busy):
            other._acquire("a probe", wait=False)
        writer.flush()
        other._acquire("a probe", wait=False)
        other._release()
        writer.close()


@pytest.mark.parametrize(
    ("notes", "cut", "rejected"),
    [
        ([BIG, BIG, "short", BIG], [1, 1, 1, 1], ["2", "4"]),
        ([BIG, BIG, "short", BIG], [1, 3], ["2", "4"]),
        ([BIG, BIG, "short", BIG], [2, 2], ["2", "4"]),
        ([BIG, BIG, "short", BIG], [4], ["2", "4"]),
        ([BIG, BIG, BIG, "short"], [1, 2, 1], ["2", "3"]),
    ],
    ids=["one-per-batch", "then-three", "two-and-two", "all-in-one", "a-batch-all-rejected"],
)
def test_the_event_that_overflows_a_held_state_is_the_one_rejected(
    tmp_path: Path,
    project,  # type: ignore[no-untyped-def]
    notes: list[str],
    cut: list[int],
    rejected: list[str],
) -> None:
    """A held entity whose next event would push its state past a record is encoded before
    that step, so the step can start over from it: that event alone is rejected, as when every
    batch is committed, and the entity's later events are applied to the state without it."""
    _, spec = project
    art = aggregation_runtime(spec.group("notes"))
    records = [
        json.dumps({"device_id": "D1", "noted_at": iso(T0 + 60 * i), "note": note}).encode()
        for i, note in enumerate(notes)
    ]
    batches, position = [], 0
    for size in cut:
        batches.append(kinesis(records[position : position + size], position + 1))
        position += size
    with LocalStore(tmp_path / "each", spec) as each, LocalStore(tmp_path / "held", spec) as held:
        one_by_one = run(each, art, batches, 0, [True])
        aggwrite._forget()
        assert run(held, art, batches, 100, [False]) == one_by_one
        assert [f[:2] for r in one_by_one for f in r[1]] == [(n, "<state>") for n in rejected]
        assert stored(held, "notes") == stored(each, "notes")
