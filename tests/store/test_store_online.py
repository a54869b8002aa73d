"""Online store semantics (DESIGN 3, SageMaker PutRecord/DeleteRecord), each rule on its own
and all together against a brute-force oracle over random operation sequences."""

from __future__ import annotations

import dataclasses
import json
import random
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storehelpers import FakeClock, user_row

from fsgen.errors import StoreError
from fsgen.runtime.encoding import format_event_time, parse_event_time
from fsgen.runtime.pipeline import GroupRuntime
from fsgen.spec import ProjectSpec
from fsgen.store import LocalStore
from fsgen.store.online import Upsert

DAY = 86400.0
T0 = parse_event_time("String", "2024-03-01T00:00:00Z")


def iso(offset: float) -> str:
    return str(format_event_time("String", T0 + offset))


def put(store: LocalStore, uid: str, offset: float, amount: float = 10.0) -> None:
    block = store.put_raw("user-events", [user_row(uid, iso(offset), amount=amount)])
    assert not block.errors


def amount_of(store: LocalStore, uid: str, now: float) -> object:
    record = store.get_record("user-events", uid, now=now)
    return None if record is None else record["positive_amount"]


def test_out_of_order_event_goes_offline_only(store: LocalStore) -> None:
    put(store, "u1", 100, amount=2.0)
    put(store, "u1", 50, amount=1.0)  # older: online keeps the newer
    assert amount_of(store, "u1", T0) == 2.0
    offline = store.read_offline("user-events")
    assert sorted(offline["positive_amount"]) == [1.0, 2.0]


def test_equal_event_time_later_write_wins(store: LocalStore) -> None:
    put(store, "u1", 100, amount=1.0)
    put(store, "u1", 100, amount=2.0)
    assert amount_of(store, "u1", T0) == 2.0
    # within one batch too: rows apply in order
    store.put_raw(
        "user-events", [user_row("u2", iso(5), amount=3.0), user_row("u2", iso(5), amount=4.0)]
    )
    assert amount_of(store, "u2", T0) == 4.0
    visible = store.read_offline("user-events")
    assert list(visible[visible.user_id == "u2"]["positive_amount"]) == [4.0]
    assert len(store.read_offline("user-events", dedup=False)) == 4


def test_ttl_expiry_exactly_at_the_boundary(store: LocalStore) -> None:
    put(store, "u1", 0)
    expires = T0 + DAY  # ttl 1d
    assert store.get_record("user-events", "u1", now=expires - 0.001) is not None
    assert store.get_record("user-events", "u1", now=expires) is not None
    assert store.get_record("user-events", "u1", now=expires + 0.001) is None
    assert store.batch_get("user-events", ["u1"], now=expires + 1) == [None]
    store.fake_clock.now = expires + 1  # type: ignore[attr-defined]
    assert store.get_record("user-events", "u1") is None


def test_soft_delete_marks_deleted_and_writes_a_tombstone(store: LocalStore) -> None:
    put(store, "u1", 0)
    result = store.delete_record("user-events", "u1", iso(10))
    assert result.online_applied and result.tombstone
    assert store.get_record("user-events", "u1", now=T0) is None
    put(store, "u1", 5)  # older than the delete: ignored online
    assert store.get_record("user-events", "u1", now=T0) is None
    put(store, "u1", 20, amount=7.0)  # newer: revives the record
    assert amount_of(store, "u1", T0) == 7.0
    rows = store.read_offline("user-events")
    tomb = rows[rows.is_deleted]
    assert list(tomb["ts"]) == [iso(10)] and list(tomb["user_id"]) == ["u1"]
    assert tomb[["score", "double_count", "label", "positive_amount"]].isna().all().all()


def test_hard_delete_removes_the_row(store: LocalStore) -> None:
    put(store, "u1", 0)
    store.delete_record("user-events", "u1", iso(10), hard=True)
    assert store.online.snapshot(store.runtime("user-events")) == {}
    put(store, "u1", 5, amount=3.0)  # no stored row any more: any event time is accepted
    assert amount_of(store, "u1", T0) == 3.0
    assert int(store.read_offline("user-events")["is_deleted"].sum()) == 1


def test_older_deletes_follow_sagemaker(store: LocalStore) -> None:
    put(store, "u1", 100, amount=5.0)
    soft = store.delete_record("user-events", "u1", iso(50))
    assert not soft.online_applied and amount_of(store, "u1", T0) == 5.0
    with pytest.raises(StoreError, match="older than the stored record"):
        store.delete_record("user-events", "u1", iso(50), hard=True)
    tombstones = store.read_offline("user-events")["is_deleted"].sum()
    assert tombstones == 1  # the soft delete's; the refused hard delete wrote none


def test_composite_key_and_fractional_event_time(store: LocalStore) -> None:
    block = store.put_raw(
        "item-stock", [{"store_id": "7", "sku": "a:b;", "at": 1000.5, "units": 3}]
    )
    assert not block.errors
    rid = block.columns["store_item_key"][0]
    record = store.get_record("item-stock", str(rid), now=1000.5)
    assert record == {
        "store_item_key": rid,
        "store_id": 7,
        "sku": "a:b;",
        "at": 1000.5,
        "units_on_hand": 3,
    }
    store.delete_record("item-stock", str(rid), "2000")
    rows = store.read_offline("item-stock")
    tomb = rows[rows.is_deleted].iloc[0]
    assert (tomb["store_id"], tomb["sku"], tomb["at"]) == (7, "a:b;", 2000.0)


def test_feature_names_and_batch_order(store: LocalStore) -> None:
    put(store, "a", 0, amount=1.0)
    put(store, "b", 0, amount=2.0)
    got = store.batch_get("user-events", ["b", "zz", "a", "b"], ["positive_amount"], now=T0)
    assert got == [
        {"positive_amount": 2.0},
        None,
        {"positive_amount": 1.0},
        {"positive_amount": 2.0},
    ]
    assert store.get_record("user-events", "a", ["tag_list"], now=T0) == {"tag_list": ["a", "b"]}


@pytest.mark.parametrize("variables", [None, 999])
def test_batch_get_of_thousands_agrees_with_get(store: LocalStore, variables: int | None) -> None:
    """A batch read of more identifiers than one SELECT binds (4,096; 998 where SQLite binds
    at most 999 parameters), padded to the statement's size, in any order, with duplicates,
    unknown, deleted and expired identifiers, answers what ``get_record`` answers for each."""
    if variables is not None:
        store.online.connection().setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, variables)
    rows = [
        user_row(f"u{i}", iso(-DAY if i % 7 == 0 else i), amount=float(i), tags=f"t{i}|x")
        for i in range(4_500)
    ]
    assert not store.put_raw("user-events", rows).errors
    for i in range(0, 4_500, 11):
        store.delete_record("user-events", f"u{i}", iso(5_000))
    ids = [f"u{i}" for i in random.Random(3).sample(range(4_600), 4_600)]
    ids += ["u5", "u5", "nobody", "u0"]
    now = T0 + 10  # the rows 1 day older than T0 (every 7th) have expired
    for names in (None, ["tag_list", "nope", "positive_amount", "tag_list"], []):
        got = store.batch_get("user-events", ids, names, now=now)
        assert got == [store.get_record("user-events", i, names, now=now) for i in ids]
    live = store.batch_get("user-events", ids[:4_600], ["user_id"], now=now)
    assert sum(r is not None for r in live) == 4_500 - len(range(0, 4_500, 7)) - sum(
        1 for i in range(0, 4_500, 11) if i % 7
    )


def _stored_literals(store: LocalStore, rt: GroupRuntime) -> list[tuple[object, ...]]:
    """Every stored row as SQL literals (``quote``): 0 and 0.0, -0.0 and 0.0 differ."""
    con = store.online.connection()
    name = store.online.table(rt).name
    cols = [r[1] for r in con.execute(f'PRAGMA table_info("{name}")')]
    listed = ", ".join(f'quote("{c}")' for c in cols)
    return con.execute(f'SELECT {listed} FROM "{name}" ORDER BY _record_id').fetchall()


_value = st.one_of(st.none(), st.floats(allow_nan=False), st.just(-0.0))
_put = st.tuples(
    st.sampled_from("abc"),
    st.integers(0, 5),
    _value,
    st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    st.one_of(st.none(), st.text(max_size=3)),
    st.one_of(st.none(), st.lists(st.text(max_size=2), max_size=2)),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=st.lists(st.lists(_put, max_size=6), max_size=4), ttl=st.booleans())
def test_upsert_binding_only_what_varies_stores_what_the_full_statement_does(
    tmp_path_factory: pytest.TempPathFactory,
    spec: ProjectSpec,
    batches: list[list[tuple[str, int, float | None, int | None, str | None, list[str] | None]]],
    ttl: bool,
) -> None:
    """``rows_for`` makes NULL columns, ``_deleted``, a missing TTL's ``_expires_at`` and the
    String identifier column constants of its statement: the stored rows are, type and bit
    for bit, what binding every value of every row to the group's full upsert stores."""
    root = Path(tmp_path_factory.mktemp("binding"))
    lean, full = LocalStore(root / "lean", spec), LocalStore(root / "full", spec)
    rt = lean.runtime("user-events")
    if not ttl:
        rt = dataclasses.replace(rt, ttl_seconds=None)
    for batch in batches:
        ids = [uid for uid, *_ in batch]
        secs = [T0 + hours * 3600.0 for _, hours, *_ in batch]
        columns: dict[str, list[object]] = {
            "user_id": list(ids),
            "ts": [iso(s - T0) for s in secs],
            "score": [b[2] for b in batch],
            "double_count": [b[3] for b in batch],
            "label": [b[4] for b in batch],
            "tag_list": [b[5] for b in batch],
            "positive_amount": [None] * len(batch),
        }
        lean.online.upsert(lean.online.connection(), rt, lean.online.rows_for(rt, columns, secs))
        every = [
            (
                ids[i],
                secs[i],
                None if rt.ttl_seconds is None else secs[i] + rt.ttl_seconds,
                0,
                *(
                    json.dumps(v) if name == "tag_list" and v is not None else v
                    for name, v in ((n, columns[n][i]) for n, *_ in rt.columns)
                ),
            )
            for i in range(len(batch))
        ]
        full.online.upsert(full.online.connection(), rt, every)
    assert _stored_literals(lean, rt) == _stored_literals(full, rt)
    lean.close()
    full.close()


def test_upsert_binds_only_what_varies(store: LocalStore) -> None:
    """A state-like batch (most columns NULL in every row) binds the record id, event time,
    expiry and its three non-NULL columns per row, not all eleven values."""
    rt = store.runtime("user-events")
    columns: dict[str, list[object]] = {n: [None, None] for n, *_ in rt.columns}
    columns.update(user_id=["a", "b"], ts=[iso(0), iso(1)], tag_list=[["x"], None])
    columns.update(positive_amount=[1.5, -0.0])
    upsert = store.online.rows_for(rt, columns, [T0, T0 + 1])
    rows = list(upsert.rows)
    assert rows[0] == ("a", T0, T0 + DAY, iso(0), '["x"]', 1.5)
    assert upsert.sql.count("NULL") == 3 and upsert.sql.count("?1") == 2
    store.online.upsert(store.online.connection(), rt, Upsert(upsert.sql, rows))
    assert store.batch_get("user-events", ["a", "b"], now=T0) == [
        {**dict.fromkeys(c for c, *_ in rt.columns), **r}
        for r in (
            {"user_id": "a", "ts": iso(0), "tag_list": ["x"], "positive_amount": 1.5},
            {"user_id": "b", "ts": iso(1), "positive_amount": -0.0},
        )
    ]


# ------------------------------------------------------------------------------ oracle

_op = st.one_of(
    st.tuples(st.just("put"), st.sampled_from("abc"), st.integers(0, 6), st.integers(0, 99)),
    st.tuples(st.just("soft"), st.sampled_from("abc"), st.integers(0, 6), st.just(0)),
    st.tuples(st.just("hard"), st.sampled_from("abc"), st.integers(0, 6), st.just(0)),
)


def _oracle(ops: list[tuple[str, str, int, int]], uid: str, now: float) -> object:
    """Latest by event time, ties by write order, minus expired and deleted -- computed by
    brute force over the accepted operations."""
    state: tuple[float, object, bool] | None = None  # (event time, amount, deleted)
    for kind, who, hours, amount in ops:
        if who != uid:
            continue
        t = T0 + hours * 3600 * 6
        if kind == "put":
            if state is None or t >= state[0]:
                state = (t, float(amount), False)
        elif state is None or t >= state[0]:
            state = None if kind == "hard" else (t, None, True)
    if state is None or state[2] or now > state[0] + DAY:
        return None
    return state[1]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(_op, max_size=14), now_hours=st.integers(0, 70))
def test_online_state_matches_the_oracle(
    tmp_path_factory: pytest.TempPathFactory,
    spec: ProjectSpec,
    ops: list[tuple[str, str, int, int]],
    now_hours: int,
) -> None:
    store = LocalStore(Path(tmp_path_factory.mktemp("oracle")), spec, clock=FakeClock(T0))
    accepted: list[tuple[str, str, int, int]] = []
    for op in ops:
        kind, uid, hours, amount = op
        when = iso(hours * 3600 * 6)
        if kind == "put":
            store.put_raw("user-events", [user_row(uid, when, amount=float(amount))])
        else:
            try:
                store.delete_record("user-events", uid, when, hard=kind == "hard")
            except StoreError:
                continue  # refused HardDelete: the oracle must not see it either
        accepted.append(op)
    now = T0 + now_hours * 3600
    for uid in "abc":
        assert amount_of(store, uid, now) == _oracle(accepted, uid, now)
    store.close()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batch=st.lists(
        st.tuples(st.sampled_from("abcd"), st.integers(0, 3), st.integers(0, 9)),
        min_size=1,
        max_size=30,
    )
)
def test_one_batch_equals_one_put_per_record(
    tmp_path_factory: pytest.TempPathFactory, spec: ProjectSpec, batch: list[tuple[str, int, int]]
) -> None:
    """A batch is reduced to one upsert per identifier before it reaches SQLite; the online
    state must be what applying every record in order gives."""
    root = Path(tmp_path_factory.mktemp("batch"))
    together, one_by_one = LocalStore(root / "a", spec), LocalStore(root / "b", spec)
    rows = [user_row(uid, iso(hours * 3600), amount=float(amount)) for uid, hours, amount in batch]
    together.put_raw("user-events", rows)
    for row in rows:
        one_by_one.put_raw("user-events", [row])
    rt = together.runtime("user-events")
    assert together.online.snapshot(rt) == one_by_one.online.snapshot(rt)
    together.close()
    one_by_one.close()
