"""What a point-in-time join of a feature set reads: one :class:`GroupJoin` per group, the
stored values each needs, and the effective TTL. Both engines (DuckDB locally, Athena) are
rendered from this one plan, so they cannot disagree about *what* to join, only be tested on
*how*.

Instants: every event time and label time is compared as integer epoch **microseconds**.
String event times (ISO-8601, at most millisecond precision) convert exactly; Fractional
event times (epoch seconds, a double) are rounded to the nearest microsecond, which is all
the precision a double holds for present-day epochs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa

from fsgen.errors import FsgenError
from fsgen.spec import FeatureSetSpec, GroupSpec, KeySpec, OnDemandSpec, ProjectSpec
from fsgen.ttl_history import TtlChange, segments
from fsgen.types import DType, Scalar

MICROS = 1_000_000
#: Prefix of every column fsgen adds to a query; labels may not use it.
INTERNAL = "__fsgen_"


class PitError(FsgenError):
    """A point-in-time dataset cannot be built (bad labels, missing value under 'error')."""


@dataclass(frozen=True)
class StoredInput:
    """One stored value per label row: a feature-set column, or (``hidden``) an input that
    only an on-demand feature reads."""

    group: str
    feature: str
    column: str
    dtype: DType
    hidden: bool


@dataclass(frozen=True)
class GroupJoin:
    """How the label rows meet one group: label key columns paired with the entity's keys."""

    index: int
    group: GroupSpec
    label_keys: tuple[str, ...]
    keys: tuple[KeySpec, ...]
    ttl_seconds: int | None
    inputs: tuple[StoredInput, ...]
    ttl_history: tuple[TtlChange, ...] = ()
    """The deployed group's TTL changes (fsgen.ttl_history); empty when the feature set has
    a TTL of its own, which applies to every record alike."""

    @property
    def ttl_micros(self) -> int | None:
        """The TTL of records written after the last TTL change (the current definition's)."""
        return None if self.ttl_seconds is None else self.ttl_seconds * MICROS

    @property
    def ttl_segments(self) -> tuple[tuple[int | None, int | None], ...]:
        """``((until api µs, ttl µs), ...)``: the TTL in force for records written before
        each bound (see fsgen.ttl_history.segments); one segment without a TTL change."""
        return tuple(
            (until, None if ttl is None else ttl * MICROS)
            for until, ttl in segments(self.ttl_history, self.ttl_seconds)
        )

    @property
    def max_ttl_micros(self) -> int | None:
        """The longest TTL any record can have (None: some record never expires)."""
        ttls = [ttl for _, ttl in self.ttl_segments]
        return None if any(t is None for t in ttls) else max(t for t in ttls if t is not None)

    def ttl_sql(self, api: str) -> str | None:
        """SQL (DuckDB, Trino, Spark alike) for the TTL in µs of a record written at ``api``
        (its api_invocation_time in µs): the TTL in force at that write. None: no record of
        the group expires. A constant when the TTL never changed; otherwise a CASE that may
        be NULL (no TTL at that write; a record without api time gets the current TTL)."""
        parts = self.ttl_segments
        if len(parts) == 1:
            ttl = parts[0][1]
            return None if ttl is None else str(ttl)
        branches = " ".join(
            f"WHEN {api} < {until} THEN {'NULL' if ttl is None else ttl}"
            for until, ttl in parts[:-1]
        )
        last = parts[-1][1]
        return f"CASE {branches} ELSE {'NULL' if last is None else last} END"

    def expired_sql(self, label: str, event: str, api: str) -> str | None:
        """SQL true when the record (event µs, api µs) is older than its TTL at ``label`` µs
        (exactly TTL old still counts); None when nothing of the group expires."""
        ttl = self.ttl_sql(api)
        if ttl is None:
            return None
        if len(self.ttl_segments) == 1:
            return f"{label} - {event} > {ttl}"
        return f"coalesce({label} - {event} > ({ttl}), false)"

    @property
    def event_time_kind(self) -> str:
        return self.group.event_time.dtype.scalar.value


@dataclass(frozen=True)
class PitPlan:
    """``joins``: the groups of row features, joined point in time by a PIT engine;
    ``aggregations``: the aggregation groups, whose ``<name>_<window>`` features are computed
    at each label time from their event history (fsgen.pit.aggregate)."""

    feature_set: FeatureSetSpec
    joins: tuple[GroupJoin, ...]
    on_demand: tuple[OnDemandSpec, ...]
    aggregations: tuple[GroupJoin, ...] = ()

    @property
    def label_time(self) -> str:
        return self.feature_set.label_time

    @property
    def all_joins(self) -> tuple[GroupJoin, ...]:
        return (*self.joins, *self.aggregations)

    @property
    def key_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c for j in self.all_joins for c in j.label_keys))

    @property
    def request_fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.name for od in self.on_demand for r in od.request_fields))

    @property
    def stored(self) -> tuple[StoredInput, ...]:
        """Every stored value the query returns: feature-set columns in the set's order, then
        hidden on-demand inputs."""
        return self._in_order(self.joins)

    @property
    def aggregated(self) -> tuple[StoredInput, ...]:
        """The aggregation features the set names, in the set's order."""
        return self._in_order(self.aggregations)

    @property
    def values(self) -> tuple[StoredInput, ...]:
        """Every value an engine returns (stored and aggregated), in the set's order."""
        return self._in_order(self.all_joins)

    def _in_order(self, joins: tuple[GroupJoin, ...]) -> tuple[StoredInput, ...]:
        by_column = {i.column: i for j in joins for i in j.inputs}
        visible = [
            by_column[item.column]
            for item in self.feature_set.items
            if item.kind == "stored" and item.column in by_column
        ]
        hidden = [i for j in joins for i in j.inputs if i.hidden]
        return (*visible, *hidden)

    def default_label_columns(self) -> tuple[str, ...]:
        """The label columns a feature set implies: keys, label time, request fields, labels."""
        return tuple(
            dict.fromkeys(
                (*self.key_columns, self.label_time, *self.request_fields, *self.feature_set.labels)
            )
        )


def arrow_type(dtype: DType) -> pa.DataType:
    """The Arrow type every engine returns a stored value of ``dtype`` in."""
    scalar = {
        Scalar.INTEGRAL: pa.int64(),
        Scalar.FRACTIONAL: pa.float64(),
        Scalar.STRING: pa.string(),
    }[dtype.scalar]
    return pa.list_(scalar) if dtype.is_collection else scalar


def hidden_column(group: str, feature: str) -> str:
    return f"{INTERNAL}in_{group.replace('-', '_')}__{feature}"


def plan_for(
    spec: ProjectSpec,
    feature_set: str,
    ttl_history: Mapping[str, tuple[TtlChange, ...]] | None = None,
) -> PitPlan:
    """The join plan of ``feature_set``: groups in the set's order, each with its inputs.

    ``ttl_history``: group -> its deployed TTL changes, so each record is judged by the TTL
    in force at its write (a feature set's own TTL ignores them)."""
    fs = spec.feature_set(feature_set)
    on_demand = tuple(spec.on_demand_feature(i.name) for i in fs.items if i.kind == "on_demand")
    wanted: dict[str, dict[str, StoredInput]] = {g: {} for g in fs.groups}
    for item in fs.items:
        if item.kind == "stored" and item.group:
            dtype = spec.group(item.group).output(item.name).dtype
            wanted[item.group][item.name] = StoredInput(
                item.group, item.name, item.column, dtype, hidden=False
            )
    for od in on_demand:
        for _, ref in od.stored_inputs:
            inputs = wanted.setdefault(ref.group, {})
            if ref.feature not in inputs:
                dtype = spec.group(ref.group).feature(ref.feature).dtype
                inputs[ref.feature] = StoredInput(
                    ref.group,
                    ref.feature,
                    hidden_column(ref.group, ref.feature),
                    dtype,
                    hidden=True,
                )
    joins: list[GroupJoin] = []
    aggregations: list[GroupJoin] = []
    # row groups first, so their indices run 0..n-1 as the engines' stages expect
    ordered = sorted(wanted.items(), key=lambda item: bool(spec.group(item[0]).aggregations))
    for index, (name, inputs) in enumerate(ordered):
        group = spec.group(name)
        label_keys = fs.keys.get(name, tuple(k.name for k in group.entity.keys))
        ttl = fs.ttl_seconds if fs.ttl_seconds is not None else group.online.ttl_seconds
        # an aggregation's window is its freshness: no TTL applies to it
        (aggregations if group.aggregations else joins).append(
            GroupJoin(
                index=index,
                group=group,
                label_keys=tuple(label_keys),
                keys=group.entity.keys,
                ttl_seconds=None if group.aggregations else ttl,
                inputs=tuple(inputs.values()),
                ttl_history=(
                    () if fs.ttl_seconds is not None else tuple((ttl_history or {}).get(name, ()))
                ),
            )
        )
    return PitPlan(
        feature_set=fs, joins=tuple(joins), on_demand=on_demand, aggregations=tuple(aggregations)
    )


def with_ttl_history(plan: PitPlan, ttl_history: Mapping[str, tuple[TtlChange, ...]]) -> PitPlan:
    """``plan`` with each group's deployed TTL history (see :func:`plan_for`)."""
    if plan.feature_set.ttl_seconds is not None:
        return plan
    joins = tuple(
        dataclasses.replace(j, ttl_history=tuple(ttl_history.get(j.group.name, ())))
        for j in plan.joins
    )
    return dataclasses.replace(plan, joins=joins)


__all__ = [
    "INTERNAL",
    "MICROS",
    "GroupJoin",
    "PitError",
    "PitPlan",
    "StoredInput",
    "arrow_type",
    "hidden_column",
    "plan_for",
    "with_ttl_history",
]
