"""The equality proof: for generated offline histories and label rows, the local DuckDB engine,
the generated Athena SQL (transpiled to DuckDB by sqlglot) and a brute-force oracle written
here, from the semantics' text alone, return the same value for every row and column.

Histories have event-time ties broken by api_invocation_time, then write_time, then a delete,
then the later file; writes out of event-time order; deletes; records exactly TTL old and
one millisecond older; composite keys whose concatenations collide ((1, '23') vs (12, '3'),
with an identifier column that collides too); unknown entities; duplicate label rows; label
times as ISO-8601 text, epoch seconds or datetimes; knowledge-time mode.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pithelpers import (
    VARIANTS,
    Row,
    athena_on,
    deploy_with_ttl_history,
    iso,
    pit_form,
    runner_on,
    write_offline,
)

from fsgen.pit import PitError, build_dataset, finish, plan_for
from fsgen.pit.labels import read_labels
from fsgen.store import LocalStore

BASE_US = int(datetime(2024, 3, 10, tzinfo=UTC).timestamp()) * 1_000_000
UNIT_US = 600 * 1_000_000  # ten minutes
MS = 1000

ACCOUNTS = ["a", "b", "ab", "A"]
PAIRS = [(1, "23"), (12, "3"), (1, "2"), (12, "23")]
DUALS = [("x", "yz"), ("xy", "z"), ("x", "y")]
UNKNOWN = {"accounts": ("zz",), "pairs": (99, "9"), "duals": ("q", "q")}
ENTITIES = {"accounts": [(a,) for a in ACCOUNTS], "pairs": PAIRS, "duals": DUALS}
TTL_US = {"accounts": 3600 * 1_000_000, "pairs": None, "duals": 7200 * 1_000_000}
FEATURES = {"accounts": ["level", "label", "hist"], "pairs": ["x"], "duals": ["y"]}
LABEL_KEYS = {"accounts": ["acct_id"], "pairs": ["p", "q"], "duals": ["lu", "lv"]}


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


records = st.builds(
    Rec,
    entity=st.integers(0, 3),
    event_us=st.builds(instant, st.integers(0, 12), st.sampled_from([0, MS])),
    api_us=st.builds(instant, st.integers(0, 14), st.sampled_from([0, 1])),
    write_us=st.builds(instant, st.integers(0, 14), st.sampled_from([0, 1])),
    deleted=st.booleans(),
    batch=st.integers(0, 2),
    value=st.one_of(st.none(), st.integers(-5, 5)),
)

label_rows = st.tuples(
    st.integers(0, 4),  # account (4 = unknown)
    st.integers(0, 4),  # pair
    st.integers(0, 3),  # dual
    st.integers(0, 15),  # label time unit
    st.sampled_from([-MS, -1, 0, 1, MS]),  # label time jitter: a ms or a µs either side
    st.sampled_from([1.5, -2.0, 3.25]),  # amount (request field)
    # anchor: (group, record index, offset) puts T exactly at a record's event time, at its
    # TTL boundary or one tick either side of those, on that record's entity
    st.one_of(
        st.none(),
        st.tuples(
            st.sampled_from(["accounts", "pairs", "duals"]),
            st.integers(0, 20),
            st.sampled_from(["at", "ttl"]),
            st.sampled_from([-MS, -1, 0, 1, MS]),
        ),
    ),
)

Label = tuple[int, int, int, int, float]  # account, pair, dual, T (µs), amount

# TTL changes a deployed group went through: (instant, TTL before, TTL after), any order; the
# declared TTL (TTL_US) is the one of records written after the last change
TTLS = [1800 * 1_000_000, 3600 * 1_000_000, 7200 * 1_000_000, None]
ttl_changes = st.lists(
    st.tuples(
        st.builds(instant, st.integers(0, 14), st.sampled_from([0, 1])),
        st.sampled_from(TTLS),
        st.sampled_from(TTLS),
    ),
    max_size=3,
    unique_by=lambda c: c[0],
)
Changes = dict[str, list[tuple[int, int | None, int | None]]]


def ttl_at_write(group: str, rec: Rec, changes: Changes) -> int | None:
    """The TTL in force when ``rec`` was written (its api_invocation_time): the TTL before
    the first change after that instant, else the declared one. A change at exactly the
    write instant already applies to it."""
    later = [c for c in changes.get(group, []) if rec.api_us < c[0]]
    if later:
        return min(later)[1]
    return TTL_US[group]


def resolve(
    raw: tuple[object, ...], histories: dict[str, list[Rec]], changes: Changes | None = None
) -> Label:
    acct, pair, dual, unit, jitter, amount, anchor = raw
    entity = {"accounts": acct, "pairs": pair, "duals": dual}
    t = instant(unit, jitter)  # type: ignore[arg-type]
    if anchor is not None:
        group, index, where, tick = anchor  # type: ignore[misc]
        recs = histories[group]
        if recs:
            n = len(ENTITIES[group])
            entity[group] = recs[index % len(recs)].entity % n
            # the entity's latest record, so that it is the one chosen at T
            rec = max((r for r in recs if r.entity % n == entity[group]), key=lambda r: r.event_us)
            ttl = ttl_at_write(group, rec, changes or {})
            t = rec.event_us + tick + ((ttl or 0) if where == "ttl" else 0)
    return entity["accounts"], entity["pairs"], entity["duals"], t, amount  # type: ignore[return-value]


def values_of(group: str, rec: Rec) -> dict[str, object]:
    if rec.deleted or rec.value is None:
        return {}
    v = rec.value
    return {
        "accounts": {"level": v, "label": f"L{v}", "hist": [v, v + 1][: abs(v) % 3]},
        "pairs": {"x": v / 4 if v else (-0.0 if rec.api_us % 2 else 0.0)},  # signed zeros
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


def distinct_in_batch(group: str, recs: list[Rec]) -> list[Rec]:
    """Within one file, rows never tie on every timestamp and the delete flag (Athena cannot
    see the row order inside a file; that last tie-break is tested on the local engine)."""
    seen: set[tuple[object, ...]] = set()
    out = []
    for r in recs:
        key = (
            r.batch,
            r.entity % len(ENTITIES[group]),
            r.event_us,
            r.api_us,
            r.write_us,
            r.deleted,
        )
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def oracle(
    histories: dict[str, list[Rec]],
    labels: list[Label],
    knowledge_time: bool,
    changes: Changes | None = None,
) -> list[dict[str, object]]:
    """Brute force, straight from DESIGN semantics 5; the TTL of each record is the one in
    force at its write (``changes``), as serving stamps its ExpiresAt."""
    out = []
    for acct, pair, dual, t, amount in labels:
        wanted = {"accounts": acct, "pairs": pair, "duals": dual}
        row: dict[str, object] = {}
        for group, recs in histories.items():
            n = len(ENTITIES[group])
            chosen = None
            if wanted[group] < n:
                candidates = [
                    r
                    for r in recs
                    if r.entity % n == wanted[group]
                    and r.event_us <= t
                    and (not knowledge_time or r.write_us <= t)
                ]
                if candidates:
                    chosen = max(
                        candidates,
                        key=lambda r: (r.event_us, r.api_us, r.write_us, r.deleted, r.batch),
                    )
            ttl = ttl_at_write(group, chosen, changes or {}) if chosen else None
            alive = (
                chosen is not None
                and not chosen.deleted
                and (ttl is None or t - chosen.event_us <= ttl)
            )
            vals = values_of(group, chosen) if alive and chosen else {}
            for feature in FEATURES[group]:
                row[feature] = vals.get(feature)
        row["combo"] = None if row["x"] is None else amount * row["x"] + 0.5
        out.append(row)
    return out


def label_iso(us: int, row: int) -> str:
    """A label time as ISO-8601 text with all its microseconds; odd rows in lowercase."""
    seconds, micros = divmod(us, 1_000_000)
    text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    text = f"{text}.{micros:06d}Z" if micros % 1000 else iso(us)
    return text.lower() if row % 2 else text


def label_frame(labels: list[Label], time_format: str) -> pd.DataFrame:
    rows = []
    for acct, pair, dual, us, amount in labels:
        a = ACCOUNTS[acct] if acct < 4 else UNKNOWN["accounts"][0]
        p, q = PAIRS[pair] if pair < 4 else UNKNOWN["pairs"]
        lu, lv = DUALS[dual] if dual < 3 else UNKNOWN["duals"]
        ts: object = label_iso(us, len(rows)) if time_format == "iso8601" else us / 1_000_000
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


COLUMNS = ["level", "label", "hist", "x", "y", "combo"]


def cell(v: object) -> object:
    """A value as compared: lists as lists, missing as None, a double with its sign bit."""
    if isinstance(v, list):
        return [cell(x) for x in v]
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return None
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float):
        return (v, math.copysign(1.0, v))  # -0.0 and 0.0 differ
    return v


def cells(frame: pd.DataFrame) -> list[list[object]]:
    return [[cell(v) for v in values] for values in frame[COLUMNS].itertuples(index=False)]


def refused_without_a_label_time(
    spec: object, store: Path, frame: pd.DataFrame, row: int, time_format: str, postgres: object
) -> None:
    """A label row without a time: every engine refuses the query, naming that row."""
    frame = frame.copy()
    frame["ts_label"] = frame["ts_label"].astype(object)
    frame.loc[row, "ts_label"] = None
    if time_format == "timestamp":  # a labels table's column keeps its type when all are null
        frame["ts_label"] = pd.to_datetime(frame["ts_label"], utc=True)
    with pytest.raises(PitError, match=rf"label row {row + 1}: label time 'ts_label' is empty"):
        build_dataset(None, spec, "pit-set", frame, store=store)  # type: ignore[arg-type]
    for engine, handle in (("duckdb", None), ("postgres", postgres)):
        with pytest.raises(
            Exception, match=rf"no label time ts_label in label row fsgen_row = {row}"
        ):
            athena_on(engine, handle, spec, "pit-set", store, frame, time_format)


@settings(max_examples=35, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    accounts=st.lists(records, max_size=14),
    pairs=st.lists(records, max_size=10),
    duals=st.lists(records, max_size=8),
    labels=st.lists(label_rows, min_size=1, max_size=10),
    duplicates=st.lists(st.integers(0, 9), max_size=3),
    time_format=st.sampled_from(["iso8601", "epoch_seconds", "timestamp"]),
    knowledge_time=st.booleans(),
    null_row=st.one_of(st.none(), st.integers(0, 12)),
    changes=st.one_of(
        st.just({}),
        st.fixed_dictionaries(
            {"accounts": ttl_changes, "pairs": ttl_changes, "duals": ttl_changes}
        ),
    ),
)
def test_local_athena_and_oracle_agree(
    pit_project,
    postgres,
    accounts,
    pairs,
    duals,
    labels,
    duplicates,
    time_format,
    knowledge_time,
    null_row,
    changes,
) -> None:
    """Local engine, the generated artifact and the runner's query (each on DuckDB and on
    PostgreSQL, the runner's through its GetQueryResults conversion) and the oracle agree;
    then again after compaction merged the files (complete ties across files included).
    ``changes``: the groups' TTL changes, deployed in the store's registry as ``fsgen apply``
    records them; each record is judged by the TTL in force at its write."""
    config, spec = pit_project
    histories = {
        "accounts": distinct_in_batch("accounts", accounts),
        "pairs": distinct_in_batch("pairs", pairs),
        "duals": distinct_in_batch("duals", duals),
    }
    resolved = [resolve(raw, histories, changes) for raw in labels]
    labels = resolved + [resolved[i % len(resolved)] for i in duplicates]
    store = Path(tempfile.mkdtemp(prefix="pit-"))
    try:
        ttl_history = deploy_with_ttl_history(config, spec, store, changes)
        for group, recs in histories.items():
            for batch in range(3):
                rows = [stored_row(group, r) for r in recs if r.batch == batch]
                if rows:
                    write_offline(store, spec.group(group), rows, f"b{batch}")
        frame = label_frame(labels, time_format)
        plan = plan_for(spec, "pit-set")
        expected = [
            [cell(r[c]) for c in COLUMNS]
            for r in oracle(histories, labels, knowledge_time, changes)
        ]
        for form, cache in VARIANTS:  # the planner's choice, each form, cached or not
            with pit_form(form, cache):
                local = build_dataset(config, spec, "pit-set", frame, knowledge_time, store=store)
            assert list(local.columns) == [*frame.columns, *COLUMNS]
            pd.testing.assert_frame_equal(local[list(frame.columns)], frame)
            assert cells(local) == expected, (form, cache)
        rows = read_labels(frame, plan)
        for engine, handle in (("duckdb", None), ("postgres", postgres)):
            for stored in (
                athena_on(
                    engine,
                    handle,
                    spec,
                    "pit-set",
                    store,
                    frame,
                    time_format,
                    knowledge_time,
                    ttl_history,
                ),
                runner_on(
                    engine, handle, spec, "pit-set", store, frame, knowledge_time, ttl_history
                ),
            ):
                assert cells(finish(plan, rows, stored)) == expected, engine
        if null_row is not None and null_row < len(frame):
            refused_without_a_label_time(spec, store, frame, null_row, time_format, postgres)
        with LocalStore.open(config.model_copy(update={"store_dir": str(store)}), spec) as s:
            for group in histories:
                s.compact(group)
        for form, cache in VARIANTS:
            with pit_form(form, cache):
                compacted = build_dataset(
                    config, spec, "pit-set", frame, knowledge_time, store=store
                )
            assert cells(compacted) == expected, (form, cache)
    finally:
        shutil.rmtree(store, ignore_errors=True)
