"""A group's schema, logic and metadata hashes (source locations excluded), aggregations
folded in."""

from __future__ import annotations

from fsgen.hashing import sha256_of
from fsgen.spec import GroupSpec


def with_group_hashes(g: GroupSpec) -> GroupSpec:
    """Fill the group's schema, logic and metadata hashes (locations excluded)."""
    schema = {
        "entity": g.entity.model_dump(mode="json", exclude={"location", "description"}),
        "event_time": g.event_time.model_dump(mode="json"),
        "columns": [[n, str(t)] for n, t in g.stored_columns()],
        "online": g.online.model_dump(mode="json"),
        "offline": g.offline.model_dump(mode="json"),
        "throughput": g.throughput.model_dump(mode="json"),
    }
    logic = {f.name: f.logic_hash for f in g.features}
    metadata = {
        "owner": g.owner,
        "description": g.description,
        "tags": g.tags,
        "max_staleness": g.max_staleness_seconds,
        "allow_sensitive": g.allow_sensitive_online,
        "entity_description": g.entity.description,
        "features": {
            f.name: {"description": f.description, "pii": f.pii, "tags": f.tags} for f in g.features
        },
    }
    return g.model_copy(
        update={
            "schema_hash": sha256_of(schema),
            "logic_hash": sha256_of(logic),
            "metadata_hash": sha256_of(metadata),
        }
    )


def with_aggregation_hashes(g: GroupSpec) -> GroupSpec:
    """Fold a group's aggregations into its three hashes (groups without any keep theirs)."""
    schema = [
        {
            "name": x.name,
            "function": x.function,
            "dtype": str(x.dtype),
            "value_dtype": str(x.value_dtype),
            "windows": [w.model_dump(mode="json") for w in x.windows],
            "hop": x.hop_seconds,
            "n": x.n,
            "distinct": x.distinct,
        }
        for x in g.aggregations
    ]
    logic = {x.name: [x.logic_hash, x.lateness_seconds] for x in g.aggregations}
    metadata = {
        x.name: {"description": x.description, "pii": x.pii, "tags": x.tags} for x in g.aggregations
    }
    return g.model_copy(
        update={
            "schema_hash": sha256_of({"group": g.schema_hash, "aggregations": schema}),
            "logic_hash": sha256_of({"group": g.logic_hash, "aggregations": logic}),
            "metadata_hash": sha256_of({"group": g.metadata_hash, "aggregations": metadata}),
        }
    )
