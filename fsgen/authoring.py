"""The authoring API: what a feature author writes in ``featuredefs/``.

These are plain, mutable declaration objects. Nothing here is global: a FeatureGroup keeps
the features decorated on it, and :func:`fsgen.loader.load` turns the objects it finds in the
definitions package into one frozen :class:`fsgen.spec.ProjectSpec`. Problems are collected by
the loader and the validator, so authors see all of them at once. What the objects here find
wrong while the module is imported (a dtype that is no dtype, a decorator on a non-function,
tags or sources of the wrong kind) is noted in the declaration's ``problems`` with its file:line
instead of raised, so the module imports on and every other error of the file is reported too;
the builder reports the notes, and a noted problem is an error, so nothing half-declared
reaches codegen.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from fsgen.errors import DefinitionError, Diagnostic
from fsgen.types import DType, Fractional, Integral, String

F = TypeVar("F", bound=Callable[..., object])

PiiClass = Literal["none", "pseudonymous", "personal", "sensitive"]
PII_CLASSES: tuple[str, ...] = ("none", "pseudonymous", "personal", "sensitive")
StorageType = Literal["Standard", "InMemory"]
TableFormat = Literal["Glue", "Iceberg"]
ThroughputMode = Literal["OnDemand", "Provisioned"]
MissingPolicy = Literal["null", "default", "error"]

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

FEATURE_ATTR = "__fsgen_feature__"
ON_DEMAND_ATTR = "__fsgen_on_demand__"
AGGREGATION_ATTR = "__fsgen_aggregation__"


@dataclass(frozen=True)
class Location:
    """Where a declaration was written (absolute path while loading)."""

    path: str
    line: int


def _caller(depth: int = 2) -> Location:
    frame = sys._getframe(depth)
    return Location(frame.f_code.co_filename, frame.f_lineno)


def _function_location(fn: Callable[..., object]) -> Location:
    code = getattr(fn, "__code__", None)
    if code is None:
        return Location("?", 0)
    return Location(code.co_filename, code.co_firstlineno)


def _problem(location: Location, code: str, message: str, hint: str | None = None) -> Diagnostic:
    """A problem found at import time, at the declaration (an absolute path, made relative to
    the project by the builder)."""
    return Diagnostic(path=location.path, line=location.line, code=code, message=message, hint=hint)


def _tag_mapping(
    tags: object, location: Location, what: str, problems: list[Diagnostic]
) -> dict[str, str]:
    """``tags`` as a dict; when it is no mapping, a problem at the declaration and no tags."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        problems.append(
            _problem(
                location,
                "FS203",
                f"{what}: tags must be a mapping of key to value (e.g. {{'team': 'risk'}}), "
                f"got {type(tags).__name__} {tags!r}",
            )
        )
        return {}
    return dict(tags)


_PYTHON_DTYPES: dict[object, str] = {
    int: "Integral",
    bool: "Integral",
    float: "Fractional",
    str: "String",
    list: "List(...)",
    set: "Set(...)",
}


def _dtype_problem(
    dtype: object, location: Location, decorator: str, example: str
) -> Diagnostic | None:
    """None when ``dtype`` is an fsgen dtype, else the FS107 problem at the decorator; a
    decorator used without its arguments (``@group.feature`` above a def) is said to be that,
    a Python type gets the fsgen dtype it means."""
    if isinstance(dtype, DType):
        return None
    if callable(dtype) and hasattr(dtype, "__code__"):
        return _problem(
            location,
            "FS107",
            f"{decorator} is used without arguments on {getattr(dtype, '__name__', '?')!r}: "
            "it needs the feature's dtype",
            hint=f"call it with the dtype first: {example} "
            "(or Fractional, String, List(...), Set(...), Vector(n))",
        )
    meant = _PYTHON_DTYPES.get(dtype) if isinstance(dtype, type) else None
    return _problem(
        location,
        "FS107",
        f"{decorator}: the dtype must be an fsgen dtype (Integral, Fractional, String, ...), "
        f"got {type(dtype).__name__} {getattr(dtype, '__name__', dtype)!r}",
        hint=f"did you mean {meant}? (from fsgen import {meant.split('(')[0]})" if meant else None,
    )


def _mapping(
    value: object, location: Location, what: str, example: str, problems: list[Diagnostic]
) -> dict[Any, Any]:
    """``value`` as a dict (None: empty); when it is no mapping, a problem (FS109) at the
    declaration and an empty one."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append(
            _problem(
                location,
                "FS109",
                f"{what} must be a mapping, e.g. {example}; got {type(value).__name__} {value!r}",
            )
        )
        return {}
    return dict(value)


def _items(
    value: object,
    location: Location,
    what: str,
    example: str,
    code: str,
    problems: list[Diagnostic],
) -> tuple[Any, ...]:
    """``value`` as a tuple. One item (a string, a Source, a group) or no collection at all
    instead of a list of them is a problem at the declaration; the declaration goes on with
    that one item (none when it is no collection), so its other checks still run."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        problems.append(
            _problem(
                location, code, f"{what} must be a list, e.g. {example}; got {_described(value)}"
            )
        )
        return () if value is None else (value,)
    return tuple(value)


def _described(value: object) -> str:
    """A value as an error message shows it (a Source as it is written, not its fields)."""
    if isinstance(value, Source):
        where = value.path if value.kind == "batch" else value.stream
        return f"one Source.{'batch' if value.kind == 'batch' else 'kinesis'}({where!r})"
    return f"{type(value).__name__} {value!r}"


def parse_duration(text: str | int | None) -> int | None:
    """'30d' -> seconds. ints are seconds. None stays None. Raises ValueError on junk."""
    if text is None:
        return None
    if isinstance(text, int) and not isinstance(text, bool):
        if text <= 0:
            raise ValueError(f"duration must be positive, got {text}")
        return text
    match = _DURATION.match(str(text))
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"invalid duration {text!r}: use a positive number with s, m, h, d or w")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class Entity:
    """The thing features describe and its identifier.

    ``Entity("customer_id", String)`` has one key, which is the SageMaker record identifier.
    ``Entity(keys={"store_id": Integral, "sku": String}, name="store_item")`` has a composite
    key: each key column is stored as a feature and joined on by itself; the record identifier
    ``store_item_key`` holds a lossless encoding of the tuple (see fsgen.runtime.encoding).
    """

    def __init__(
        self,
        key: str | None = None,
        dtype: DType = String,
        *,
        keys: Mapping[str, DType] | None = None,
        name: str | None = None,
        identifier: str | None = None,
        description: str = "",
    ) -> None:
        self.location = _caller()
        if (key is None) == (keys is None):
            raise DefinitionError(
                "Entity takes either one key name or keys={name: dtype, ...}",
                path=self.location.path,
                line=self.location.line,
                code="FS110",
            )
        self.keys: dict[str, DType] = {key: dtype} if key is not None else dict(keys or {})
        first = next(iter(self.keys), "entity")
        self.name = name or (first[:-3] if first.endswith("_id") else first)
        if identifier is None:
            identifier = first if len(self.keys) == 1 else f"{self.name}_key"
        self.identifier = identifier
        self.description = description

    def __repr__(self) -> str:
        return f"Entity({self.name!r}, keys={list(self.keys)})"


@dataclass
class Online:
    """Online store configuration. ``ttl`` like '30d' sets ExpiresAt = EventTime + TTL."""

    enabled: bool = True
    ttl: str | int | None = None
    storage: StorageType = "Standard"


@dataclass
class Offline:
    """Offline store configuration (S3 + Glue/Iceberg table on AWS; Parquet locally)."""

    enabled: bool = True
    s3_uri: str | None = None
    table_format: TableFormat = "Glue"
    kms_key: str | None = None
    disable_glue_table_creation: bool = False


@dataclass
class Throughput:
    mode: ThroughputMode = "OnDemand"
    read_units: int | None = None
    write_units: int | None = None


@dataclass
class Source:
    """Where raw records come from: a batch file (local or s3://) or a Kinesis stream."""

    kind: Literal["batch", "stream"]
    path: str | None = None
    format: Literal["csv", "parquet", "jsonl"] | None = None
    # a factory, not a default, leaves no class attribute: ``Source.stream(...)`` (a guess for
    # ``Source.kinesis``) is an AttributeError with a hint, not "'NoneType' is not callable"
    stream: str | None = field(default_factory=lambda: None)
    region: str | None = None
    location: Location = field(default_factory=lambda: Location("?", 0))

    @classmethod
    def batch(cls, path: str, format: Literal["csv", "parquet", "jsonl"] | None = None) -> Source:
        return cls(
            kind="batch", path=path, format=format or _infer_format(path), location=_caller()
        )

    @classmethod
    def kinesis(cls, stream: str, region: str | None = None) -> Source:
        return cls(kind="stream", stream=stream, region=region, location=_caller())


def _infer_format(path: str) -> Literal["csv", "parquet", "jsonl"]:
    lower = path.lower()
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    return "csv"


@dataclass
class FeatureDecl:
    """What the decorator attaches to a feature function (and records on its group)."""

    fn: Callable[..., object]
    group: FeatureGroup
    dtype: DType
    name: str
    description: str
    pii: str
    tags: dict[str, str]
    location: Location
    problems: tuple[Diagnostic, ...] = ()
    """import-time problems of the declaration (a dtype that is no dtype): errors"""


@dataclass
class OnDemandDecl:
    fn: Callable[..., object]
    dtype: DType
    name: str
    description: str
    pii: str
    tags: dict[str, str]
    sources: tuple[FeatureGroup, ...]
    location: Location
    problems: tuple[Diagnostic, ...] = ()


class FeatureGroup:
    """A set of features of one entity, stored together (SageMaker Feature Group)."""

    def __init__(
        self,
        name: str,
        *,
        entity: Entity,
        event_time: str,
        event_time_type: DType = String,
        online: Online | bool = True,
        offline: Offline | bool = True,
        throughput: Throughput | None = None,
        owner: str = "",
        description: str = "",
        tags: Mapping[str, str] | None = None,
        sources: Sequence[Source] = (),
        max_staleness: str | int | None = None,
        allow_sensitive_online: bool = False,
    ) -> None:
        self.location = _caller()
        self.problems: list[Diagnostic] = []
        """import-time problems of the group and of what is decorated on it"""
        self.name = name
        self.entity = entity
        self.event_time = event_time
        self.event_time_type = event_time_type
        self.online = online if isinstance(online, Online) else Online(enabled=bool(online))
        self.offline = offline if isinstance(offline, Offline) else Offline(enabled=bool(offline))
        self.throughput = throughput or Throughput()
        self.owner = owner
        self.description = description
        self.tags = _tag_mapping(tags, self.location, f"group {name!r}", self.problems)
        self.sources = _items(
            sources,
            self.location,
            f"group {name!r}: sources",
            "sources=[Source.batch('data/events.csv')]",
            "FS209",
            self.problems,
        )
        self.max_staleness = max_staleness
        self.allow_sensitive_online = allow_sensitive_online
        self.features: list[FeatureDecl] = []
        self.aggregations: list[AggregationDecl] = []

    def __repr__(self) -> str:
        return f"FeatureGroup({self.name!r})"

    def feature(
        self,
        dtype: DType,
        *,
        description: str = "",
        pii: PiiClass = "none",
        tags: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> Callable[[F], F]:
        """Declare the decorated function as a feature of this group.

        The function's parameters name its inputs: raw fields (typed by their annotations),
        the entity key or event time, or other features of this group. A parameter named like
        the feature itself is the raw field of that name (a pass-through feature). The same
        function object is returned, so it stays callable in plain tests.
        """
        call_location = _caller()
        decorator = f"@{self.name}.feature"
        tag_dict = _tag_mapping(tags, call_location, decorator, self.problems)
        problem = _dtype_problem(dtype, call_location, decorator, "@<group>.feature(Integral, ...)")

        def decorate(fn: F) -> F:
            if not callable(fn) or not hasattr(fn, "__code__"):
                self.problems.append(
                    _problem(_caller(), "FS104", f"{decorator} decorates a function, got {fn!r}")
                )
                return fn
            decl = FeatureDecl(
                fn=fn,
                group=self,
                dtype=dtype,
                name=name or fn.__name__,
                description=description,
                pii=pii,
                tags=tag_dict,
                location=_function_location(fn),
                problems=(problem,) if problem else (),
            )
            setattr(fn, FEATURE_ATTR, decl)
            self.features.append(decl)
            return fn

        if callable(dtype) and hasattr(dtype, "__code__"):
            # used without arguments: ``dtype`` is the function; it is declared (with its
            # problem) and stays bound to its name, so nothing else reports it missing
            return decorate(dtype)  # type: ignore[return-value]
        return decorate

    def aggregation(
        self,
        dtype: DType,
        *,
        function: str,
        windows: Sequence[str | int],
        hop: str | int = "1h",
        lateness: str | int | None = None,
        n: int | None = None,
        distinct: bool = False,
        description: str = "",
        pii: PiiClass = "none",
        tags: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> Callable[[F], F]:
        """Declare a time-window aggregation over this group's events, one feature per window.

        The decorated function maps one raw event to the value to aggregate (None: the event
        does not contribute); ``function`` is one of count, sum, mean, min, max, variance,
        variance_pop, stddev, stddev_pop, last, last_n (``n``, ``distinct``) or count_distinct
        (exact up to ``n``). ``windows`` are durations ('1h', '7d', ...) that are multiples of
        ``hop``, or 'lifetime'; the features are named ``<name>_<window>``. ``lateness`` (default:
        the hop) is how far behind an entity's newest event a late event may still land. ``dtype``
        is the type of the features produced. The same function object is returned.
        """
        location = _caller()
        decorator = f"@{self.name}.aggregation"
        tag_dict = _tag_mapping(tags, location, decorator, self.problems)
        window_items = _items(
            windows,
            location,
            f"{decorator}: windows",
            "windows=['1h', '7d']",
            "FS131",
            self.problems,
        )

        def decorate(fn: F) -> F:
            if not callable(fn) or not hasattr(fn, "__code__"):
                self.problems.append(
                    _problem(location, "FS104", f"{decorator} decorates a function, got {fn!r}")
                )
                return fn
            decl = AggregationDecl(
                fn=fn,
                group=self,
                dtype=dtype,
                name=name or fn.__name__,
                function=function,
                windows=window_items,
                hop=hop,
                lateness=lateness,
                n=n,
                distinct=distinct,
                description=description,
                pii=pii,
                tags=tag_dict,
                location=_function_location(fn),
            )
            setattr(fn, AGGREGATION_ATTR, decl)
            self.aggregations.append(decl)
            return fn

        return decorate


@dataclass
class AggregationDecl:
    """What ``@group.aggregation`` attaches to its function (and records on its group)."""

    fn: Callable[..., object]
    group: FeatureGroup
    dtype: DType
    name: str
    function: str
    windows: tuple[str | int, ...]
    hop: str | int
    lateness: str | int | None
    n: int | None
    distinct: bool
    description: str
    pii: str
    tags: dict[str, str]
    location: Location


def on_demand(
    dtype: DType,
    *,
    sources: Sequence[FeatureGroup],
    description: str = "",
    pii: PiiClass = "none",
    tags: Mapping[str, str] | None = None,
    name: str | None = None,
) -> Callable[[F], F]:
    """Declare a request-time feature: computed at inference, never stored.

    Parameters named like a feature of one of ``sources`` receive that stored value; every
    other parameter is a request field, typed by its annotation.
    """
    call_location = _caller()
    problems: list[Diagnostic] = []
    tag_dict = _tag_mapping(tags, call_location, "@on_demand", problems)
    problem = _dtype_problem(
        dtype, call_location, "@on_demand", "@on_demand(Integral, sources=[...])"
    )
    problems += [problem] if problem else []
    source_groups = _items(
        sources,
        call_location,
        "@on_demand: sources",
        "sources=[customer_features]",
        "FS113",
        problems,
    )

    def decorate(fn: F) -> F:
        if not callable(fn) or not hasattr(fn, "__code__"):
            raise DefinitionError(
                f"@on_demand decorates a function, got {fn!r}",
                path=call_location.path,
                line=call_location.line,
                code="FS104",
            )
        decl = OnDemandDecl(
            fn=fn,
            dtype=dtype,
            name=name or fn.__name__,
            description=description,
            pii=pii,
            tags=tag_dict,
            sources=source_groups,
            location=_function_location(fn),
            problems=tuple(problems),
        )
        setattr(fn, ON_DEMAND_ATTR, decl)
        return fn

    return decorate


FeatureRefLike = Callable[..., object] | str | FeatureGroup


class FeatureSet:
    """A model's input contract: ordered features, the label columns keying each group, and
    what to do with a missing value.

    ``features`` holds feature functions, on-demand functions, ``"group:feature"`` strings, or
    whole groups (all their features, in declaration order). ``keys`` maps a group (or its
    name) to the label column(s) holding its entity key; by default the entity's key names.
    ``missing``: ``"null"`` leaves a missing value empty, ``"default"`` fills ``defaults``,
    ``"error"`` refuses to build a vector with a missing value.
    """

    def __init__(
        self,
        name: str,
        features: Sequence[FeatureRefLike],
        *,
        description: str = "",
        owner: str = "",
        keys: Mapping[FeatureGroup | str, str | Sequence[str]] | None = None,
        label_time: str = "event_time",
        missing: MissingPolicy = "null",
        defaults: Mapping[FeatureRefLike, object] | None = None,
        ttl: str | int | None = None,
        labels: Sequence[str] = (),
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.location = _caller()
        self.problems: list[Diagnostic] = []
        """import-time problems of the set (features that are no list, ...)"""
        self.name = name
        what = f"feature set {name!r}"
        if isinstance(features, str | bytes) or not isinstance(features, Iterable):
            self.problems.append(
                _problem(
                    self.location,
                    "FS109",
                    f"{what}: features must be a list of features, e.g. [age, 'group:feature']; "
                    f"got {type(features).__name__} {features!r}",
                )
            )
            features = [] if features is None else [features]
        self.features = list(features)
        self.description = description
        self.owner = owner
        self.keys = _mapping(
            keys,
            self.location,
            f"{what}: keys",
            "keys={customer_features: 'customer_id'}",
            self.problems,
        )
        self.label_time = label_time
        self.missing = missing
        self.defaults = _mapping(
            defaults, self.location, f"{what}: defaults", "defaults={age: -1}", self.problems
        )
        self.ttl = ttl
        self.labels = tuple(labels)
        self.tags = _tag_mapping(tags, self.location, f"feature set {name!r}", self.problems)

    def __repr__(self) -> str:
        return f"FeatureSet({self.name!r})"


__all__ = [
    "PII_CLASSES",
    "AggregationDecl",
    "Entity",
    "FeatureDecl",
    "FeatureGroup",
    "FeatureSet",
    "Fractional",
    "Integral",
    "Location",
    "Offline",
    "OnDemandDecl",
    "Online",
    "Source",
    "String",
    "Throughput",
    "on_demand",
    "parse_duration",
]
