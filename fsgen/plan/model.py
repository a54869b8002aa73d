"""The data of a plan. Everything here is frozen; a Plan dumps to JSON and loads back equal, so
``fsgen plan --out`` / ``fsgen apply PLANFILE`` run exactly what was reviewed."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

PLAN_FORMAT_VERSION = 1

JsonScalar = str | int | float | bool | None


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FeatureState(Frozen):
    """One FeatureDefinition plus its feature metadata."""

    name: str
    type: str
    """``Integral``, ``Fractional``, ``String``, ``List(String)``, ``Vector(16)`` ..."""
    description: str = ""
    parameters: dict[str, str] = Field(default_factory=dict)
    """Feature parameters except fsgen's logic hash (which is ``logic_hash``)."""
    logic_hash: str | None = None


class GroupState(Frozen):
    """A feature group as SageMaker describes it, normalized so desired and deployed compare."""

    name: str
    record_identifier: str
    event_time_feature: str
    features: tuple[FeatureState, ...]
    online_enabled: bool
    online_ttl_seconds: int | None = None
    online_storage_type: str = "Standard"
    online_kms_key: str | None = None
    offline_enabled: bool
    offline_s3_uri: str | None = None
    offline_table_format: str = "Glue"
    offline_kms_key: str | None = None
    offline_disable_glue_table_creation: bool = False
    throughput_mode: str = "OnDemand"
    throughput_read_units: int | None = None
    throughput_write_units: int | None = None
    role_arn: str | None = None
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    status: str = "Created"

    def feature(self, name: str) -> FeatureState | None:
        return next((f for f in self.features if f.name == name), None)


class ChangeKind(StrEnum):
    """How a changed property is carried out; the rule table in ``plan.diff`` assigns them."""

    ADD_FEATURES = "add_features"
    """UpdateFeatureGroup FeatureAdditions (at most 100 a call)."""
    UPDATE = "update"
    """UpdateFeatureGroup OnlineStoreConfig (TTL, storage type) / ThroughputConfig."""
    METADATA = "metadata"
    """UpdateFeatureMetadata (feature description and parameters)."""
    TAGS = "tags"
    """AddTags / DeleteTags on the group."""
    BACKFILL = "backfill"
    """The transformation changed: the group stays, stored values need recomputing."""
    NOT_APPLIED = "not_applied"
    """SageMaker cannot change it and replacing would be out of proportion: shown, not applied."""
    REPLACE = "replace"
    """Needs a new feature group: delete, then create (loses the online store's records)."""


Action = Literal["create", "update", "replace", "destroy"]


class PropertyDiff(Frozen):
    path: str
    """``online_ttl_seconds``, ``features.age.type``, ``tags.domain`` ..."""
    old: JsonScalar | list[str] = None
    new: JsonScalar | list[str] = None
    kind: ChangeKind
    rule: str
    """The rule-table key that classified this diff."""


class ResourceChange(Frozen):
    group: str
    action: Action
    diffs: tuple[PropertyDiff, ...] = ()
    notes: tuple[PropertyDiff, ...] = ()
    """NOT_APPLIED diffs: shown in the plan, never executed."""
    unchanged_features: int = 0
    backfill_features: tuple[str, ...] = ()
    data_loss: str | None = None
    """What a replace or destroy loses, in plain words."""
    before: GroupState | None = None
    after: GroupState | None = None


class CreateGroup(Frozen):
    kind: Literal["create_group"] = "create_group"
    group: str
    request: dict[str, object]


class DeleteGroup(Frozen):
    kind: Literal["delete_group"] = "delete_group"
    group: str


class UpdateGroup(Frozen):
    kind: Literal["update_group"] = "update_group"
    group: str
    request: dict[str, object]


class UpdateFeatureMetadata(Frozen):
    kind: Literal["update_feature_metadata"] = "update_feature_metadata"
    group: str
    request: dict[str, object]


class SetTags(Frozen):
    kind: Literal["set_tags"] = "set_tags"
    group: str
    add: dict[str, str] = Field(default_factory=dict)
    remove: tuple[str, ...] = ()


class RecordTtlChange(Frozen):
    """Append the TTL change just applied (at the group's LastModifiedTime) to the group's tag
    ``fsgen:ttl-history`` (fsgen.ttl_history), which point-in-time datasets read."""

    kind: Literal["record_ttl_change"] = "record_ttl_change"
    group: str
    old_seconds: int | None
    new_seconds: int | None


Stage = Annotated[
    CreateGroup | DeleteGroup | UpdateGroup | UpdateFeatureMetadata | SetTags | RecordTtlChange,
    Field(discriminator="kind"),
]

DESTRUCTIVE_STAGES = ("delete_group",)


class Plan(Frozen):
    format_version: int = PLAN_FORMAT_VERSION
    backend: str
    state_fingerprint: str
    """Hash of the deployed state the plan was computed against; apply refuses when it moved."""
    spec_fingerprint: str
    """Hash of the definitions the plan was computed from."""
    changes: tuple[ResourceChange, ...] = ()
    stages: tuple[Stage, ...] = ()
    artifacts: tuple[str, ...] = ()
    """Generated files that ``fsgen apply`` (through ``fsgen generate``) rewrites."""
    artifacts_created: tuple[str, ...] = ()
    """those of ``artifacts`` that do not exist yet"""
    artifacts_removed: tuple[str, ...] = ()
    """those of ``artifacts`` no longer generated: apply removes them"""
    notes: tuple[str, ...] = ()

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def has_changes(self) -> bool:
        return bool(self.stages) or bool(self.artifacts)

    @property
    def destructive(self) -> bool:
        return any(s.kind in DESTRUCTIVE_STAGES for s in self.stages)

    @property
    def backfill(self) -> dict[str, tuple[str, ...]]:
        return {c.group: c.backfill_features for c in self.changes if c.backfill_features}
