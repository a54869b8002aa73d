"""The governance catalog as data: every group and feature with its type, owner, description,
PII class, tags, raw inputs (lineage through dependent features), transformation and logic
hash, and the feature sets that use it. ``catalog.json`` is this data; ``catalog.md`` renders it.
"""

from __future__ import annotations

from fsgen.spec import AggregationSpec, FeatureSpec, GroupSpec, ProjectSpec


def _users(spec: ProjectSpec) -> dict[str, list[str]]:
    """'group:feature' (or on-demand name) -> the feature sets using it, sorted."""
    users: dict[str, set[str]] = {}
    for fs in spec.feature_sets:
        for item in fs.items:
            users.setdefault(item.qualified, set()).add(fs.name)
        for item in fs.items:
            if item.kind == "on_demand":
                for _, ref in spec.on_demand_feature(item.name).stored_inputs:
                    users.setdefault(f"{ref.group}:{ref.feature}", set()).add(fs.name)
    return {k: sorted(v) for k, v in users.items()}


def raw_lineage(group: GroupSpec, feature: FeatureSpec) -> list[str]:
    """Raw input fields a feature reads, directly or through the features it depends on."""
    seen: set[str] = set()
    raw: set[str] = set()
    stack = [feature]
    while stack:
        current = stack.pop()
        if current.name in seen:
            continue
        seen.add(current.name)
        for ref in current.inputs:
            if ref.kind == "feature":
                stack.append(group.feature(ref.name))
            else:
                raw.add(ref.name)
    return sorted(raw)


def _feature(group: GroupSpec, f: FeatureSpec, users: dict[str, list[str]]) -> dict[str, object]:
    return {
        "name": f.name,
        "dtype": str(f.dtype),
        "description": f.description,
        "owner": group.owner,
        "pii": f.pii,
        "tags": dict(f.tags),
        "inputs": [{"name": i.name, "kind": i.kind} for i in f.inputs],
        "raw_inputs": raw_lineage(group, f),
        "transformation": {
            "function": f"{f.function.module}.{f.function.name}",
            "location": str(f.location),
            "source": f.source,
            "logic_hash": f.logic_hash,
        },
        "feature_sets": users.get(f"{group.name}:{f.name}", []),
    }


def _aggregation_features(
    group: GroupSpec, agg: AggregationSpec, users: dict[str, list[str]]
) -> list[dict[str, object]]:
    """One catalog feature per window of an aggregation, saying what it aggregates and how."""
    out: list[dict[str, object]] = []
    for window, name in zip(agg.windows, agg.feature_names, strict=True):
        how: dict[str, object] = {
            "function": agg.function,
            "window": window.label,
            "windows": [w.label for w in agg.windows],
            "hop_seconds": agg.hop_seconds,
            "lateness_seconds": agg.lateness_seconds,
            "n": agg.n,
            "distinct": agg.distinct,
            "value_dtype": str(agg.value_dtype),
            "state_column": agg.state_column,
            "value_column": agg.value_column,
        }
        span = "all events before T" if window.seconds is None else f"a {window.label} window"
        out.append(
            {
                "name": name,
                "dtype": str(agg.dtype),
                "description": f"{agg.description} ({agg.function} over {span}, hop "
                f"{agg.hop_seconds}s)",
                "owner": group.owner,
                "pii": agg.pii,
                "tags": dict(agg.tags),
                "inputs": [{"name": i.name, "kind": i.kind} for i in agg.inputs],
                "raw_inputs": sorted(i.name for i in agg.inputs if i.kind != "feature"),
                "transformation": {
                    "function": f"{agg.transform.module}.{agg.transform.name}",
                    "location": str(agg.location),
                    "source": agg.source,
                    "logic_hash": agg.logic_hash,
                },
                "feature_sets": users.get(f"{group.name}:{name}", []),
                "aggregation": how,
            }
        )
    return out


def catalog_data(spec: ProjectSpec) -> dict[str, object]:
    users = _users(spec)
    groups = []
    for g in spec.groups:
        groups.append(
            {
                "name": g.name,
                "description": g.description,
                "owner": g.owner,
                "tags": dict(g.tags),
                "entity": {
                    "name": g.entity.name,
                    "description": g.entity.description,
                    "keys": [{"name": k.name, "dtype": str(k.dtype)} for k in g.entity.keys],
                    "identifier": g.entity.identifier,
                },
                "event_time": {"name": g.event_time.name, "dtype": str(g.event_time.dtype)},
                "online": g.online.model_dump(mode="json"),
                "offline": {"enabled": g.offline.enabled, "table_format": g.offline.table_format},
                "max_staleness_seconds": g.max_staleness_seconds,
                "location": str(g.location),
                "hashes": {
                    "schema": g.schema_hash,
                    "logic": g.logic_hash,
                    "metadata": g.metadata_hash,
                },
                "raw_fields": [
                    {
                        "name": r.name,
                        "type": r.type,
                        "optional": r.optional,
                        "used_by": list(r.used_by),
                    }
                    for r in g.raw_fields
                ],
                "features": [
                    *(_feature(g, f, users) for f in g.features),
                    *(x for a in g.aggregations for x in _aggregation_features(g, a, users)),
                ],
            }
        )
    on_demand = [
        {
            "name": od.name,
            "dtype": str(od.dtype),
            "description": od.description,
            "pii": od.pii,
            "tags": dict(od.tags),
            "request_fields": [
                {"name": r.name, "type": r.type, "optional": r.optional} for r in od.request_fields
            ],
            "stored_inputs": [f"{ref.group}:{ref.feature}" for _, ref in od.stored_inputs],
            "transformation": {
                "function": f"{od.function.module}.{od.function.name}",
                "location": str(od.location),
                "source": od.source,
                "logic_hash": od.logic_hash,
            },
            "feature_sets": users.get(od.name, []),
        }
        for od in spec.on_demand
    ]
    feature_sets = [
        {
            "name": fs.name,
            "description": fs.description,
            "owner": fs.owner,
            "location": str(fs.location),
            "columns": [
                {"column": i.column, "kind": i.kind, "group": i.group, "feature": i.name}
                for i in fs.items
            ],
            "keys": {g: list(cols) for g, cols in fs.keys.items()},
            "label_time": fs.label_time,
            "labels": list(fs.labels),
            "missing": fs.missing,
            "defaults": dict(fs.defaults),
            "spec_hash": fs.spec_hash,
        }
        for fs in spec.feature_sets
    ]
    return {"groups": groups, "on_demand": on_demand, "feature_sets": feature_sets}
