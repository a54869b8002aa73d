"""The differ: a pure function from (desired, deployed) group states to a Plan.

Every changed property is classified by ONE table, :data:`RULES`, keyed by a field path pattern
(``*`` matches one feature name or tag key). A path the table does not know is REPLACE: when
fsgen cannot say that SageMaker changes something in place, it does not pretend it can.
Output order is the declaration order of groups and features, never a set's iteration order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fsgen.plan.model import (
    ChangeKind,
    CreateGroup,
    DeleteGroup,
    FeatureState,
    GroupState,
    JsonScalar,
    Plan,
    PropertyDiff,
    RecordTtlChange,
    ResourceChange,
    SetTags,
    Stage,
    UpdateFeatureMetadata,
    UpdateGroup,
)
from fsgen.sagemaker import (
    AGGREGATION_PARAM,
    STATE_PARAM,
    aggregation_parts,
    create_request,
    feature_additions_request,
    is_managed,
    metadata_requests,
    online_update_request,
    throughput_update_request,
)
from fsgen.ttl_history import TAG as TTL_HISTORY_TAG

K = ChangeKind
_STATE_RULE = f"features.*.parameters.{STATE_PARAM}"

#: field path -> how SageMaker carries out a change to it.
RULES: dict[str, ChangeKind] = {
    # identity of a group: fixed at CreateFeatureGroup
    "record_identifier": K.REPLACE,
    "event_time_feature": K.REPLACE,
    "features.*": K.REPLACE,  # a feature removed (SageMaker cannot drop one)
    "features.*.type": K.REPLACE,  # FeatureType / CollectionType are immutable
    "features.+": K.ADD_FEATURES,  # UpdateFeatureGroup FeatureAdditions
    # feature metadata: UpdateFeatureMetadata
    "features.*.description": K.METADATA,
    # an aggregation's state definition (fsgen.sagemaker.STATE_PARAM): recorded by
    # UpdateFeatureMetadata; the stored states are refused until a backfill rebuilds them
    _STATE_RULE: K.BACKFILL,
    "features.*.parameters.*": K.METADATA,
    "features.*.logic_hash": K.BACKFILL,  # recorded as a feature parameter; data is stale
    # online store
    "online_enabled": K.REPLACE,  # online store cannot be switched on or off
    "online_ttl_seconds": K.UPDATE,  # OnlineStoreConfigUpdate.TtlDuration (an empty
    # TtlDuration, Unit and Value null, removes it)
    "online_storage_type": K.UPDATE,  # OnlineStoreConfigUpdate.StorageType
    "online_kms_key": K.REPLACE,  # SecurityConfig is create-only
    # offline store: create-only
    "offline_enabled": K.REPLACE,
    "offline_s3_uri": K.REPLACE,
    "offline_table_format": K.REPLACE,
    "offline_kms_key": K.REPLACE,
    "offline_disable_glue_table_creation": K.REPLACE,
    "role_arn": K.REPLACE,
    # throughput: ThroughputConfigUpdate
    "throughput_mode": K.UPDATE,
    "throughput_read_units": K.UPDATE,
    "throughput_write_units": K.UPDATE,
    # Description can only be set by CreateFeatureGroup. Replacing a group (and dropping its
    # online data) for a description would be out of proportion, so a change is shown as a note
    # and not applied; it takes effect when the group is next created or replaced.
    "description": K.NOT_APPLIED,
    "tags.*": K.TAGS,  # AddTags / DeleteTags
    "status": K.REPLACE,  # a group left CreateFailed is recreated
}

FAILED_STATUSES = ("CreateFailed", "DeleteFailed")

MAX_FEATURE_ADDITIONS = 100

_SCALAR_FIELDS = (
    "record_identifier",
    "event_time_feature",
    "online_enabled",
    "online_ttl_seconds",
    "online_storage_type",
    "online_kms_key",
    "offline_enabled",
    "offline_s3_uri",
    "offline_table_format",
    "offline_kms_key",
    "offline_disable_glue_table_creation",
    "role_arn",
    "throughput_mode",
    "throughput_read_units",
    "throughput_write_units",
    "description",
)


def rule_for(path: str) -> tuple[str, ChangeKind]:
    """The rule that classifies ``path``; unknown paths are REPLACE."""
    if path in RULES:
        return path, RULES[path]
    parts = path.split(".")
    for pattern, kind in RULES.items():
        pat = pattern.split(".")
        if len(pat) == len(parts) and all(p in ("*", q) for p, q in zip(pat, parts, strict=True)):
            return pattern, kind
    return path, K.REPLACE


def _diff(path: str, old: object, new: object, *, rule: str | None = None) -> PropertyDiff:
    key, kind = rule_for(rule or path)
    return PropertyDiff(path=path, old=_json(old), new=_json(new), kind=kind, rule=key)


def _json(value: object) -> JsonScalar | list[str]:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def diff_group(desired: GroupState, deployed: GroupState) -> tuple[list[PropertyDiff], int]:
    """Every property difference, and how many features are unchanged."""
    diffs: list[PropertyDiff] = []
    for field in _SCALAR_FIELDS:
        old, new = getattr(deployed, field), getattr(desired, field)
        if old != new:
            diffs.append(_diff(field, old, new))
    if deployed.status in FAILED_STATUSES:
        diffs.append(_diff("status", deployed.status, "Created"))
    unchanged = 0
    for feature in desired.features:
        before = deployed.feature(feature.name)
        if before is None:
            diffs.append(_diff(f"features.{feature.name}", None, feature.type, rule="features.+"))
            continue
        feature_diffs = _feature_diffs(feature, before)
        diffs.extend(feature_diffs)
        unchanged += not feature_diffs
    declared = {f.name for f in desired.features}
    for before in deployed.features:
        if before.name not in declared:
            diffs.append(_diff(f"features.{before.name}", before.type, None))
    for key in sorted(set(deployed.tags) | set(desired.tags)):
        if key == TTL_HISTORY_TAG:
            continue  # kept by apply itself (a record of deployed state, not a definition)
        old, new = deployed.tags.get(key), desired.tags.get(key)
        if old != new:
            diffs.append(_diff(f"tags.{key}", old, new, rule="tags.*"))
    return diffs, unchanged


def _feature_diffs(feature: FeatureState, before: FeatureState) -> list[PropertyDiff]:
    base = f"features.{feature.name}"
    out: list[PropertyDiff] = []
    if feature.type != before.type:
        out.append(_diff(f"{base}.type", before.type, feature.type, rule="features.*.type"))
    if feature.description != before.description:
        out.append(
            _diff(
                f"{base}.description",
                before.description,
                feature.description,
                rule="features.*.description",
            )
        )
    for key in sorted(set(before.parameters) | set(feature.parameters)):
        old, new = before.parameters.get(key), feature.parameters.get(key)
        if old != new:
            # a tag key may hold dots, so the rule is named, not matched from the path
            rule = _STATE_RULE if key == STATE_PARAM else "features.*.parameters.*"
            out.append(_diff(f"{base}.parameters.{key}", old, new, rule=rule))
    if feature.logic_hash != before.logic_hash:
        out.append(
            _diff(
                f"{base}.logic_hash",
                before.logic_hash,
                feature.logic_hash,
                rule="features.*.logic_hash",
            )
        )
    return out


def plan_changes(
    desired: Sequence[GroupState],
    deployed: Mapping[str, GroupState],
    project: str,
    backend: str = "local",
) -> list[ResourceChange]:
    """Changes in declaration order, then destroys (sorted by name)."""
    changes: list[ResourceChange] = []
    for want in desired:
        have = deployed.get(want.name)
        if have is None:
            changes.append(ResourceChange(group=want.name, action="create", after=want))
            continue
        diffs, unchanged = diff_group(want, have)
        applied = tuple(d for d in diffs if d.kind is not K.NOT_APPLIED)
        notes = tuple(d for d in diffs if d.kind is K.NOT_APPLIED)
        if not applied:
            if notes:
                changes.append(
                    ResourceChange(
                        group=want.name,
                        action="update",
                        notes=notes,
                        unchanged_features=unchanged,
                        before=have,
                        after=want,
                    )
                )
            continue
        replace = any(d.kind is K.REPLACE for d in applied)
        backfill = tuple(d.path.split(".")[1] for d in applied if d.kind is K.BACKFILL)
        changes.append(
            ResourceChange(
                group=want.name,
                action="replace" if replace else "update",
                diffs=applied,
                notes=() if replace else notes,
                unchanged_features=unchanged,
                backfill_features=() if replace else backfill,
                data_loss=_loss(want.name, have, backend) if replace else None,
                before=have,
                after=want,
            )
        )
    declared = {s.name for s in desired}
    for name in sorted(deployed):
        if name not in declared and is_managed(deployed[name], project):
            changes.append(
                ResourceChange(
                    group=name,
                    action="destroy",
                    before=deployed[name],
                    data_loss=_loss(name, deployed[name], backend),
                )
            )
    return changes


def _loss(name: str, state: GroupState, backend: str = "local") -> str:
    parts = []
    if state.online_enabled:
        parts.append("its online store records are deleted")
    if state.offline_enabled:
        kept = "SageMaker leaves its S3 objects and Glue table" if backend == "aws" else "archived"
        parts.append(
            f"offline data is kept but no longer read ({kept}): training sets get no "
            "values from it until it is ingested again"
        )
    return "; ".join(parts) or "nothing is stored in this group"


def ttl_notes(changes: Sequence[ResourceChange]) -> list[str]:
    """What a TTL change does to stored records (plan warnings). SageMaker keeps the
    ExpiresAt each online record got at its write; fsgen does the same on every backend."""
    notes: list[str] = []
    for change in changes:
        if change.action != "update":
            continue
        for diff in change.diffs:
            if diff.path != "online_ttl_seconds":
                continue
            old = _duration(diff.old)
            new = _duration(diff.new)
            kept = (
                f"keep the ExpiresAt they were written with (EventTime + {old})"
                if diff.old is not None
                else "keep no ExpiresAt (they do not expire)"
            )
            later = f"expire after {new}" if diff.new is not None else "do not expire"
            notes.append(
                f"{change.group}: online TTL {old} -> {new}. Records already written {kept}; "
                f"new records {later}. Training sets (fsgen dataset, every engine) and the skew "
                "check judge each record by the TTL in force when it was written, which apply "
                f"records in the group's tag {TTL_HISTORY_TAG}, so training and serving agree; "
                f"re-ingesting (fsgen ingest {change.group} ...) re-stamps records with {new}."
            )
    return notes


def aggregation_notes(changes: Sequence[ResourceChange]) -> list[str]:
    """What a changed aggregation definition (hop, windows, lateness, function, value type,
    n, or the state format) does to the stored states (plan warnings), in words: the runtime
    refuses a state built for another definition, so until a backfill rebuilds them the group's
    records read as errors in fsgen get and serving, and the stream dead-letters its events.
    The group is updated in place and its offline event history, which the backfill reads, is
    kept."""
    notes: list[str] = []
    for change in changes:
        if change.action != "update" or change.before is None or change.after is None:
            continue
        for diff in change.diffs:
            if not diff.path.endswith(f".parameters.{STATE_PARAM}") or diff.new is None:
                continue
            column = diff.path.split(".")[1]
            name = column.removesuffix("__state")
            what = definition_change(change.before.feature(column), change.after.feature(column))
            notes.append(
                f"{change.group}: aggregation {name!r} changed: {what}. The states stored "
                "online were built for the old definition and are refused (fsgen get, "
                "serving and the stream report 'rebuild the states with a backfill') until a "
                f"backfill rebuilds them: after apply, fsgen backfill {change.group} (every "
                "entity's state from the offline event history, which is kept, also of "
                "entities only the stream wrote; on AWS, the generated batch job over the "
                "group's whole event history), then replay the stream's dead letters of that "
                f"time: fsgen stream replay {change.group} <dead-letter file> "
                "--from-dead-letter. Training sets compute from the events and are right at once."
            )
    return notes


#: the parts of an aggregation definition, in the order a plan names them
_DEFINITION_PARTS = ("function", "value", "windows", "hop", "lateness", "n", "distinct")


def definition_change(before: FeatureState | None, after: FeatureState | None) -> str:
    """``windows 1d,7d -> 1d,7d,30d; hop 1h -> 30m``: what changed between two state columns'
    recorded definitions (``fsgen:aggregation``), and which window features come and go."""

    def param(state: FeatureState | None, key: str) -> str | None:
        return None if state is None else state.parameters.get(key)

    old = aggregation_parts(param(before, AGGREGATION_PARAM))
    new = aggregation_parts(param(after, AGGREGATION_PARAM))
    if not old:
        now = ", ".join(f"{k} {_part(k, v)}" for k, v in new.items())
        return f"now {now} (the deployed group does not record its earlier definition)"
    words = [
        f"{key} {_part(key, old.get(key))} -> {_part(key, new.get(key))}"
        for key in _DEFINITION_PARTS
        if old.get(key) != new.get(key)
    ]
    formats = [(param(s, STATE_PARAM) or "").split(" definition")[0] for s in (before, after)]
    if formats[0] != formats[1]:
        words.append(f"state {formats[0] or 'format (none)'} -> {formats[1]}")
    state = after or before
    name = state.name.removesuffix("__state") if state else ""
    labels = [set(p.get("windows", "").split("/")) - {""} for p in (old, new)]
    gone = sorted(f"{name}_{w}" for w in labels[0] - labels[1])
    added = sorted(f"{name}_{w}" for w in labels[1] - labels[0])
    if gone:
        words.append(f"{_listed('feature', gone)} no longer served or in training sets")
    if added:
        words.append(f"{_listed('feature', added)} new")
    return "; ".join(words) or "its state definition"


def _part(key: str, value: str | None) -> str:
    if value is None:
        return "(none)"
    return value.replace("/", ",") if key == "windows" else value


def addition_notes(changes: Sequence[ResourceChange]) -> list[str]:
    """What adding features to a deployed group does to the records it holds (plan
    warnings): SageMaker's FeatureAdditions change the schema only, so every record already
    stored, online and offline, holds no value for an added feature until it is written again;
    an added aggregation starts from an empty state until a backfill fills it from the events."""
    from fsgen.sagemaker import STATE_PARAM

    notes: list[str] = []
    for change in changes:
        if change.action != "update" or change.before is None or change.after is None:
            continue
        added = [f for f in change.after.features if change.before.feature(f.name) is None]
        states = [f.name.removesuffix("__state") for f in added if STATE_PARAM in f.parameters]
        plain = [
            f.name
            for f in added
            if STATE_PARAM not in f.parameters
            and not any(f.name == f"{s}__value" for s in states)  # an aggregation's events
        ]
        group = change.group
        if plain:
            notes.append(
                f"{group}: {_listed('feature', plain)} added. Records already stored (online "
                "and offline) hold no value for "
                f"{'it' if len(plain) == 1 else 'them'}: fsgen get, serving and training sets "
                "give null until each record is written again (re-ingest its source: fsgen "
                f"ingest {group} ...)."
            )
        if states:
            notes.append(
                f"{group}: {_listed('aggregation', states)} added. The states stored online "
                f"hold no events for {'it' if len(states) == 1 else 'them'}: fsgen get, "
                "serving, training sets and the stream count only the events written after "
                f"apply until a backfill computes it for the stored events: fsgen ingest {group} "
                "<its event files> (the same files again: each event is recomputed, its "
                "earlier version retracted, none counted twice; then the states are rebuilt)."
            )
    return notes


def _listed(what: str, names: Sequence[str]) -> str:
    quoted = ", ".join(repr(n) for n in names)
    return f"{what} {quoted}" if len(names) == 1 else f"{what}s {quoted}"


def _duration(value: object) -> str:
    if isinstance(value, int):
        from fsgen.plan.render import duration

        return duration(value)
    return "no TTL" if value is None else str(value)


def stages_for(change: ResourceChange) -> list[Stage]:
    """The backend operations that carry out one change, in order."""
    name = change.group
    if change.action == "destroy":
        return [DeleteGroup(group=name)]
    assert change.after is not None
    if change.action in ("create", "replace"):
        stages: list[Stage] = [DeleteGroup(group=name)] if change.action == "replace" else []
        stages.append(CreateGroup(group=name, request=create_request(change.after)))
        stages.extend(_metadata_stages(change.after, None))
        return stages
    return _update_stages(change)


def _metadata_stages(after: GroupState, before: GroupState | None) -> list[Stage]:
    return [
        UpdateFeatureMetadata(group=after.name, request=request)
        for request in metadata_requests(after, before)
    ]


def _update_stages(change: ResourceChange) -> list[Stage]:
    after, before = change.after, change.before
    assert after is not None and before is not None
    kinds = {d.kind for d in change.diffs}
    stages: list[Stage] = []
    added = [f for f in after.features if before.feature(f.name) is None]
    for start in range(0, len(added), MAX_FEATURE_ADDITIONS):
        chunk = added[start : start + MAX_FEATURE_ADDITIONS]
        stages.append(
            UpdateGroup(group=after.name, request=feature_additions_request(after.name, chunk))
        )
    # UpdateFeatureGroup takes one of FeatureAdditions / OnlineStoreConfig / ThroughputConfig
    # at a time (API reference), so each is its own stage
    paths = {d.path for d in change.diffs if d.kind is K.UPDATE}
    online: list[Stage] = []
    if paths & {"online_ttl_seconds", "online_storage_type"}:
        online.append(UpdateGroup(group=after.name, request=online_update_request(after)))
    if "online_ttl_seconds" in paths:  # right after the update: its LastModifiedTime
        online.append(
            RecordTtlChange(
                group=after.name,
                old_seconds=before.online_ttl_seconds,
                new_seconds=after.online_ttl_seconds,
            )
        )
    throughput: list[Stage] = []
    if any(p.startswith("throughput_") for p in paths):
        throughput.append(UpdateGroup(group=after.name, request=throughput_update_request(after)))
    # SageMaker refuses Provisioned throughput with the InMemory tier, at every step: leave
    # Provisioned before the storage becomes InMemory, enter it after it is Standard again
    leaving = after.throughput_mode == "OnDemand"
    stages.extend([*throughput, *online] if leaving else [*online, *throughput])
    stages.extend(_metadata_stages(after, before))
    if K.TAGS in kinds:
        add = {k: v for k, v in after.tags.items() if before.tags.get(k) != v}
        remove = tuple(k for k in before.tags if k not in after.tags and k != TTL_HISTORY_TAG)
        stages.append(SetTags(group=after.name, add=add, remove=remove))
    return stages


def make_plan(
    desired: Sequence[GroupState],
    deployed: Mapping[str, GroupState],
    *,
    project: str,
    backend: str,
    state_fingerprint: str,
    spec_fingerprint: str,
    artifacts: Mapping[str, str] | Sequence[str] = (),
) -> Plan:
    """``artifacts``: the generated paths that change (a mapping gives each its mark: ``+``
    created, ``-`` removed, ``~`` changed)."""
    marks = artifacts if isinstance(artifacts, Mapping) else dict.fromkeys(artifacts, "~")
    changes = plan_changes(desired, deployed, project, backend)
    stages = [stage for change in changes for stage in stages_for(change)]
    return Plan(
        notes=(*ttl_notes(changes), *aggregation_notes(changes), *addition_notes(changes)),
        backend=backend,
        state_fingerprint=state_fingerprint,
        spec_fingerprint=spec_fingerprint,
        changes=tuple(changes),
        stages=tuple(stages),
        artifacts=tuple(marks),
        artifacts_created=tuple(p for p, m in marks.items() if m == "+"),
        artifacts_removed=tuple(p for p, m in marks.items() if m == "-"),
    )
