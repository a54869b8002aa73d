"""The frozen, normalized spec of a project: the single input of codegen, plan, catalog and
backends.

Every object carries a :class:`SourceLocation` relative to the project root; locations never
enter a hash (moving code is not a change). Lists are kept in declaration order where order
means something (features are columns) and sorted by name elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from fsgen.types import DType

if TYPE_CHECKING:
    from fsgen.runtime.aggregate import AggregationDef

InputKind = Literal["raw", "key", "event_time", "feature"]
RawType = Literal["int", "float", "str", "bool", "list[int]", "list[float]", "list[str]"]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceLocation(Frozen):
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


class FunctionRef(Frozen):
    """Importable address of a transformation: ``from module import name``."""

    module: str
    name: str


class InputRef(Frozen):
    name: str
    kind: InputKind


class RawField(Frozen):
    """A field of the raw input record, typed from parameter annotations."""

    name: str
    type: RawType
    optional: bool = False
    used_by: tuple[str, ...] = ()


class KeySpec(Frozen):
    name: str
    dtype: DType


class EntitySpec(Frozen):
    name: str
    keys: tuple[KeySpec, ...]
    identifier: str
    description: str = ""
    location: SourceLocation

    @property
    def is_composite(self) -> bool:
        return len(self.keys) > 1


class EventTimeSpec(Frozen):
    name: str
    dtype: DType


class OnlineSpec(Frozen):
    enabled: bool = True
    ttl_seconds: int | None = None
    storage: Literal["Standard", "InMemory"] = "Standard"


class OfflineSpec(Frozen):
    enabled: bool = True
    s3_uri: str | None = None
    table_format: Literal["Glue", "Iceberg"] = "Glue"
    kms_key: str | None = None
    disable_glue_table_creation: bool = False


class ThroughputSpec(Frozen):
    mode: Literal["OnDemand", "Provisioned"] = "OnDemand"
    read_units: int | None = None
    write_units: int | None = None


class SourceSpec(Frozen):
    kind: Literal["batch", "stream"]
    path: str | None = None
    format: Literal["csv", "parquet", "jsonl"] | None = None
    stream: str | None = None
    region: str | None = None
    location: SourceLocation


class FeatureSpec(Frozen):
    name: str
    group: str
    dtype: DType
    description: str
    pii: str
    tags: dict[str, str] = Field(default_factory=dict)
    function: FunctionRef
    inputs: tuple[InputRef, ...]
    return_annotation: str | None
    source: str
    logic_hash: str
    location: SourceLocation


class WindowSpec(Frozen):
    """One window of an aggregation: its feature-name suffix and length (None: lifetime)."""

    label: str
    seconds: int | None


class AggregationSpec(Frozen):
    """A time-window aggregation: one function over the group's events, one stored-and-served
    feature per window (``<name>_<window>``), all sharing one tiled state.

    ``dtype`` is the type of the produced features, ``value_dtype`` the type of the value the
    function maps each event to. Online, the state is the String feature ``<name>__state``;
    offline, each event row holds the value in ``<name>__value``.
    """

    name: str
    group: str
    dtype: DType
    value_dtype: DType
    function: str
    windows: tuple[WindowSpec, ...]
    hop_seconds: int
    lateness_seconds: int
    n: int | None = None
    distinct: bool = False
    description: str
    pii: str
    tags: dict[str, str] = Field(default_factory=dict)
    transform: FunctionRef
    inputs: tuple[InputRef, ...]
    return_annotation: str | None
    source: str
    logic_hash: str
    location: SourceLocation

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f"{self.name}_{w.label}" for w in self.windows)

    @property
    def state_column(self) -> str:
        return f"{self.name}__state"

    @property
    def value_column(self) -> str:
        return f"{self.name}__value"

    def runtime(self) -> AggregationDef:
        """The stdlib runtime's definition (times in microseconds)."""
        from fsgen.runtime.aggregate import MICROS, AggregationDef

        return AggregationDef(
            name=self.name,
            function=self.function,
            value_kind=self.value_dtype.scalar.value,
            windows=tuple(None if w.seconds is None else w.seconds * MICROS for w in self.windows),
            hop=self.hop_seconds * MICROS,
            lateness=self.lateness_seconds * MICROS,
            n=self.n,
            distinct=self.distinct,
        )


#: columns every aggregation group's offline event rows carry besides keys and event time
EVENT_SEQUENCE_COLUMN = "event_sequence"
EVENT_HASH_COLUMN = "event_hash"


class GroupSpec(Frozen):
    name: str
    entity: EntitySpec
    event_time: EventTimeSpec
    online: OnlineSpec
    offline: OfflineSpec
    throughput: ThroughputSpec
    owner: str
    description: str
    tags: dict[str, str] = Field(default_factory=dict)
    features: tuple[FeatureSpec, ...]
    compute_order: tuple[str, ...]
    raw_fields: tuple[RawField, ...]
    sources: tuple[SourceSpec, ...] = ()
    max_staleness_seconds: int | None = None
    allow_sensitive_online: bool = False
    module: str
    location: SourceLocation
    aggregations: tuple[AggregationSpec, ...] = ()
    schema_hash: str = ""
    logic_hash: str = ""
    metadata_hash: str = ""

    @property
    def identifier(self) -> str:
        return self.entity.identifier

    def feature(self, name: str) -> FeatureSpec:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def stored_columns(self) -> list[tuple[str, DType]]:
        """Every FeatureDefinition of the SageMaker group, in a stable order: identifier and
        key columns, event time, then the declared features."""
        cols: list[tuple[str, DType]] = []
        seen: set[str] = set()
        if self.entity.is_composite:
            from fsgen.types import String

            cols.append((self.entity.identifier, String))
            seen.add(self.entity.identifier)
        for key in self.entity.keys:
            if key.name not in seen:
                cols.append((key.name, key.dtype))
                seen.add(key.name)
        if self.event_time.name not in seen:
            cols.append((self.event_time.name, self.event_time.dtype))
            seen.add(self.event_time.name)
        for f in self.features:
            if f.name not in seen:
                cols.append((f.name, f.dtype))
                seen.add(f.name)
        return cols

    def aggregation_columns(self) -> list[tuple[str, DType]]:
        """The FeatureDefinitions an aggregation group adds after :meth:`stored_columns`: the
        event rows' ordering columns and per-aggregation values (written to the offline store)
        and the encoded states (written to the online store)."""
        from fsgen.types import Integral, String

        if not self.aggregations:
            return []
        cols: list[tuple[str, DType]] = [
            (EVENT_SEQUENCE_COLUMN, Integral),
            (EVENT_HASH_COLUMN, String),
        ]
        cols += [(a.value_column, a.value_dtype) for a in self.aggregations]
        cols += [(a.state_column, String) for a in self.aggregations]
        return cols

    def aggregation(self, name: str) -> AggregationSpec:
        for agg in self.aggregations:
            if agg.name == name:
                return agg
        raise KeyError(name)

    def window_feature(self, name: str) -> tuple[AggregationSpec, WindowSpec] | None:
        """The aggregation and window behind feature ``<name>_<window>``, if it is one."""
        for agg in self.aggregations:
            for window, feature in zip(agg.windows, agg.feature_names, strict=True):
                if feature == name:
                    return agg, window
        return None

    def output_names(self) -> tuple[str, ...]:
        """The features a feature set can name: row features, or each aggregation's windows."""
        return (
            *(f.name for f in self.features),
            *(n for a in self.aggregations for n in a.feature_names),
        )

    def output(self, name: str) -> FeatureSpec | AggregationSpec:
        """The declaration behind a feature a feature set names (its dtype, pii, location)."""
        found = self.window_feature(name)
        return found[0] if found else self.feature(name)


class StoredRef(Frozen):
    group: str
    feature: str


class OnDemandSpec(Frozen):
    name: str
    dtype: DType
    description: str
    pii: str
    tags: dict[str, str] = Field(default_factory=dict)
    function: FunctionRef
    request_fields: tuple[RawField, ...]
    stored_inputs: tuple[tuple[str, StoredRef], ...]
    return_annotation: str | None
    source: str
    logic_hash: str
    location: SourceLocation


class FeatureSetItem(Frozen):
    """One column of a feature set: a stored feature of a group, or an on-demand feature."""

    kind: Literal["stored", "on_demand"]
    name: str
    group: str | None = None
    column: str

    @property
    def qualified(self) -> str:
        return f"{self.group}:{self.name}" if self.group else self.name


class FeatureSetSpec(Frozen):
    name: str
    description: str
    owner: str
    items: tuple[FeatureSetItem, ...]
    keys: dict[str, tuple[str, ...]]
    label_time: str
    missing: Literal["null", "default", "error"]
    defaults: dict[str, str | int | float | None] = Field(default_factory=dict)
    ttl_seconds: int | None = None
    labels: tuple[str, ...] = ()
    tags: dict[str, str] = Field(default_factory=dict)
    location: SourceLocation
    spec_hash: str = ""

    @property
    def groups(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for item in self.items:
            if item.group:
                seen.setdefault(item.group, None)
        for od_group in self.keys:
            seen.setdefault(od_group, None)
        return tuple(seen)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(i.column for i in self.items)


class ProjectSpec(Frozen):
    """Everything the definitions declare. Two loads of the same tree are equal."""

    format_version: int = 1
    package: str
    entities: tuple[EntitySpec, ...]
    groups: tuple[GroupSpec, ...]
    on_demand: tuple[OnDemandSpec, ...]
    feature_sets: tuple[FeatureSetSpec, ...]

    def group(self, name: str) -> GroupSpec:
        for g in self.groups:
            if g.name == name:
                return g
        from fsgen.errors import NotFound

        known = ", ".join(g.name for g in self.groups) or "none"
        raise NotFound(f"no feature group named {name!r} (known: {known})")

    def feature_set(self, name: str) -> FeatureSetSpec:
        for fs in self.feature_sets:
            if fs.name == name:
                return fs
        from fsgen.errors import NotFound

        known = ", ".join(f.name for f in self.feature_sets) or "none"
        raise NotFound(f"no feature set named {name!r} (known: {known})")

    def on_demand_feature(self, name: str) -> OnDemandSpec:
        for od in self.on_demand:
            if od.name == name:
                return od
        raise KeyError(name)

    def summary(self) -> str:
        n_feat = sum(len(g.features) for g in self.groups) + len(self.on_demand)
        aggs = [a for g in self.groups for a in g.aggregations]
        n_window = sum(len(a.windows) for a in aggs)
        of_aggs = f" ({n_window} from {_plural(len(aggs), 'aggregation')})" if aggs else ""
        return (
            f"{_plural(len(self.groups), 'feature group')}, "
            f"{_plural(n_feat + n_window, 'feature')}{of_aggs}, "
            f"{_plural(len(self.feature_sets), 'feature set')}"
        )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
