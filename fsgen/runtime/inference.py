"""Inference-side parsing: GetRecord / BatchGetRecord responses -> the ordered feature vector
a model was trained on.

A :class:`FeatureSetRuntime` is built by a generated parser module from an explicit literal
(column order, missing-value policy, defaults, the on-demand functions). Rules, the same as
the point-in-time dataset builder's:

- values are decoded losslessly (:mod:`fsgen.runtime.encoding`), so they are bit-identical to
  the training dataset's;
- a group's record is missing when the response has none, or when its ``ExpiresAt`` (or,
  without one, EventTime + TTL) is before ``now`` (a record exactly TTL old still counts, as
  in the online store and point-in-time datasets); a feature is missing when the record lacks it;
- an on-demand feature is computed from request fields and stored values; it is missing when
  one of its stored inputs is missing;
- a missing value becomes None (``missing="null"``), the column's default (``"default"``) or a
  :class:`MissingFeatureError` (``"error"``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

from fsgen.runtime.aggdef import AggregationDef
from fsgen.runtime.aggread import finalize_record
from fsgen.runtime.encoding import FRACTIONAL, INTEGRAL, decode_value, encode_value
from fsgen.runtime.encoding import Value as Value
from fsgen.runtime.pipeline import FieldDef, coerce, composite_identifier


class RequestError(ValueError):
    """The inference request lacks a key or request field, or has a bad value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class MissingFeatureError(LookupError):
    """``missing="error"`` and a column has no value for this request."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(f"feature {column!r} is missing: {reason}")
        self.column = column
        self.reason = reason


@dataclass(frozen=True)
class GroupReader:
    """How to find and decode one group's record.

    ``keys`` pairs each request column with its key field and raw type; ``columns`` is every
    stored column as (name, kind, collection).
    """

    name: str
    identifier: str
    keys: tuple[tuple[str, str, str], ...]
    event_time: str
    event_time_kind: str
    columns: tuple[tuple[str, str, str | None], ...]
    ttl_seconds: int | None = None
    max_age_seconds: int | None = None
    """The feature set's own TTL: a record older than this is missing, as in its datasets."""
    aggregations: tuple[AggregationDef, ...] = ()
    """An aggregation group's definitions: its record holds their encoded states, decoded and
    finalized at the request time into the ``<name>_<window>`` features; no record is the
    empty state (a count of 0), and no TTL applies (the windows are the freshness)."""


@dataclass(frozen=True)
class OnDemandDef:
    """A request-time feature: its function, request fields and stored inputs
    (parameter, group, feature)."""

    name: str
    fn: Callable[..., object]
    kind: str
    collection: str | None = None
    request: tuple[FieldDef, ...] = ()
    stored: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class Column:
    """One position of the vector: a stored feature (group + feature) or an on-demand one."""

    name: str
    kind: str
    group: str | None
    feature: str
    default: Value = None


@dataclass(frozen=True)
class FeatureSetRuntime:
    name: str
    columns: tuple[Column, ...]
    groups: tuple[GroupReader, ...]
    on_demand: tuple[OnDemandDef, ...]
    missing: str = "null"

    # ------------------------------------------------------------------ requests

    def group(self, name: str) -> GroupReader:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(f"feature set {self.name!r} reads no group {name!r}")

    def record_ids(self, request: Mapping[str, object]) -> dict[str, str]:
        """Each group's record identifier from the request's key columns."""
        out: dict[str, str] = {}
        for g in self.groups:
            parts: list[object] = []
            for column, _key, raw_type in g.keys:
                if request.get(column) is None:
                    raise RequestError(column, f"missing key of group {g.name!r}")
                try:
                    parts.append(coerce(raw_type, request[column]))
                except ValueError as exc:
                    raise RequestError(column, str(exc)) from None
            out[g.name] = str(parts[0]) if len(parts) == 1 else composite_identifier(parts)
        return out

    def feature_names(self, group: str) -> list[str]:
        """The features to ask GetRecord for (``FeatureNames``): the ones the vector needs and
        the event time, so the TTL still applies when a response carries no ExpiresAt; of an
        aggregation group, the states of the aggregations whose features the vector needs."""
        reader = self.group(group)
        wanted = self._wanted(group)
        if reader.aggregations:
            return [
                d.state_column
                for d in reader.aggregations
                if any(n in wanted for n in d.feature_names)
            ]
        wanted = wanted | {reader.event_time}
        return [name for name, _, _ in reader.columns if name in wanted]

    def _wanted(self, group: str) -> frozenset[str]:
        """The stored features of ``group`` the vector and its on-demand features read."""
        return self._wanted_by_group.get(group, frozenset())

    @cached_property
    def _wanted_by_group(self) -> dict[str, frozenset[str]]:
        wanted: dict[str, set[str]] = {g.name: set() for g in self.groups}
        for c in self.columns:
            if c.group in wanted:
                wanted[c.group].add(c.feature)
        for od in self.on_demand:
            for _, g, f in od.stored:
                wanted.setdefault(g, set()).add(f)
        return {g: frozenset(names) for g, names in wanted.items()}

    def batch_get_request(self, request: Mapping[str, object]) -> dict[str, object]:
        """BatchGetRecord parameters for one inference request."""
        ids = self.record_ids(request)
        return {
            "Identifiers": [
                {
                    "FeatureGroupName": g.name,
                    "RecordIdentifiersValueAsString": [ids[g.name]],
                    "FeatureNames": self.feature_names(g.name),
                }
                for g in self.groups
            ],
            "ExpirationTimeResponse": "Enabled",
        }

    # ------------------------------------------------------------------ responses

    def decode(
        self,
        group: str,
        record: Sequence[Mapping[str, object]] | None,
        expires_at: object = None,
        now: float | None = None,
    ) -> dict[str, Value] | None:
        """One group's ``Record`` as native values; None when absent or expired. An
        aggregation group's record becomes its features finalized at ``now``."""
        reader = self.group(group)
        if reader.aggregations:
            return self._aggregated(reader, record, now)
        if not record:
            return None
        types = {n: (k, c) for n, k, c in reader.columns}
        values: dict[str, Value] = {}
        for entry in record:
            name = str(entry.get("FeatureName"))
            if name not in types:
                continue
            kind, collection = types[name]
            key = "ValueAsStringList" if collection else "ValueAsString"
            if key in entry:
                values[name] = decode_value(kind, entry[key], collection)  # type: ignore[arg-type]
        moment = time.time() if now is None else now
        if expires_at is not None and _epoch(expires_at) < moment:
            return None
        limits = [reader.max_age_seconds]
        if expires_at is None:
            limits.append(reader.ttl_seconds)
        if values.get(reader.event_time) is not None:
            event = _event_seconds(reader.event_time_kind, values[reader.event_time])
            if any(limit is not None and event + limit < moment for limit in limits):
                return None
        return values

    def _aggregated(
        self,
        reader: GroupReader,
        record: Sequence[Mapping[str, object]] | None,
        now: float | None,
    ) -> dict[str, Value]:
        states: dict[str, str | None] = {}
        for entry in record or ():
            text = entry.get("ValueAsString")
            states[str(entry.get("FeatureName"))] = text if isinstance(text, str) else None
        at = time.time_ns() // 1000 if now is None else round(now * 1_000_000)
        wanted = self._wanted(reader.name)
        return finalize_record(reader.aggregations, states, at, wanted)  # type: ignore[return-value]

    def from_get_record(
        self,
        responses: Mapping[str, Mapping[str, object] | None],
        request: Mapping[str, object],
        now: float | None = None,
    ) -> list[Value]:
        """The vector from one GetRecord response per group (keyed by group name). A key that
        names no group of the set, or a response whose record is another entity's than the
        request names, is a :class:`RequestError`: ignored, it would read as a missing record
        and the missing-value policy would hide the mix-up."""
        self._check_responses(responses, request)
        stored = {
            g.name: self.decode(
                g.name,
                _record_of(responses.get(g.name)),
                (responses.get(g.name) or {}).get("ExpiresAt"),
                now,
            )
            for g in self.groups
        }
        return self.vector(stored, request)

    def _check_responses(
        self, responses: Mapping[str, Mapping[str, object] | None], request: Mapping[str, object]
    ) -> None:
        names = [g.name for g in self.groups]
        for key in responses:
            if key not in names:
                raise RequestError(
                    "responses",
                    f"{key!r} is no group of feature set {self.name!r} (its groups: "
                    f"{', '.join(names)})",
                )
        try:
            ids = self.record_ids(request)
        except RequestError:  # the request names not every key: its records are not checked
            return
        for g in self.groups:
            record = _record_of(responses.get(g.name)) or ()
            stored = next(
                (e.get("ValueAsString") for e in record if e.get("FeatureName") == g.identifier),
                None,
            )
            wanted = ids[g.name]
            if stored is not None and stored != wanted:
                raise RequestError(
                    "responses",
                    f"the {g.name!r} response is the record of {stored!r}, the request names "
                    f"{wanted!r}",
                )

    def from_batch_get_record(
        self,
        response: Mapping[str, object],
        request: Mapping[str, object],
        now: float | None = None,
    ) -> list[Value]:
        """The vector from a BatchGetRecord response for this request's records."""
        ids = self.record_ids(request)
        stored: dict[str, dict[str, Value] | None] = {
            g.name: self.decode(g.name, None, None, now) if g.aggregations else None
            for g in self.groups
        }
        results = response.get("Records") or []
        for item in results if isinstance(results, list) else []:
            group = item.get("FeatureGroupName")
            if group in ids and item.get("RecordIdentifierValueAsString") == ids[group]:
                stored[group] = self.decode(group, item.get("Record"), item.get("ExpiresAt"), now)
        return self.vector(stored, request)

    def vector(
        self, stored: Mapping[str, Mapping[str, Value] | None], request: Mapping[str, object]
    ) -> list[Value]:
        """The ordered vector from decoded records (None = no record) and the request."""
        computed = {od.name: self._on_demand(od, stored, request) for od in self.on_demand}
        out: list[Value] = []
        for column in self.columns:
            if column.kind == "on_demand":
                value, reason = computed[column.feature]
            else:
                record = stored.get(column.group or "")
                value = None if record is None else record.get(column.feature)
                reason = (
                    f"no current record in group {column.group!r}"
                    if record is None
                    else f"the record of group {column.group!r} has no value"
                )
            out.append(self._fill(column, value, reason))
        return out

    def _fill(self, column: Column, value: Value, reason: str) -> Value:
        if value is not None:
            return value
        if self.missing == "default":
            return column.default
        if self.missing == "error":
            raise MissingFeatureError(column.name, reason)
        return None

    def _on_demand(
        self,
        od: OnDemandDef,
        stored: Mapping[str, Mapping[str, Value] | None],
        request: Mapping[str, object],
    ) -> tuple[Value, str]:
        args: dict[str, object] = {}
        for f in od.request:
            value = request.get(f.name)
            if value is None:
                if f.optional:
                    args[f.name] = None
                    continue
                raise RequestError(f.name, f"missing request field of {od.name!r}")
            try:
                args[f.name] = coerce(f.type, value)
            except ValueError as exc:
                raise RequestError(f.name, str(exc)) from None
        for param, group, feature in od.stored:
            record = stored.get(group)
            value = None if record is None else record.get(feature)
            if value is None:
                return None, f"its input {group}:{feature} is missing"
            args[param] = value
        return _normalize(od, od.fn(**args)), ""


def _normalize(od: OnDemandDef, value: object) -> Value:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    encode_value(od.kind, value, od.collection)  # raises on a wrong type
    if od.collection is not None:
        conv: Callable[[object], Value] = (
            int if od.kind == INTEGRAL else float if od.kind == FRACTIONAL else str  # type: ignore[assignment]
        )
        items: list[Value] = [conv(v) for v in value]  # type: ignore[attr-defined]
        if od.collection == "Set":
            return sorted(set(items))  # type: ignore[arg-type,type-var,return-value]
        return items  # type: ignore[return-value]
    if od.kind == INTEGRAL:
        return int(value)  # type: ignore[call-overload,no-any-return]
    if od.kind == FRACTIONAL:
        return float(value)  # type: ignore[arg-type]
    return value  # type: ignore[return-value]


def _record_of(response: Mapping[str, object] | None) -> Sequence[Mapping[str, object]] | None:
    if not response:
        return None
    record = response.get("Record")
    return record if isinstance(record, list) else None


def _epoch(value: object) -> float:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    else:
        moment = datetime.fromisoformat(str(value).strip().replace("z", "Z"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _event_seconds(kind: str, value: Value) -> float:
    if kind == FRACTIONAL and isinstance(value, int | float):
        return float(value)
    return _epoch(value)
