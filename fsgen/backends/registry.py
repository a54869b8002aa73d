"""The deployed feature groups of the local store, kept in SageMaker's own shapes.

:class:`Registry` implements SageMaker's feature-group control plane (CreateFeatureGroup,
DescribeFeatureGroup, UpdateFeatureGroup, DeleteFeatureGroup, UpdateFeatureMetadata,
DescribeFeatureMetadata, ListFeatureGroups, AddTags, ListTags, DeleteTags) over a JSON file,
``<store>/registry.json``. Requests and responses are the dicts of the API reference, errors
are :class:`ApiError` with AWS's error codes. The local backend calls it in process and
``fsgen serve`` exposes it over HTTP, so both see one registry and one set of rules.

Writes are read-modify-write under a thread lock plus an exclusive ``fcntl`` lock on
``registry.lock`` and land atomically (temp file + ``os.replace``): concurrent processes never
see a half-written registry.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import fcntl
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REGISTRY_FORMAT = 1
NAME_RE = re.compile(r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$")
RESERVED_FEATURES = ("is_deleted", "write_time", "api_invocation_time")
FEATURE_TYPES = ("Integral", "Fractional", "String")
COLLECTION_TYPES = ("List", "Set", "Vector")
TTL_UNITS = ("Seconds", "Minutes", "Hours", "Days", "Weeks")
MAX_FEATURES = 2500
MAX_ADDITIONS = 100

Request = dict[str, Any]
_REGION: contextvars.ContextVar[str | None] = contextvars.ContextVar("fsgen_region", default=None)


class ApiError(Exception):
    """An error in AWS's shape: ``code`` becomes the ClientError code boto3 raises."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def _validation(message: str) -> ApiError:
    return ApiError("ValidationException", message)


def _not_found(name: str) -> ApiError:
    return ApiError("ResourceNotFound", f"Resource Not Found: FeatureGroup {name} not found.")


class Registry:
    """SageMaker's feature-group control plane over ``<store>/registry.json``."""

    def __init__(
        self,
        store_path: Path,
        *,
        region: str = "us-east-1",
        account: str = "000000000000",
        creating_polls: int = 0,
        on_delete: Callable[[str], None] | None = None,
        on_create: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.store_path = store_path
        self.path = store_path / "registry.json"
        self.region = region
        self.account = account
        self.creating_polls = creating_polls
        self._creating: dict[str, int] = {}
        """name -> DescribeFeatureGroup calls left that still report Creating (in memory)"""
        self.on_delete = on_delete
        self.on_create = on_create
        """called with a new group's description before it is stored (a failure refuses it)"""
        self._lock = threading.RLock()
        self._cache: tuple[float, int, dict[str, Any]] | None = None

    # -- storage ---------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return {"format_version": REGISTRY_FORMAT, "groups": {}}
        key = (stat.st_mtime, stat.st_size)
        if self._cache is not None and self._cache[:2] == key:
            return self._cache[2]
        data = json.loads(self.path.read_text(encoding="utf-8"))
        if data.get("format_version") != REGISTRY_FORMAT:
            raise ApiError("InternalFailure", f"{self.path}: unknown registry format", 500)
        self._cache = (key[0], key[1], data)
        return data

    def snapshot(self) -> dict[str, Any]:
        """A read-only view of every group (no lock: writes are atomic replaces)."""
        with self._lock:
            return self._load()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[dict[str, Any]]:
        self.store_path.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.store_path / "registry.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._cache = None
                data = copy.deepcopy(self._load())
                yield data
                tmp = self.path.with_name(".registry.json.tmp")
                tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
                os.replace(tmp, self.path)
                self._cache = None
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @property
    def request_region(self) -> str:
        """The region of the request being served (its credential scope), else the
        configured one."""
        return _REGION.get() or self.region

    def arn(self, name: str) -> str:
        region = self.request_region
        return f"arn:aws:sagemaker:{region}:{self.account}:feature-group/{name.lower()}"

    def _group(self, data: dict[str, Any], name: object) -> dict[str, Any]:
        if not isinstance(name, str) or name not in data["groups"]:
            raise _not_found(str(name))
        return data["groups"][name]  # type: ignore[no-any-return]

    def _status(self, entry: dict[str, Any], *, poll: bool = False) -> str:
        """``Creating`` for the first ``creating_polls`` describes after a create (so waiting
        code meets the status SageMaker reports for a while), then the stored status."""
        name = entry["description"]["FeatureGroupName"]
        left = self._creating.get(name, 0)
        if left > 0:
            if poll:
                self._creating[name] = left - 1
            return "Creating"
        return str(entry["description"]["FeatureGroupStatus"])

    # -- operations ------------------------------------------------------------------------
    def call(self, operation: str, request: Request, *, region: str | None = None) -> Request:
        """Run ``operation``; ``region`` (a request's credential scope) goes into new ARNs."""
        handler = OPERATIONS.get(operation)
        if handler is None:
            raise ApiError(
                "UnknownOperationException",
                f"Operation {operation} is not supported by fsgen serve",
            )
        token = _REGION.set(region)
        try:
            return handler(self, request)
        finally:
            _REGION.reset(token)

    def create_feature_group(self, request: Request) -> Request:
        name = _required(request, "FeatureGroupName")
        _check_create(request)
        with self._transaction() as data:
            if name in data["groups"]:
                raise ApiError(
                    "ResourceInUse",
                    f"Resource Already Exists: FeatureGroup with "
                    f"name {name} already exists. Choose a different name.",
                )
            now = time.time()
            description: Request = {
                "FeatureGroupArn": self.arn(name),
                "FeatureGroupName": name,
                "RecordIdentifierFeatureName": request["RecordIdentifierFeatureName"],
                "EventTimeFeatureName": request["EventTimeFeatureName"],
                "FeatureDefinitions": request["FeatureDefinitions"],
                "CreationTime": now,
                "LastModifiedTime": now,
                "OnlineStoreConfig": request.get("OnlineStoreConfig", {"EnableOnlineStore": False}),
                "ThroughputConfig": request.get("ThroughputConfig", {"ThroughputMode": "OnDemand"}),
                "FeatureGroupStatus": "Created",
            }
            if "OfflineStoreConfig" in request:
                offline = copy.deepcopy(request["OfflineStoreConfig"])
                s3 = offline["S3StorageConfig"]
                s3["ResolvedOutputS3Uri"] = (
                    f"{s3['S3Uri'].rstrip('/')}/{self.account}/sagemaker/{self.request_region}/"
                    f"offline-store/{name}-{int(now)}/data"
                )
                offline.setdefault("TableFormat", "Glue")
                if not offline.get("DisableGlueTableCreation"):
                    offline["DataCatalogConfig"] = {
                        "TableName": f"{name.replace('-', '_')}_{int(now)}",
                        "Catalog": "AwsDataCatalog",
                        "Database": "sagemaker_featurestore",
                    }
                description["OfflineStoreConfig"] = offline
                description["OfflineStoreStatus"] = {"Status": "Active"}
            for key in ("RoleArn", "Description"):
                if key in request:
                    description[key] = request[key]
            if self.on_create is not None:
                self.on_create(description)
            data["groups"][name] = {
                "description": description,
                "metadata": {},
                "tags": list(request.get("Tags", [])),
            }
            self._creating[name] = self.creating_polls
        return {"FeatureGroupArn": description["FeatureGroupArn"]}

    def describe_feature_group(self, request: Request) -> Request:
        with self._lock:
            entry = self._group(self._load(), request.get("FeatureGroupName"))
            out = copy.deepcopy(entry["description"])
        with self._lock:
            out["FeatureGroupStatus"] = self._status(entry, poll=True)
        out["OnlineStoreTotalSizeBytes"] = 0
        return out

    def update_feature_group(self, request: Request) -> Request:
        name = _required(request, "FeatureGroupName")
        with self._transaction() as data:
            entry = self._group(data, name)
            desc = entry["description"]
            if self._status(entry) != "Created":
                raise ApiError(
                    "ResourceInUse",
                    f"FeatureGroup {name} is {self._status(entry)}; wait until it is Created.",
                )
            given = [k for k in UPDATE_PARAMETERS if request.get(k) is not None]
            if len(given) > 1:  # the API reference: one of them at a time
                names = ", ".join(UPDATE_PARAMETERS)
                raise _validation(f"Use one of {names} at a time (got {' and '.join(given)})")
            additions = request.get("FeatureAdditions") or []
            if len(additions) > MAX_ADDITIONS:
                raise _validation(f"FeatureAdditions: at most {MAX_ADDITIONS} features per call")
            existing = {d["FeatureName"] for d in desc["FeatureDefinitions"]}
            added: set[str] = set()
            for definition in additions:
                _check_definition(definition)
                feature = definition["FeatureName"]
                if feature in added:
                    raise _validation(f"Duplicate FeatureName '{feature}' in FeatureAdditions")
                if feature in existing:
                    raise _validation(f"Feature {feature} already exists in FeatureGroup {name}")
                existing.add(feature)
                added.add(feature)
            if len(existing) > MAX_FEATURES:
                raise ApiError("ResourceLimitExceeded", f"at most {MAX_FEATURES} features")
            desc["FeatureDefinitions"] = [*desc["FeatureDefinitions"], *additions]
            online_update = request.get("OnlineStoreConfig")
            if online_update:
                online = desc["OnlineStoreConfig"]
                if not online.get("EnableOnlineStore"):
                    raise _validation(f"FeatureGroup {name} has no online store to update")
                ttl = online_update.get("TtlDuration")
                if ttl is not None and ttl.get("Unit") is None and ttl.get("Value") is None:
                    online.pop("TtlDuration", None)  # Unit and Value null: remove the TTL
                elif ttl is not None:
                    _check_ttl(ttl)
                    online["TtlDuration"] = ttl
                if "StorageType" in online_update:
                    online["StorageType"] = online_update["StorageType"]
            if request.get("ThroughputConfig"):
                # ThroughputConfigUpdate changes what it names; a switch to OnDemand drops
                # the capacity units, which apply to Provisioned only
                before = desc.get("ThroughputConfig") or {"ThroughputMode": "OnDemand"}
                merged = {**before, **request["ThroughputConfig"]}
                if merged.get("ThroughputMode") == "OnDemand":
                    merged = {"ThroughputMode": "OnDemand"}
                desc["ThroughputConfig"] = merged
            _check_throughput(desc["ThroughputConfig"], desc["OnlineStoreConfig"])
            desc["LastModifiedTime"] = time.time()
            desc["FeatureGroupStatus"] = "Created"
            desc["LastUpdateStatus"] = {"Status": "Successful"}
        return {"FeatureGroupArn": desc["FeatureGroupArn"]}

    def delete_feature_group(self, request: Request) -> Request:
        name = _required(request, "FeatureGroupName")
        with self._transaction() as data:
            self._group(data, name)
            if self.on_delete is not None:
                self.on_delete(name)
            del data["groups"][name]
            self._creating.pop(name, None)
        return {}

    def update_feature_metadata(self, request: Request) -> Request:
        name = _required(request, "FeatureGroupName")
        feature = _required(request, "FeatureName")
        with self._transaction() as data:
            entry = self._group(data, name)
            definitions = entry["description"]["FeatureDefinitions"]
            if feature not in {d["FeatureName"] for d in definitions}:
                raise _not_found(f"{name} feature {feature}")
            meta = entry["metadata"].setdefault(feature, {"Parameters": []})
            if "Description" in request:
                meta["Description"] = request["Description"]
            params = {p["Key"]: p["Value"] for p in meta["Parameters"]}
            for key in request.get("ParameterRemovals", []):
                params.pop(key, None)
            for p in request.get("ParameterAdditions", []):
                params[p["Key"]] = p["Value"]
            meta["Parameters"] = [{"Key": k, "Value": v} for k, v in sorted(params.items())]
            meta["LastModifiedTime"] = time.time()
        return {}

    def describe_feature_metadata(self, request: Request) -> Request:
        name = _required(request, "FeatureGroupName")
        feature = _required(request, "FeatureName")
        entry = self._group(self.snapshot(), name)
        desc = entry["description"]
        definition = next(
            (d for d in desc["FeatureDefinitions"] if d["FeatureName"] == feature), None
        )
        if definition is None:
            raise _not_found(f"{name} feature {feature}")
        meta = entry["metadata"].get(feature, {})
        return {
            "FeatureGroupArn": desc["FeatureGroupArn"],
            "FeatureGroupName": name,
            "FeatureName": feature,
            "FeatureType": definition["FeatureType"],
            "CreationTime": desc["CreationTime"],
            "LastModifiedTime": meta.get("LastModifiedTime", desc["CreationTime"]),
            "Description": meta.get("Description", ""),
            "Parameters": copy.deepcopy(meta.get("Parameters", [])),
        }

    def list_feature_groups(self, request: Request) -> Request:
        groups = self.snapshot()["groups"]
        rows = []
        for entry in groups.values():
            desc = entry["description"]
            row = {
                "FeatureGroupName": desc["FeatureGroupName"],
                "FeatureGroupArn": desc["FeatureGroupArn"],
                "CreationTime": desc["CreationTime"],
                "FeatureGroupStatus": self._status(entry),
            }
            if "OfflineStoreStatus" in desc:
                row["OfflineStoreStatus"] = desc["OfflineStoreStatus"]
            rows.append(row)
        if request.get("NameContains"):
            rows = [r for r in rows if request["NameContains"] in r["FeatureGroupName"]]
        if request.get("FeatureGroupStatusEquals"):
            wanted = request["FeatureGroupStatusEquals"]
            rows = [r for r in rows if r["FeatureGroupStatus"] == wanted]
        if request.get("OfflineStoreStatusEquals"):
            wanted = request["OfflineStoreStatusEquals"]
            rows = [r for r in rows if r.get("OfflineStoreStatus", {}).get("Status") == wanted]
        after, before = request.get("CreationTimeAfter"), request.get("CreationTimeBefore")
        if after is not None:
            rows = [r for r in rows if r["CreationTime"] > _seconds(after)]
        if before is not None:
            rows = [r for r in rows if r["CreationTime"] < _seconds(before)]
        sort_key = {
            "Name": "FeatureGroupName",
            "FeatureGroupStatus": "FeatureGroupStatus",
            "CreationTime": "CreationTime",
        }.get(request.get("SortBy", "CreationTime"), "CreationTime")
        rows.sort(
            key=lambda r: (r[sort_key], r["FeatureGroupName"]),
            reverse=request.get("SortOrder", "Ascending") == "Descending",
        )
        limit = int(request.get("MaxResults", 10))
        if not 1 <= limit <= 100:
            raise _validation("MaxResults must be between 1 and 100")
        token = request.get("NextToken")
        if token is not None and (not str(token).isdigit() or int(token) > len(rows)):
            raise _validation(f"Invalid pagination token {token!r}")
        start = int(token or 0)
        out: Request = {"FeatureGroupSummaries": rows[start : start + limit]}
        if start + limit < len(rows):
            out["NextToken"] = str(start + limit)
        return out

    def _by_arn(self, data: dict[str, Any], arn: object) -> dict[str, Any]:
        for entry in data["groups"].values():
            if entry["description"]["FeatureGroupArn"] == arn:
                return entry  # type: ignore[no-any-return]
        raise ApiError("ResourceNotFound", f"Resource {arn} not found.")

    def add_tags(self, request: Request) -> Request:
        with self._transaction() as data:
            entry = self._by_arn(data, _required(request, "ResourceArn"))
            tags = {t["Key"]: t["Value"] for t in entry["tags"]}
            tags.update({t["Key"]: t["Value"] for t in request.get("Tags", [])})
            if len(tags) > 50:
                raise _validation("a resource can have at most 50 tags")
            entry["tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        return {"Tags": list(request.get("Tags", []))}

    def delete_tags(self, request: Request) -> Request:
        with self._transaction() as data:
            entry = self._by_arn(data, _required(request, "ResourceArn"))
            drop = set(request.get("TagKeys", []))
            entry["tags"] = [t for t in entry["tags"] if t["Key"] not in drop]
        return {}

    def list_tags(self, request: Request) -> Request:
        entry = self._by_arn(self.snapshot(), _required(request, "ResourceArn"))
        return {"Tags": copy.deepcopy(entry["tags"])}


def _seconds(value: object) -> float:
    """Epoch seconds of a JSON timestamp (a number, or ISO-8601 text)."""
    if isinstance(value, int | float):
        return float(value)
    from datetime import UTC, datetime

    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _required(request: Request, key: str) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not value:
        raise _validation(
            f"1 validation error detected: Value null at '{key}' failed to "
            "satisfy constraint: Member must not be null"
        )
    return value


UPDATE_PARAMETERS = ("FeatureAdditions", "OnlineStoreConfig", "ThroughputConfig")
"""what UpdateFeatureGroup changes, one per call"""


def _check_definition(definition: Request) -> None:
    name = definition.get("FeatureName", "")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise _validation(f"FeatureName {name!r} must match {NAME_RE.pattern}")
    if name.lower() in RESERVED_FEATURES:
        raise _validation(f"FeatureName {name!r} is reserved")
    if definition.get("FeatureType") not in FEATURE_TYPES:
        raise _validation(f"FeatureType of {name!r} must be one of {', '.join(FEATURE_TYPES)}")
    collection = definition.get("CollectionType")
    if collection is not None and collection not in COLLECTION_TYPES:
        raise _validation(f"CollectionType of {name!r} must be one of List, Set, Vector")
    if collection == "Vector":  # API_FeatureDefinition: a fixed-size array of Fractional
        if definition.get("FeatureType") != "Fractional":
            raise _validation(f"Vector feature {name!r} must have FeatureType Fractional")
        vector = (definition.get("CollectionConfig") or {}).get("VectorConfig") or {}
        if vector.get("Dimension") is None:
            raise _validation(
                f"Vector feature {name!r} needs its dimension: CollectionConfig.VectorConfig."
                "Dimension"
            )


def _check_ttl(ttl: Request) -> None:
    if (
        ttl.get("Unit") not in TTL_UNITS
        or not isinstance(ttl.get("Value"), int)
        or ttl["Value"] < 1
    ):
        raise _validation(
            f"TtlDuration {ttl!r}: Unit must be one of {', '.join(TTL_UNITS)} and "
            "Value a positive integer"
        )


def _check_create(request: Request) -> None:
    name = request["FeatureGroupName"]
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise _validation(f"FeatureGroupName {name!r} must match {NAME_RE.pattern}")
    definitions = request.get("FeatureDefinitions") or []
    if not 1 <= len(definitions) <= MAX_FEATURES:
        raise _validation(f"FeatureDefinitions must have 1 to {MAX_FEATURES} members")
    by_name: dict[str, Request] = {}
    for definition in definitions:
        _check_definition(definition)
        if definition["FeatureName"].lower() in {n.lower() for n in by_name}:
            raise _validation(f"Duplicate FeatureName {definition['FeatureName']!r}")
        by_name[definition["FeatureName"]] = definition
    for key in ("RecordIdentifierFeatureName", "EventTimeFeatureName"):
        feature = _required(request, key)
        if feature not in by_name:
            raise _validation(f"{key} {feature!r} is not in FeatureDefinitions")
        if by_name[feature].get("CollectionType"):
            raise _validation(f"{key} {feature!r} cannot be a collection")
    event_type = by_name[request["EventTimeFeatureName"]]["FeatureType"]
    if event_type not in ("String", "Fractional"):
        raise _validation("The event time feature must be of type String or Fractional")
    online = request.get("OnlineStoreConfig") or {}
    if online.get("TtlDuration") is not None:
        _check_ttl(online["TtlDuration"])
    if online.get("StorageType", "Standard") not in ("Standard", "InMemory"):
        raise _validation("StorageType must be Standard or InMemory")
    if "OfflineStoreConfig" in request:
        s3 = (request["OfflineStoreConfig"] or {}).get("S3StorageConfig") or {}
        if not re.match(r"^(https|s3)://([^/]+)/?(.*)$", str(s3.get("S3Uri", ""))):
            raise _validation("OfflineStoreConfig.S3StorageConfig.S3Uri must be an s3:// URI")
        if not request.get("RoleArn"):
            raise _validation("RoleArn is required when OfflineStoreConfig is specified")
    if not online.get("EnableOnlineStore") and "OfflineStoreConfig" not in request:
        raise _validation("You must enable at least one of the online store and the offline store")
    _check_throughput(request.get("ThroughputConfig") or {}, online)


def _check_throughput(throughput: Request, online: Request) -> None:
    """SageMaker's rule for ThroughputConfig (API_ThroughputConfig): PROVISIONED mode only
    for a group that is offline-only or has the Standard online store."""
    in_memory = online.get("EnableOnlineStore") and online.get("StorageType") == "InMemory"
    if throughput.get("ThroughputMode") == "Provisioned" and in_memory:
        raise _validation(
            "PROVISIONED throughput mode is supported only for feature groups that are "
            "offline-only, or use the Standard tier online store"
        )


OPERATIONS: dict[str, Callable[[Registry, Request], Request]] = {
    "CreateFeatureGroup": Registry.create_feature_group,
    "DescribeFeatureGroup": Registry.describe_feature_group,
    "UpdateFeatureGroup": Registry.update_feature_group,
    "DeleteFeatureGroup": Registry.delete_feature_group,
    "UpdateFeatureMetadata": Registry.update_feature_metadata,
    "DescribeFeatureMetadata": Registry.describe_feature_metadata,
    "ListFeatureGroups": Registry.list_feature_groups,
    "AddTags": Registry.add_tags,
    "DeleteTags": Registry.delete_tags,
    "ListTags": Registry.list_tags,
}
