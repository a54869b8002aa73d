"""A throw-away project with an aggregation group beside a row-feature group, and helpers that
write the README's storage layout straight into the local store: event rows offline (keys,
event time, event_sequence, event_hash, ``<name>__value``) and one state record per entity
online (``<name>__state`` Strings, EventTime = write time)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from fsgen.bind import group_runtime
from fsgen.config import ProjectConfig
from fsgen.loader import load_with_config
from fsgen.runtime.aggregate import AggregationState, coerce_value, encode_states, event_hash
from fsgen.spec import GroupSpec, ProjectSpec
from fsgen.store.local import LocalStore

DEFS = """
from fsgen import Entity, FeatureGroup, FeatureSet, Fractional, Integral, List, String

customer = Entity("customer_id", String, description="A shopper")
purchases = FeatureGroup(
    "purchases", entity=customer, event_time="purchased_at", owner="growth",
    description="Purchase events",
)
profile = FeatureGroup(
    "profile", entity=customer, event_time="updated_at", owner="growth",
    description="Profile",
)


@profile.feature(Integral, description="Tenure")
def tenure(months: int) -> int:
    return months


@purchases.aggregation(
    Fractional, function="mean", windows=["1d", "7d"], hop="1h",
    description="Average purchase value",
)
def avg_purchase_value(amount: float) -> float:
    return amount


@purchases.aggregation(Integral, function="count", windows=["1h", "lifetime"], hop="1h",
                       description="Purchases")
def purchase_count(amount: float) -> int | None:
    return 1 if amount > 0 else None


@purchases.aggregation(Fractional, function="max", windows=["1d"], hop="1h",
                       description="Largest purchase")
def max_purchase(amount: float) -> float:
    return amount


@purchases.aggregation(List(String), function="last_n", n=2, windows=["7d"], hop="1d",
                       lateness="0s", description="Last categories")
def last_categories(category: str) -> str:
    return category


shop = FeatureSet(
    "shop", [tenure, avg_purchase_value, "purchase_count_1h", "purchases:purchase_count_lifetime",
             last_categories, max_purchase],
    label_time="label_time", owner="growth",
)
only_aggregations = FeatureSet("only-aggregations", [purchases], label_time="label_time")
"""

HOUR = 3600
DAY = 24 * HOUR
T0 = 1_710_028_800  # 2024-03-10T00:00:00Z


def iso(seconds: float) -> str:
    return (
        datetime.fromtimestamp(seconds, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def make(make_project: Callable[..., Path]) -> tuple[ProjectConfig, ProjectSpec]:
    root = make_project({"featuredefs/shop.py": DEFS})
    return load_with_config(root)


def _runtime_with(group: GroupSpec, state: bool):  # type: ignore[no-untyped-def]
    """The group's runtime storing either its event rows' columns (keys, time, ordering,
    values) or its state records' (keys, time, states), whatever the bound one holds."""
    rt = group_runtime(group)
    columns = [
        *group.stored_columns(),
        *((n, t) for n, t in group.aggregation_columns() if n.endswith("__state") == state),
    ]
    return dataclasses.replace(
        rt,
        features=(),
        columns=tuple((n, t.scalar.value, t.collection, t.dimension) for n, t in columns),
        ttl_seconds=None,
    )


def event_runtime(group: GroupSpec):  # type: ignore[no-untyped-def]
    return _runtime_with(group, state=False)


def state_runtime(group: GroupSpec):  # type: ignore[no-untyped-def]
    return _runtime_with(group, state=True)


def event_rows(
    group: GroupSpec, events: Sequence[tuple[str, float, int, dict[str, object]]]
) -> list[dict[str, object]]:
    """(customer, event seconds, sequence, raw fields) -> event rows, each value mapped by its
    aggregation's function."""
    rows = []
    for customer, seconds, seq, raw in events:
        values = {}
        for agg in group.aggregations:
            fn = _function(agg.transform.module, agg.transform.name)
            args = {i.name: raw[i.name] for i in agg.inputs}
            values[agg.value_column] = coerce_value(agg.value_dtype.scalar.value, fn(**args))
        micros = round(seconds * 1_000_000)
        rows.append(
            {
                "customer_id": customer,
                group.event_time.name: iso(seconds),
                "event_sequence": seq,
                "event_hash": event_hash(customer, micros, values),
                **values,
            }
        )
    return rows


def _function(module: str, name: str) -> Callable[..., object]:
    import importlib

    fn: Callable[..., object] = getattr(importlib.import_module(module), name)
    return fn


def write_events(store: LocalStore, group: GroupSpec, rows: list[dict[str, object]]) -> None:
    store.adopt(event_runtime(group), online=False, offline=True)
    store.put_records(group.name, rows)


def write_states(
    store: LocalStore, group: GroupSpec, rows: list[dict[str, object]], write_seconds: float
) -> dict[str, dict[str, str]]:
    """The online state of each entity, rebuilt from ``rows`` (the backfill), stored with
    EventTime = ``write_seconds``. Returns entity -> state columns."""
    by_entity: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        by_entity.setdefault(str(row["customer_id"]), []).append(row)
    out: dict[str, dict[str, str]] = {}
    records = []
    for customer, mine in sorted(by_entity.items()):
        states = []
        for agg in group.aggregations:
            events = [
                (
                    _micros(str(r[group.event_time.name])),
                    int(r["event_sequence"]),  # type: ignore[call-overload]
                    str(r["event_hash"]),
                    r[agg.value_column],
                )
                for r in mine
            ]
            states.append(AggregationState.rebuild(agg.runtime(), events))  # type: ignore[arg-type]
        encoded = encode_states(states)
        out[customer] = encoded
        records.append(
            {"customer_id": customer, group.event_time.name: iso(write_seconds), **encoded}
        )
    store.adopt(state_runtime(group), online=True, offline=False)
    store.put_records(group.name, records)
    return out


def _micros(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond
