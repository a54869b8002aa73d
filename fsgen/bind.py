"""Bind a spec to the live transformation functions: GroupRuntime from a GroupSpec.

Generated modules build the same GroupRuntime from a literal; :func:`group_runtime` is what
in-process paths (``fsgen ingest`` from Python, tests) use, and a test proves both equal.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from fsgen.runtime.pipeline import FeatureDef, FieldDef, GroupRuntime
from fsgen.spec import FunctionRef, GroupSpec


def resolve(ref: FunctionRef) -> Callable[..., object]:
    fn: Callable[..., object] = getattr(importlib.import_module(ref.module), ref.name)
    return fn


def group_runtime(group: GroupSpec) -> GroupRuntime:
    by_name = {f.name: f for f in group.features}
    features = tuple(
        FeatureDef(
            name=f.name,
            fn=resolve(f.function),
            kind=f.dtype.scalar.value,
            collection=f.dtype.collection,
            dimension=f.dtype.dimension,
            params=tuple((i.name, i.kind) for i in f.inputs),
        )
        for f in (by_name[n] for n in group.compute_order)
    )
    return GroupRuntime(
        name=group.name,
        identifier=group.entity.identifier,
        keys=tuple(k.name for k in group.entity.keys),
        event_time=group.event_time.name,
        event_time_kind=group.event_time.dtype.scalar.value,
        fields=tuple(FieldDef(r.name, r.type, r.optional) for r in group.raw_fields),
        features=features,
        columns=tuple(
            (n, t.scalar.value, t.collection, t.dimension) for n, t in group.stored_columns()
        ),
        ttl_seconds=group.online.ttl_seconds,
    )
