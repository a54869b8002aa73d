"""Validation rules over a ProjectSpec. Each rule yields Diagnostics with file:line.

Codes are stable: FS1xx definitions, FS2xx SageMaker limits (the numbers below are the ones in
botocore's service model for CreateFeatureGroup / UpdateFeatureMetadata; a test keeps them in
step with it).
"""

from __future__ import annotations

import builtins
import difflib
import dis
import math
import os
import re
import sys
import types
from collections.abc import Callable, Iterator

from fsgen.authoring import PII_CLASSES
from fsgen.errors import Diagnostic
from fsgen.spec import (
    FeatureSetSpec,
    FunctionRef,
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


# --------------------------------------------------------------------------- global names


def rule_global_names(spec: ProjectSpec) -> Iterator[Diagnostic]:
    """FS114: a name a transformation (or a helper of the definitions package it calls) reads
    as a global, which its module does not define and is no builtin: calling it would raise
    NameError during ingestion or serving. Reads the functions the loader imported."""
    seen: set[tuple[str, int, str]] = set()
    for what, ref, loc in _transformations(spec):
        fn = _function(ref)
        if fn is None:
            continue  # not importable at module level: FS104 says so
        root = _root_of(fn, loc)
        for helper, name, line in _unresolved(fn, spec.package):
            path = _relative(helper.__code__.co_filename, root)
            if (path, line, name) in seen:
                continue
            seen.add((path, line, name))
            used = what if helper is fn else f"helper {helper.__qualname__!r}, which {what} calls,"
            close = difflib.get_close_matches(name, _visible(helper), n=1, cutoff=0.75)
            yield Diagnostic(
                path=path,
                line=line,
                code="FS114",
                message=f"name {name!r} is not defined: {used} would raise NameError",
                hint=f"did you mean {close[0]!r}?"
                if close
                else f"import or define {name!r} in module {helper.__module__!r}",
            )


def _transformations(spec: ProjectSpec) -> Iterator[tuple[str, FunctionRef, SourceLocation]]:
    for g in spec.groups:
        for f in g.features:
            yield f"feature {f.name!r} of group {g.name!r}", f.function, f.location
    for od in spec.on_demand:
        yield f"on-demand feature {od.name!r}", od.function, od.location


def _function(ref: FunctionRef) -> types.FunctionType | None:
    fn = getattr(sys.modules.get(ref.module), ref.name, None)
    return fn if isinstance(fn, types.FunctionType) else None


def _root_of(fn: types.FunctionType, loc: SourceLocation) -> str | None:
    """The project root, from the feature's absolute file and its project-relative path."""
    file = fn.__code__.co_filename.replace(os.sep, "/")
    return file[: -len(loc.path)] if file.endswith("/" + loc.path) else None


def _relative(file: str, root: str | None) -> str:
    file = file.replace(os.sep, "/")
    return file[len(root) :] if root and file.startswith(root) else file


def _visible(fn: types.FunctionType) -> list[str]:
    """Names a misspelt one may have meant: the function's parameters and locals, its module's
    globals and the builtins."""
    names = {*fn.__code__.co_varnames, *fn.__globals__, *vars(builtins)}
    return sorted(n for n in names if not n.startswith("__"))


def _unresolved(
    fn: types.FunctionType, package: str
) -> Iterator[tuple[types.FunctionType, str, int]]:
    """(function, name, line) for each global read of ``fn`` and of the package's helpers it
    reaches that resolves to nothing."""
    todo, done = [fn], set()
    while todo:
        current = todo.pop(0)
        if current.__code__ in done:
            continue
        done.add(current.__code__)
        scope, available = current.__globals__, vars(builtins)
        loads = list(_global_loads(current.__code__))
        assigned = {name for name, _, store in loads if store}
        for name, line, store in loads:
            if store or name in assigned:
                continue
            if name not in scope and name not in available:
                yield current, name, line
            target = scope.get(name)
            if isinstance(target, types.FunctionType) and (
                target.__module__ == package or target.__module__.startswith(package + ".")
            ):
                todo.append(target)


def _global_loads(code: types.CodeType) -> Iterator[tuple[str, int, bool]]:
    """(name, line, is_store) of the global reads and writes in ``code`` and nested code."""
    line = code.co_firstlineno
    class_names: set[str] = set()
    for ins in dis.get_instructions(code):
        if ins.positions is not None and ins.positions.lineno is not None:
            line = ins.positions.lineno
        if ins.opname in ("STORE_GLOBAL", "DELETE_GLOBAL"):
            yield str(ins.argval), line, True
        elif ins.opname == "STORE_NAME":  # a class body's own names
            class_names.add(str(ins.argval))
        elif ins.opname == "LOAD_GLOBAL" or (
            ins.opname == "LOAD_NAME" and ins.argval not in class_names
        ):
            yield str(ins.argval), line, False
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _global_loads(const)


RULES: tuple[Rule, ...] = (
    rule_aggregations,
    rule_names,
    rule_limits,
    rule_types,
    rule_metadata,
    rule_stores,
    rule_feature_sets,
    rule_global_names,
)


def validate(spec: ProjectSpec) -> list[Diagnostic]:
    """Every rule's diagnostics, in a stable order (path, line, code)."""
    found = [d for rule in RULES for d in rule(spec)]
    return sorted(set(found), key=Diagnostic.sort_key)
