"""Validation rules over a ProjectSpec. Each rule yields Diagnostics with file:line.

Codes are stable: FS1xx definitions, FS2xx SageMaker limits (the numbers below are the ones in
botocore's service model for CreateFeatureGroup / UpdateFeatureMetadata; a test keeps them in
step with it). FS114 (a global name a transformation reads resolves to nothing) reads bytecode
and lives in :mod:`fsgen.globalnames`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator

from fsgen.authoring import PII_CLASSES
from fsgen.errors import Diagnostic
from fsgen.globalnames import rule_global_names
from fsgen.spec import (
    FeatureSetSpec,
    GroupSpec,
    OnDemandSpec,
    ProjectSpec,
    SourceLocation,
)
from fsgen.types import MAX_VECTOR_DIMENSION, DType, Scalar, python_annotation_matches

GROUP_NAME = re.compile(r"^[a-zA-Z0-9]([_-]*[a-zA-Z0-9]){0,63}$")
FEATURE_NAME = re.compile(r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$")
TAG_TEXT = re.compile(r"^[\w\s.:/=+\-@]*$", re.UNICODE)
PARAM_TEXT = re.compile(r"^[\w\s.:/=+\-]*$", re.UNICODE)
S3_URI = re.compile(r"^(https|s3)://([^/]+)/?(.*)$")
KMS_KEY = re.compile(r"^[a-zA-Z0-9:/_-]*$")
RESERVED = frozenset(
    {"is_deleted", "write_time", "api_invocation_time", "year", "month", "day", "hour"}
)
MAX_FEATURES = 2500
MAX_GROUP_DESCRIPTION = 128
MAX_FEATURE_DESCRIPTION = 255
MAX_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
MAX_FEATURE_PARAMS = 25
MAX_PARAM_TEXT = 255
MAX_PROVISIONED_UNITS = 10_000_000

Rule = Callable[[ProjectSpec], Iterator[Diagnostic]]


def _d(loc: SourceLocation, code: str, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic(path=loc.path, line=loc.line, code=code, message=message, hint=hint)


def rule_names(spec: ProjectSpec) -> Iterator[Diagnostic]:
    for g in spec.groups:
        if not GROUP_NAME.match(g.name):
            yield _d(
                g.location,
                "FS102",
                f"feature group name {g.name!r} is not a valid SageMaker name",
                hint="1-64 letters, digits, '-' or '_', starting and ending with a letter or digit",
            )
        columns = [(k.name, g.entity.location) for k in g.entity.keys]
        columns += [(g.entity.identifier, g.entity.location), (g.event_time.name, g.location)]
        columns += [(f.name, f.location) for f in g.features]
        for name, loc in dict(reversed(columns)).items():
            if not FEATURE_NAME.match(name):
                yield _d(
                    loc,
                    "FS102",
                    f"feature name {name!r} in group {g.name!r} is not a "
                    "valid SageMaker feature name",
                    hint="1-64 letters, digits, '-' or '_', starting and ending with a "
                    "letter or digit",
                )
            if name.lower() in RESERVED:
                yield _d(
                    loc,
                    "FS103",
                    f"{name!r} in group {g.name!r} is a reserved name (the offline store adds it)",
                    hint="reserved: " + ", ".join(sorted(RESERVED)),
                )
        structural = {k.name for k in g.entity.keys} | {g.entity.identifier, g.event_time.name}
        for f in g.features:
            if f.name in structural:
                yield _d(
                    f.location,
                    "FS111",
                    f"feature {f.name!r} has the same name as the "
                    f"identifier or event-time field of group {g.name!r}",
                )


# Kinesis's StreamName pattern (1-128); a region like us-east-1 / cn-north-1 / us-gov-west-1
STREAM_NAME = re.compile(r"[a-zA-Z0-9_.-]{1,128}\Z")
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}\Z")


def rule_sources(spec: ProjectSpec) -> Iterator[Diagnostic]:
    """Source names that end up in IAM policies, ARNs and generated code: a stream name is
    exactly one Kinesis stream (no wildcard, which would grant every stream), a region is a
    region, and a batch path has no control characters (quotes are escaped where generated
    code carries the path)."""
    for g in spec.groups:
        for src in g.sources:
            if src.kind == "stream" and not STREAM_NAME.match(src.stream or ""):
                yield _d(
                    src.location,
                    "FS209",
                    f"stream name {src.stream!r} of group {g.name!r} is not a Kinesis stream name",
                    hint="1-128 letters, digits, '_', '-' or '.'; no wildcards ('*', '?')",
                )
            if src.region is not None and not REGION.match(src.region):
                yield _d(
                    src.location,
                    "FS209",
                    f"region {src.region!r} of group {g.name!r} is not an AWS region name",
                    hint="for example us-east-1",
                )
            if src.kind == "batch" and (
                not src.path or any(ord(c) < 32 or ord(c) == 127 for c in src.path)
            ):
                yield _d(
                    src.location,
                    "FS209",
                    f"batch path {src.path!r} of group {g.name!r} is empty or has control "
                    "characters",
                )


def rule_limits(spec: ProjectSpec) -> Iterator[Diagnostic]:
    for g in spec.groups:
        if len(g.stored_columns()) > MAX_FEATURES:
            yield _d(
                g.location,
                "FS201",
                f"group {g.name!r} has {len(g.stored_columns())} "
                f"features; SageMaker allows at most {MAX_FEATURES}",
            )
        if not g.features and not g.aggregations:
            yield _d(g.location, "FS201", f"group {g.name!r} declares no features")
        if len(g.description) > MAX_GROUP_DESCRIPTION:
            yield _d(
                g.location,
                "FS202",
                f"description of group {g.name!r} has "
                f"{len(g.description)} characters; the limit is {MAX_GROUP_DESCRIPTION}",
            )
        yield from _tags(g.location, f"group {g.name!r}", g.tags)
        for f in g.features:
            if len(f.description) > MAX_FEATURE_DESCRIPTION:
                yield _d(
                    f.location,
                    "FS202",
                    f"description of feature {f.name!r} has "
                    f"{len(f.description)} characters; the limit is "
                    f"{MAX_FEATURE_DESCRIPTION}",
                )
            yield from _params(f.location, f"feature {f.name!r}", f.tags)


def _tags(loc: SourceLocation, what: str, tags: dict[str, str]) -> Iterator[Diagnostic]:
    if len(tags) > MAX_TAGS:
        yield _d(loc, "FS203", f"{what} has {len(tags)} tags; the limit is {MAX_TAGS}")
    for key, value in tags.items():
        if not 1 <= len(key) <= MAX_TAG_KEY or not TAG_TEXT.match(key):
            yield _d(
                loc,
                "FS203",
                f"{what}: tag key {key!r} must be 1-{MAX_TAG_KEY} letters, "
                "digits, spaces or _.:/=+-@",
            )
        if not isinstance(value, str) or len(value) > MAX_TAG_VALUE or not TAG_TEXT.match(value):
            yield _d(
                loc,
                "FS203",
                f"{what}: tag {key!r} value must be a string of at most "
                f"{MAX_TAG_VALUE} letters, digits, spaces or _.:/=+-@",
            )


def _params(loc: SourceLocation, what: str, tags: dict[str, str]) -> Iterator[Diagnostic]:
    if len(tags) > MAX_FEATURE_PARAMS:
        yield _d(
            loc,
            "FS203",
            f"{what} has {len(tags)} tags; SageMaker feature parameters "
            f"allow at most {MAX_FEATURE_PARAMS}",
        )
    for key, value in tags.items():
        for kind, text in (("key", key), ("value", value)):
            if (
                not isinstance(text, str)
                or not 1 <= len(text) <= MAX_PARAM_TEXT
                or not PARAM_TEXT.match(text)
            ):
                yield _d(
                    loc,
                    "FS203",
                    f"{what}: tag {kind} {text!r} must be 1-"
                    f"{MAX_PARAM_TEXT} letters, digits, spaces or _.:/=+-",
                )


def rule_types(spec: ProjectSpec) -> Iterator[Diagnostic]:
    for g in spec.groups:
        if g.event_time.dtype.is_collection or g.event_time.dtype.scalar is Scalar.INTEGRAL:
            yield _d(
                g.location,
                "FS110",
                f"event time {g.event_time.name!r} of group "
                f"{g.name!r} is {g.event_time.dtype}; it must be String (ISO-8601 UTC) "
                "or Fractional (epoch seconds)",
            )
        for key in g.entity.keys:
            if key.dtype.is_collection or key.dtype.scalar is Scalar.FRACTIONAL:
                yield _d(
                    g.entity.location,
                    "FS110",
                    f"entity key {key.name!r} is "
                    f"{key.dtype}; a record identifier must be String or Integral",
                )
        vectors = []
        for f in g.features:
            if f.return_annotation is None:
                yield _d(
                    f.location,
                    "FS107",
                    f"feature {f.name!r} has no return annotation",
                    hint=f"annotate it '-> {f.dtype.python_type}'",
                )
            elif not python_annotation_matches(f.dtype, f.return_annotation):
                yield _d(
                    f.location,
                    "FS107",
                    f"feature {f.name!r} is declared {f.dtype} but returns {f.return_annotation}",
                    hint=f"annotate it '-> {f.dtype.python_type}' or change its dtype",
                )
            if f.dtype.is_collection and g.online.enabled and g.online.storage != "InMemory":
                yield _d(
                    f.location,
                    "FS204",
                    f"feature {f.name!r} is {f.dtype}; SageMaker "
                    "supports collection types only in InMemory online stores",
                    hint="set online=Online(storage='InMemory') on the group",
                )
            if f.dtype.collection == "Vector":
                vectors.append(f)
                if (f.dtype.dimension or 0) > MAX_VECTOR_DIMENSION:
                    yield _d(
                        f.location,
                        "FS204",
                        f"feature {f.name!r}: vector dimension "
                        f"{f.dtype.dimension} exceeds {MAX_VECTOR_DIMENSION}",
                    )
        if len(vectors) > 1:
            yield _d(
                vectors[1].location,
                "FS204",
                f"group {g.name!r} has more than one "
                "Vector feature; an InMemory group may hold only one",
            )


def rule_metadata(spec: ProjectSpec) -> Iterator[Diagnostic]:
    for g in spec.groups:
        if not g.owner.strip():
            yield _d(
                g.location,
                "FS108",
                f"group {g.name!r} has no owner",
                hint="owner='team-name' says who answers for it",
            )
        if not g.description.strip():
            yield _d(g.location, "FS108", f"group {g.name!r} has no description")
        for f in g.features:
            if not f.description.strip():
                yield _d(
                    f.location,
                    "FS108",
                    f"feature {f.name!r} has no description",
                    hint="one line of business meaning, e.g. 'Average spend per month'",
                )
            yield from _pii(f.location, f.name, f.pii)
            if f.pii == "sensitive" and g.online.enabled and not g.allow_sensitive_online:
                yield _d(
                    f.location,
                    "FS208",
                    f"feature {f.name!r} is PII class 'sensitive' "
                    f"and group {g.name!r} has an online store",
                    hint="disable the online store or set allow_sensitive_online=True after review",
                )
    for od in spec.on_demand:
        if not od.description.strip():
            yield _d(od.location, "FS108", f"on-demand feature {od.name!r} has no description")
        yield from _pii(od.location, od.name, od.pii)
        yield from _on_demand_types(od)


def _pii(loc: SourceLocation, name: str, pii: str) -> Iterator[Diagnostic]:
    if pii not in PII_CLASSES:
        yield _d(
            loc,
            "FS112",
            f"feature {name!r}: PII class {pii!r} is not one of {', '.join(PII_CLASSES)}",
        )


def _on_demand_types(od: OnDemandSpec) -> Iterator[Diagnostic]:
    if od.return_annotation is None:
        yield _d(
            od.location,
            "FS107",
            f"on-demand feature {od.name!r} has no return annotation",
            hint=f"annotate it '-> {od.dtype.python_type}'",
        )
    elif not python_annotation_matches(od.dtype, od.return_annotation):
        yield _d(
            od.location,
            "FS107",
            f"on-demand feature {od.name!r} is declared "
            f"{od.dtype} but returns {od.return_annotation}",
        )


def rule_stores(spec: ProjectSpec) -> Iterator[Diagnostic]:
    for g in spec.groups:
        if not g.online.enabled and not g.offline.enabled:
            yield _d(
                g.location, "FS206", f"group {g.name!r} enables neither online nor offline store"
            )
        if g.online.ttl_seconds is not None and not g.online.enabled:
            yield _d(
                g.location, "FS205", f"group {g.name!r} sets an online TTL but has no online store"
            )
        if g.offline.s3_uri and not S3_URI.match(g.offline.s3_uri):
            yield _d(
                g.location,
                "FS207",
                f"group {g.name!r}: offline s3_uri {g.offline.s3_uri!r} is not an s3:// URI",
            )
        if g.offline.kms_key and not KMS_KEY.match(g.offline.kms_key):
            yield _d(
                g.location,
                "FS207",
                f"group {g.name!r}: KMS key {g.offline.kms_key!r} has characters SageMaker rejects",
            )
        tp = g.throughput
        if tp.mode == "Provisioned" and g.online.enabled and g.online.storage == "InMemory":
            yield _d(
                g.location,
                "FS206",
                f"group {g.name!r}: Provisioned throughput needs the Standard online store or "
                "none (InMemory is OnDemand only; SageMaker refuses the group)",
            )
        if tp.mode == "Provisioned":
            for what, units in (("read", tp.read_units), ("write", tp.write_units)):
                if units is None or not 1 <= units <= MAX_PROVISIONED_UNITS:
                    yield _d(
                        g.location,
                        "FS206",
                        f"group {g.name!r}: provisioned throughput "
                        f"needs {what}_units between 1 and {MAX_PROVISIONED_UNITS}",
                    )
        elif tp.read_units is not None or tp.write_units is not None:
            yield _d(
                g.location,
                "FS206",
                f"group {g.name!r}: capacity units are only for Provisioned throughput",
            )


def rule_feature_sets(spec: ProjectSpec) -> Iterator[Diagnostic]:
    groups = {g.name: g for g in spec.groups}
    for fs in spec.feature_sets:
        if not fs.items:
            yield _d(fs.location, "FS109", f"feature set {fs.name!r} has no features")
        yield from _set_columns(fs, groups)


def _set_columns(fs: FeatureSetSpec, groups: dict[str, GroupSpec]) -> Iterator[Diagnostic]:
    taken = {fs.label_time, *fs.labels}
    for cols in fs.keys.values():
        taken.update(cols)
    for item in fs.items:
        if item.column in taken:
            yield _d(
                fs.location,
                "FS109",
                f"feature set {fs.name!r}: feature column "
                f"{item.column!r} collides with a key, label or label-time column",
            )
    if fs.missing == "default":
        for item in fs.items:
            if item.column not in fs.defaults:
                yield _d(
                    fs.location,
                    "FS109",
                    f"feature set {fs.name!r}: missing='default' "
                    f"but no default for {item.column!r}",
                )
    for group in fs.keys:
        if group not in groups:
            yield _d(fs.location, "FS109", f"feature set {fs.name!r}: unknown group {group!r}")


def rule_aggregations(spec: ProjectSpec) -> Iterator[Diagnostic]:
    from fsgen.aggregation import rule_aggregations as rules

    yield from rules(spec)


# --------------------------------------------------------------------------- FeatureSet defaults

INT64 = (-(2**63), 2**63 - 1)


def default_problem(dtype: DType, value: object) -> str | None:
    """Why ``value`` cannot fill a missing value of a ``dtype`` column (None: it can).

    The loader asks this for every FeatureSet default (FS109) before the value reaches the spec:
    a wrong one would otherwise validate and then fail in ``fsgen dataset`` when Arrow fills the
    column, or (a list) crash building the spec."""
    if value is None:
        return None
    if dtype.is_collection:
        return (
            f"a default for a {dtype} feature is not supported (got {value!r}); "
            "only scalar features take one"
        )
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return f"{value!r} ({type(value).__name__}) is not a {dtype} value"
    if dtype.scalar is Scalar.STRING and not isinstance(value, str):
        return f"{value!r} is not a String value"
    if dtype.scalar is Scalar.FRACTIONAL and isinstance(value, str):
        return f"{value!r} is not a Fractional value (a number)"
    if dtype.scalar is Scalar.INTEGRAL:
        whole = isinstance(value, int) or (
            isinstance(value, float) and math.isfinite(value) and value.is_integer()
        )
        if not whole:
            return f"{value!r} is not an Integral value (a whole number)"
        if not INT64[0] <= int(value) <= INT64[1]:
            return f"{value!r} does not fit an Integral (64-bit) value"
    return None


def default_hint(dtype: DType) -> str:
    if dtype.is_collection:
        return "drop the default or set it to None (the value stays empty)"
    example = {
        Scalar.INTEGRAL: "an Integral value such as 0",
        Scalar.FRACTIONAL: "a Fractional value such as 0.0",
        Scalar.STRING: "a String value such as 'unknown'",
    }
    return f"give {example[dtype.scalar]}, or None to leave it empty"


RULES: tuple[Rule, ...] = (
    rule_aggregations,
    rule_names,
    rule_limits,
    rule_types,
    rule_metadata,
    rule_sources,
    rule_stores,
    rule_feature_sets,
    rule_global_names,
)


def validate(spec: ProjectSpec) -> list[Diagnostic]:
    """Every rule's diagnostics, in a stable order (path, line, code)."""
    found = [d for rule in RULES for d in rule(spec)]
    return sorted(set(found), key=Diagnostic.sort_key)
