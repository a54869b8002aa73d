"""The one translation between fsgen's spec and SageMaker's request and response shapes.

``desired_state`` turns a GroupSpec into the comparable :class:`GroupState` (what the
definitions declare, in SageMaker's terms); ``from_sagemaker`` builds the same value from what a
backend reports (DescribeFeatureGroup, DescribeFeatureMetadata per feature, ListTags). The
request builders go from a GroupState to the bodies apply sends: CreateFeatureGroup,
UpdateFeatureGroup (feature additions, online store, throughput) and UpdateFeatureMetadata.

Codegen (``generated/groups/<g>/feature_group.json`` and ``cloudformation.json``), plan/apply
and the IAM policies all call :func:`create_feature_group_request` or the builders below, so
the request a reviewer approves in ``generated/`` is byte for byte the one apply sends to an
empty account. The local backend, ``fsgen serve`` and the AWS backend all speak these shapes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fsgen.config import ProjectConfig
from fsgen.plan.model import FeatureState, GroupState
from fsgen.runtime.aggregate import AggregationDef
from fsgen.spec import GroupSpec
from fsgen.types import DType

TAG_PREFIX = "fsgen:"
MANAGED_TAG = "fsgen:managed-by"
PROJECT_TAG = "fsgen:project"
LOGIC_PARAM = "fsgen:logic-hash"
PII_PARAM = "fsgen:pii"
STATE_PARAM = "fsgen:state-definition"
"""On an aggregation's state column: the state format and the definition fingerprint its
states are built for (``fsgen.runtime.aggregate``); a change means stored states are refused
until a backfill rebuilds them, which the plan warns about."""
AGGREGATION_PARAM = "fsgen:aggregation"
"""On an aggregation's state column, beside :data:`STATE_PARAM`: the definition its fingerprint
hashes, in words (``function=mean value=Fractional windows=1d/7d hop=1h lateness=0s``), so a plan
can say what changed (``windows 1d,7d -> 1d,7d,30d``), not only that a hash did. SageMaker's
parameter values allow no commas: windows are joined by ``/``."""
LOCAL_ROLE_ARN = "arn:aws:iam::000000000000:role/fsgen-local"
"""The RoleArn sent when ``[tool.fsgen.aws] role_arn`` is not set (the local backend and
``fsgen serve`` accept it; the aws backend refuses to plan without a real role)."""
LOCAL_BUCKET = "fsgen-local"

_TTL_UNITS = (("Weeks", 604800), ("Days", 86400), ("Hours", 3600), ("Minutes", 60), ("Seconds", 1))
_UNIT_SECONDS = dict(_TTL_UNITS)


def ttl_duration(seconds: int) -> dict[str, object]:
    """The largest whole SageMaker TtlDuration unit for ``seconds``."""
    for unit, size in _TTL_UNITS:
        if seconds % size == 0:
            return {"Unit": unit, "Value": seconds // size}
    raise AssertionError("unreachable: Seconds divides every int")


def ttl_seconds(duration: Mapping[str, object] | None) -> int | None:
    if not duration:
        return None
    return int(str(duration["Value"])) * _UNIT_SECONDS[str(duration["Unit"])]


def type_name(definition: Mapping[str, object]) -> str:
    """``Integral`` / ``List(String)`` / ``Vector(16)`` from a FeatureDefinition."""
    scalar = str(definition["FeatureType"])
    collection = definition.get("CollectionType")
    if not collection:
        return scalar
    if collection == "Vector":
        config = definition.get("CollectionConfig") or {}
        dim = config.get("VectorConfig", {}).get("Dimension") if isinstance(config, dict) else None
        return f"Vector({dim})"
    return f"{collection}({scalar})"


def definition_of(name: str, type_text: str) -> dict[str, object]:
    """The inverse of :func:`type_name`."""
    if "(" not in type_text:
        return {"FeatureName": name, "FeatureType": type_text}
    collection, inner = type_text[:-1].split("(", 1)
    if collection == "Vector":
        return {
            "FeatureName": name,
            "FeatureType": "Fractional",
            "CollectionType": "Vector",
            "CollectionConfig": {"VectorConfig": {"Dimension": int(inner)}},
        }
    return {"FeatureName": name, "FeatureType": inner, "CollectionType": collection}


def _type_text(dtype: DType) -> str:
    return type_name(dtype.sagemaker_definition("x"))


# --------------------------------------------------------------------------- spec -> state


def offline_s3_uri(group: GroupSpec, config: ProjectConfig) -> str:
    """The offline store's S3 URI: the group's, else ``[tool.fsgen.aws] offline_s3_uri``, else
    ``s3://fsgen-local/<project>`` (a placeholder the local backend accepts; configure a real
    bucket before applying to AWS)."""
    return (
        group.offline.s3_uri or config.aws.offline_s3_uri or f"s3://{LOCAL_BUCKET}/{config.project}"
    )


def managed_tags(group: GroupSpec, config: ProjectConfig) -> dict[str, str]:
    """The group's own tags plus fsgen's: owner, project identity and the three hashes."""
    tags = {
        **group.tags,
        MANAGED_TAG: "fsgen",
        PROJECT_TAG: config.project,
        "fsgen:owner": group.owner,
        "fsgen:schema-hash": group.schema_hash,
        "fsgen:logic-hash": group.logic_hash,
        "fsgen:metadata-hash": group.metadata_hash,
    }
    return dict(sorted(tags.items()))


def _features(group: GroupSpec) -> tuple[FeatureState, ...]:
    features: list[FeatureState] = []
    for name, dtype in group.stored_columns():
        try:
            f = group.feature(name)
        except KeyError:
            features.append(FeatureState(name=name, type=_type_text(dtype)))
            continue
        params = {**f.tags, PII_PARAM: f.pii}
        features.append(
            FeatureState(
                name=name,
                type=_type_text(dtype),
                description=f.description,
                parameters=dict(sorted(params.items())),
                logic_hash=f.logic_hash,
            )
        )
    features += _aggregation_features(group)
    return tuple(features)


def _aggregation_features(group: GroupSpec) -> list[FeatureState]:
    """An aggregation group's event and state columns (``GroupSpec.aggregation_columns``):
    each aggregation's value and state carry its description, PII class and logic hash."""
    owners = {a.value_column: a for a in group.aggregations}
    owners.update({a.state_column: a for a in group.aggregations})
    out: list[FeatureState] = []
    for name, dtype in group.aggregation_columns():
        agg = owners.get(name)
        if agg is None:
            out.append(FeatureState(name=name, type=_type_text(dtype)))
            continue
        what = "value" if name == agg.value_column else "state"
        params = {**agg.tags, PII_PARAM: agg.pii}
        if what == "state":
            params[STATE_PARAM] = state_definition(agg.runtime())
            params[AGGREGATION_PARAM] = aggregation_words(agg.runtime())
        out.append(
            FeatureState(
                name=name,
                type=_type_text(dtype),
                description=f"{agg.description} ({agg.function} {what})"[:255],
                parameters=dict(sorted(params.items())),
                logic_hash=agg.logic_hash,
            )
        )
    return out


def state_definition(definition: AggregationDef) -> str:
    """``format <version> definition <fingerprint>``: what the stored states must match."""
    from fsgen.runtime.aggregate import FORMAT_VERSION

    return f"format {FORMAT_VERSION} definition {definition.fingerprint}"


def aggregation_words(definition: AggregationDef) -> str:
    """The :data:`AGGREGATION_PARAM` value: each part of the definition the fingerprint hashes,
    as ``key=value`` separated by spaces (``aggregation_parts`` reads it back)."""
    from fsgen.runtime.aggdef import window_label

    def span(us: int) -> str:
        return window_label(us) if us else "0s"

    parts = {
        "function": definition.function,
        "value": definition.value_kind,
        "windows": "/".join(window_label(w) for w in definition.windows),
        "hop": span(definition.hop),
        "lateness": span(definition.lateness),
    }
    if definition.n is not None:
        parts["n"] = str(definition.n)
    if definition.distinct:
        parts["distinct"] = "true"
    return " ".join(f"{k}={v}" for k, v in parts.items())


def aggregation_parts(words: str | None) -> dict[str, str]:
    """:func:`aggregation_words` read back (empty for a group deployed without it)."""
    pairs = (part.partition("=") for part in (words or "").split())
    return {key: value for key, sep, value in pairs if sep}


def desired_state(group: GroupSpec, config: ProjectConfig) -> GroupState:
    """What the definitions declare for ``group``, in SageMaker's terms."""
    online, offline = group.online, group.offline
    return GroupState(
        name=group.name,
        record_identifier=group.identifier,
        event_time_feature=group.event_time.name,
        features=_features(group),
        online_enabled=online.enabled,
        online_ttl_seconds=online.ttl_seconds if online.enabled else None,
        online_storage_type=online.storage if online.enabled else "Standard",
        online_kms_key=config.aws.online_kms_key_id if online.enabled else None,
        offline_enabled=offline.enabled,
        offline_s3_uri=offline_s3_uri(group, config) if offline.enabled else None,
        offline_table_format=offline.table_format if offline.enabled else "Glue",
        offline_kms_key=(offline.kms_key or config.aws.kms_key_id) if offline.enabled else None,
        offline_disable_glue_table_creation=offline.disable_glue_table_creation,
        throughput_mode=group.throughput.mode,
        throughput_read_units=group.throughput.read_units,
        throughput_write_units=group.throughput.write_units,
        role_arn=(config.aws.role_arn or LOCAL_ROLE_ARN) if offline.enabled else None,
        description=group.description,
        tags=managed_tags(group, config),
    )


def create_feature_group_request(group: GroupSpec, config: ProjectConfig) -> dict[str, object]:
    """The CreateFeatureGroup request apply sends for ``group`` to an account without it: the
    body of ``generated/groups/<g>/feature_group.json``."""
    return create_request(desired_state(group, config))


# --------------------------------------------------------------------------- SageMaker -> state


def from_sagemaker(
    describe: Mapping[str, object],
    metadata: Mapping[str, Mapping[str, object]],
    tags: Sequence[Mapping[str, str]],
) -> GroupState:
    """A deployed group from DescribeFeatureGroup, DescribeFeatureMetadata and ListTags."""
    features = []
    for definition in describe["FeatureDefinitions"]:  # type: ignore[attr-defined]
        name = str(definition["FeatureName"])
        meta = metadata.get(name, {})
        params = {str(p["Key"]): str(p["Value"]) for p in meta.get("Parameters", []) or []}  # type: ignore[attr-defined]
        logic = params.pop(LOGIC_PARAM, None)
        features.append(
            FeatureState(
                name=name,
                type=type_name(definition),
                description=str(meta.get("Description", "") or ""),
                parameters=dict(sorted(params.items())),
                logic_hash=logic,
            )
        )
    online: Mapping[str, object] = describe.get("OnlineStoreConfig") or {}  # type: ignore[assignment]
    offline: Mapping[str, object] = describe.get("OfflineStoreConfig") or {}  # type: ignore[assignment]
    s3: Mapping[str, object] = offline.get("S3StorageConfig") or {}  # type: ignore[assignment]
    throughput: Mapping[str, object] = describe.get("ThroughputConfig") or {}  # type: ignore[assignment]
    online_on = bool(online.get("EnableOnlineStore", False))
    security: Mapping[str, object] = online.get("SecurityConfig") or {}  # type: ignore[assignment]
    return GroupState(
        name=str(describe["FeatureGroupName"]),
        record_identifier=str(describe["RecordIdentifierFeatureName"]),
        event_time_feature=str(describe["EventTimeFeatureName"]),
        features=tuple(features),
        online_enabled=online_on,
        online_ttl_seconds=ttl_seconds(online.get("TtlDuration")) if online_on else None,  # type: ignore[arg-type]
        online_storage_type=str(online.get("StorageType") or "Standard"),
        online_kms_key=_opt(security.get("KmsKeyId")),
        offline_enabled=bool(offline),
        offline_s3_uri=_opt(s3.get("S3Uri")),
        offline_table_format=str(offline.get("TableFormat") or "Glue"),
        offline_kms_key=_opt(s3.get("KmsKeyId")),
        offline_disable_glue_table_creation=bool(offline.get("DisableGlueTableCreation", False)),
        throughput_mode=str(throughput.get("ThroughputMode") or "OnDemand"),
        throughput_read_units=_opt_int(throughput.get("ProvisionedReadCapacityUnits")),
        throughput_write_units=_opt_int(throughput.get("ProvisionedWriteCapacityUnits")),
        role_arn=_opt(describe.get("RoleArn")),
        description=str(describe.get("Description") or ""),
        tags=dict(sorted((str(t["Key"]), str(t["Value"])) for t in tags)),
        status=str(describe.get("FeatureGroupStatus") or "Created"),
    )


def _opt(value: object) -> str | None:
    return None if value in (None, "") else str(value)


def _opt_int(value: object) -> int | None:
    return None if value in (None, "") else int(str(value))


# --------------------------------------------------------------------------- state -> requests


def online_config(state: GroupState) -> dict[str, object]:
    config: dict[str, object] = {"EnableOnlineStore": state.online_enabled}
    if state.online_enabled:
        config["StorageType"] = state.online_storage_type
        if state.online_ttl_seconds:
            config["TtlDuration"] = ttl_duration(state.online_ttl_seconds)
        if state.online_kms_key:
            config["SecurityConfig"] = {"KmsKeyId": state.online_kms_key}
    return config


def throughput_config(state: GroupState) -> dict[str, object]:
    config: dict[str, object] = {"ThroughputMode": state.throughput_mode}
    if state.throughput_mode == "Provisioned":
        config["ProvisionedReadCapacityUnits"] = state.throughput_read_units or 0
        config["ProvisionedWriteCapacityUnits"] = state.throughput_write_units or 0
    return config


def create_request(state: GroupState) -> dict[str, object]:
    """The CreateFeatureGroup request for ``state`` (feature metadata follows separately)."""
    request: dict[str, object] = {
        "FeatureGroupName": state.name,
        "RecordIdentifierFeatureName": state.record_identifier,
        "EventTimeFeatureName": state.event_time_feature,
        "FeatureDefinitions": [definition_of(f.name, f.type) for f in state.features],
        "OnlineStoreConfig": online_config(state),
        "ThroughputConfig": throughput_config(state),
    }
    if state.offline_enabled:
        s3: dict[str, object] = {"S3Uri": state.offline_s3_uri}
        if state.offline_kms_key:
            s3["KmsKeyId"] = state.offline_kms_key
        request["OfflineStoreConfig"] = {
            "S3StorageConfig": s3,
            "DisableGlueTableCreation": state.offline_disable_glue_table_creation,
            "TableFormat": state.offline_table_format,
        }
        request["RoleArn"] = state.role_arn
    if state.description:
        request["Description"] = state.description
    if state.tags:
        request["Tags"] = [{"Key": k, "Value": v} for k, v in state.tags.items()]
    return request


def feature_additions_request(group: str, features: Sequence[FeatureState]) -> dict[str, object]:
    """UpdateFeatureGroup adding ``features`` (SageMaker takes at most 100 a call)."""
    return {
        "FeatureGroupName": group,
        "FeatureAdditions": [definition_of(f.name, f.type) for f in features],
    }


def online_update_request(state: GroupState) -> dict[str, object]:
    """UpdateFeatureGroup setting the online store's storage type and TTL to ``state``'s (an
    empty TtlDuration removes the TTL)."""
    ttl = ttl_duration(state.online_ttl_seconds) if state.online_ttl_seconds else {}
    return {
        "FeatureGroupName": state.name,
        "OnlineStoreConfig": {"StorageType": state.online_storage_type, "TtlDuration": ttl},
    }


def throughput_update_request(state: GroupState) -> dict[str, object]:
    """UpdateFeatureGroup setting the throughput mode and capacity to ``state``'s."""
    return {"FeatureGroupName": state.name, "ThroughputConfig": throughput_config(state)}


def metadata_request(
    group: str, feature: FeatureState, before: FeatureState | None = None
) -> dict[str, object] | None:
    """The UpdateFeatureMetadata request taking ``before`` to ``feature`` (None: nothing to do)."""
    old_params = dict(before.parameters) if before else {}
    if before and before.logic_hash:
        old_params[LOGIC_PARAM] = before.logic_hash
    new_params = dict(feature.parameters)
    if feature.logic_hash:
        new_params[LOGIC_PARAM] = feature.logic_hash
    request: dict[str, object] = {"FeatureGroupName": group, "FeatureName": feature.name}
    if feature.description != (before.description if before else ""):
        request["Description"] = feature.description
    additions = [
        {"Key": k, "Value": v} for k, v in sorted(new_params.items()) if old_params.get(k) != v
    ]
    removals = sorted(k for k in old_params if k not in new_params)
    if additions:
        request["ParameterAdditions"] = additions
    if removals:
        request["ParameterRemovals"] = removals
    return request if len(request) > 2 else None


def metadata_requests(
    state: GroupState, before: GroupState | None = None
) -> list[dict[str, object]]:
    """Every UpdateFeatureMetadata request taking ``before`` (None: a new group) to ``state``."""
    out = []
    for feature in state.features:
        old = before.feature(feature.name) if before else None
        request = metadata_request(state.name, feature, old)
        if request is not None:
            out.append(request)
    return out


def is_managed(state: GroupState, project: str) -> bool:
    """Whether fsgen manages ``state`` for the project whose identity is ``project``."""
    return state.tags.get(MANAGED_TAG) == "fsgen" and state.tags.get(PROJECT_TAG) == project
