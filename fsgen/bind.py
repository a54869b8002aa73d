"""The one binder: spec -> runtime declarations (:class:`GroupRuntime`,
:class:`FeatureSetRuntime`, :class:`OnDemandDef`).

Every path builds them here: in-process ones (``fsgen ingest``, the stream fallback, the
dataset builder's on-demand features) with the live functions (``fn=resolve``), code
generation with a reference to each function (``fn=`` a code placeholder), which
:func:`fsgen.codegen.pyfmt.declaration` renders as the literal of
``generated/groups/<g>/runtime.py`` and of each parser. So the generated literal and the bound
runtime cannot disagree: they are the same value with the functions bound differently.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fsgen.runtime.aggwrite import AggregationRuntime
from fsgen.runtime.inference import Column, FeatureSetRuntime, GroupReader, OnDemandDef
from fsgen.runtime.pipeline import FeatureDef, FieldDef, GroupRuntime
from fsgen.spec import FeatureSetSpec, FunctionRef, GroupSpec, OnDemandSpec, ProjectSpec
from fsgen.types import DType, Scalar

if TYPE_CHECKING:
    from fsgen.config import ProjectConfig

Bind = Callable[[FunctionRef], Any]
"""how a function reference becomes the ``fn`` of a declaration"""


def resolve(ref: FunctionRef) -> Callable[..., object]:
    fn: Callable[..., object] = getattr(importlib.import_module(ref.module), ref.name)
    return fn


def group_runtime(group: GroupSpec, fn: Bind = resolve) -> GroupRuntime:
    """An aggregation group's runtime computes each aggregation's value ``<name>__value``
    (its function, as a feature) and has every FeatureDefinition of the group as columns:
    the event rows' and the state records' (``GroupSpec.aggregation_columns``)."""
    by_name = {f.name: f for f in group.features}
    features = tuple(
        FeatureDef(
            name=f.name,
            fn=fn(f.function),
            kind=f.dtype.scalar.value,
            collection=f.dtype.collection,
            dimension=f.dtype.dimension,
            params=tuple((i.name, i.kind) for i in f.inputs),
        )
        for f in (by_name[n] for n in group.compute_order)
    )
    features += tuple(
        FeatureDef(
            name=a.value_column,
            fn=fn(a.transform),
            kind=a.value_dtype.scalar.value,
            params=tuple((i.name, i.kind) for i in a.inputs),
        )
        for a in group.aggregations
    )
    columns = [*group.stored_columns(), *group.aggregation_columns()]
    return GroupRuntime(
        name=group.name,
        identifier=group.entity.identifier,
        keys=tuple(k.name for k in group.entity.keys),
        event_time=group.event_time.name,
        event_time_kind=group.event_time.dtype.scalar.value,
        fields=tuple(FieldDef(r.name, r.type, r.optional) for r in group.raw_fields),
        features=features,
        columns=tuple((n, t.scalar.value, t.collection, t.dimension) for n, t in columns),
        ttl_seconds=group.online.ttl_seconds,
    )


def aggregation_runtime(group: GroupSpec, fn: Bind = resolve) -> AggregationRuntime:
    """An aggregation group's runtime and its aggregations' definitions (the write step's)."""
    return AggregationRuntime(
        group_runtime(group, fn), tuple(a.runtime() for a in group.aggregations)
    )


def on_demand_def(od: OnDemandSpec, fn: Bind = resolve) -> OnDemandDef:
    return OnDemandDef(
        name=od.name,
        fn=fn(od.function),
        kind=od.dtype.scalar.value,
        collection=od.dtype.collection,
        request=tuple(FieldDef(r.name, r.type, r.optional) for r in od.request_fields),
        stored=tuple((p, ref.group, ref.feature) for p, ref in od.stored_inputs),
    )


def _raw_for(dtype: DType) -> str:
    return {Scalar.INTEGRAL: "int", Scalar.FRACTIONAL: "float", Scalar.STRING: "str"}[dtype.scalar]


def typed_default(dtype: DType, value: object) -> object:
    """A default in the column's own type (Fractional 0 -> 0.0), as datasets fill it."""
    if value is None or dtype.is_collection:
        return value
    if dtype.scalar is Scalar.FRACTIONAL and isinstance(value, int | float):
        return float(value)
    if dtype.scalar is Scalar.INTEGRAL and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def feature_set_runtime(
    spec: ProjectSpec, fs: FeatureSetSpec, fn: Bind = resolve
) -> FeatureSetRuntime:
    dtypes: dict[str, DType] = {}
    on_demand: list[OnDemandSpec] = []
    for item in fs.items:
        if item.kind == "on_demand":
            od = spec.on_demand_feature(item.name)
            on_demand.append(od)
            dtypes[item.column] = od.dtype
        else:
            dtypes[item.column] = spec.group(item.group or "").output(item.name).dtype
    readers = []
    for gname, cols in fs.keys.items():
        g = spec.group(gname)
        named = {item.name for item in fs.items if item.group == gname}
        aggregations = tuple(a.runtime() for a in g.aggregations if named & set(a.feature_names))
        stored = [(n, t.scalar.value, t.collection) for n, t in g.stored_columns()]
        stored += [(d.state_column, "String", None) for d in aggregations]
        readers.append(
            GroupReader(
                name=g.name,
                identifier=g.entity.identifier,
                keys=tuple(
                    (c, k.name, _raw_for(k.dtype)) for c, k in zip(cols, g.entity.keys, strict=True)
                ),
                event_time=g.event_time.name,
                event_time_kind=g.event_time.dtype.scalar.value,
                columns=tuple(stored),
                ttl_seconds=None if g.aggregations else g.online.ttl_seconds,
                max_age_seconds=None if g.aggregations else fs.ttl_seconds,
                aggregations=aggregations,
            )
        )
    columns = tuple(
        Column(
            name=item.column,
            kind=item.kind,
            group=item.group,
            feature=item.name,
            default=typed_default(dtypes[item.column], fs.defaults.get(item.column)),  # type: ignore[arg-type]
        )
        for item in fs.items
    )
    return FeatureSetRuntime(
        name=fs.name,
        columns=columns,
        groups=tuple(readers),
        on_demand=tuple(on_demand_def(od, fn) for od in on_demand),
        missing=fs.missing,
    )


# ------------------------------------------------------------------------ generated runtimes


def package_name(name: str) -> str:
    """The Python package of a group or feature set ('customer-features' ->
    'customer_features')."""
    text = re.sub(r"[^0-9a-zA-Z_]", "_", name).lower()
    return f"_{text}" if text[:1].isdigit() else text


def generated_runtime(
    config: ProjectConfig, spec: ProjectSpec, group: str
) -> tuple[GroupRuntime, str]:
    """The group's generated runtime (``generated/groups/<g>/runtime.py``) when it exists
    and matches the definitions, else the one bound from the spec; with a note saying which
    (and why) for the user."""
    bound = group_runtime(spec.group(group))
    from fsgen.generated_imports import (
        STALE_IMPORT,
        generated_module_name,
        import_generated,
        missing,
    )

    module_name = generated_module_name(config, f"groups.{package_name(group)}.runtime")
    stale = f"{module_name} is stale (run 'fsgen generate'); using the definitions directly"
    try:
        module = import_generated(config, f"groups.{package_name(group)}.runtime")
    except STALE_IMPORT as exc:  # not generated yet, or it names a function renamed since
        if isinstance(exc, ImportError) and missing(exc, module_name):
            return bound, "generated runtime not found; using the definitions directly"
        return bound, stale
    generated = getattr(module, "RUNTIME", None)
    if not isinstance(generated, GroupRuntime):
        return bound, f"{module_name} has no RUNTIME; using the definitions directly"
    if generated != bound:
        return bound, stale
    path = f"{config.generated_dir}/groups/{package_name(group)}/runtime.py"
    return generated, f"running {module_name} ({path}, up to date with the definitions)"
