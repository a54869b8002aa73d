"""The featurestore-runtime half of ``fsgen serve``: every operation of the installed
``sagemaker-featurestore-runtime`` model (PutRecord, GetRecord, DeleteRecord, BatchGetRecord,
BatchWriteRecord, ListRecords, UpdateRecord) over :class:`fsgen.store.LocalStore`.

A group must be deployed (in the registry: ``fsgen apply`` or CreateFeatureGroup) to be read
or written, as on SageMaker, and its records follow **its deployed definition**: the
FeatureDefinitions (with later FeatureAdditions), the online TTL in force at each write and
which stores it has. A project group whose deployed features equal its declaration keeps the
project's runtime; any other group gets a runtime built from its description
(:func:`deployed_runtime`) and is adopted by the store (``LocalStore.adopt``), offline files in
``<store>/offline/<group>/data/year=/month=/day=/hour=/`` like every group.

Values are checked on write as SageMaker does: Integral within 64 bits, Fractional finite,
strings valid Unicode, collections as ``ValueAsStringList`` (vectors of their dimension), the
String event time in one of SageMaker's two formats (``yyyy-MM-dd'T'HH:mm:ssZ``,
``yyyy-MM-dd'T'HH:mm:ss.SSSZ``) and stored canonically, so one instant is one event time.
"""

from __future__ import annotations

import dataclasses
import math
import re
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fsgen.backends.registry import ApiError
from fsgen.config import ProjectConfig
from fsgen.errors import FsgenError
from fsgen.runtime.bulk import BlockResult
from fsgen.runtime.encoding import (
    FRACTIONAL,
    INT64_MAX,
    INT64_MIN,
    INTEGRAL,
    format_event_time,
    parse_event_time,
)
from fsgen.runtime.ingest import check_record_size
from fsgen.runtime.pipeline import FieldDef, GroupRuntime
from fsgen.spec import ProjectSpec

if TYPE_CHECKING:
    from fsgen.backends.registry import Registry
    from fsgen.store import LocalStore

Payload = dict[str, Any]
TTL_SECONDS = {"Seconds": 1, "Minutes": 60, "Hours": 3600, "Days": 86400, "Weeks": 604800}
STORES = ("OnlineStore", "OfflineStore")
ARN = re.compile(r"arn:aws[a-z\-]*:sagemaker:([a-z0-9\-]*):([0-9]{12}):feature-group/(.+)")
_EVENT_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})?Z")
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_FLOAT_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_FIELD_TYPES = {INTEGRAL: "int", FRACTIONAL: "float", "String": "str"}
_AFTER_9999 = 253402300800.0  # 10000-01-01T00:00:00Z: no ISO-8601 four-digit year


def _validation(message: str) -> ApiError:
    return ApiError("ValidationError", message, 400)


def not_found(group: str) -> ApiError:
    return ApiError("ResourceNotFound", f"Resource Not Found: FeatureGroup {group} not found.", 404)


def ttl_seconds(ttl: Mapping[str, Any] | None) -> int | None:
    if not ttl or ttl.get("Unit") is None or ttl.get("Value") is None:
        return None
    return int(ttl["Value"]) * TTL_SECONDS[str(ttl["Unit"])]


def deployed_columns(
    desc: Mapping[str, Any],
) -> tuple[tuple[str, str, str | None, int | None], ...]:
    out = []
    for d in desc["FeatureDefinitions"]:
        dimension = ((d.get("CollectionConfig") or {}).get("VectorConfig") or {}).get("Dimension")
        out.append(
            (str(d["FeatureName"]), str(d["FeatureType"]), d.get("CollectionType"), dimension)
        )
    return tuple(out)


def deployed_runtime(desc: Mapping[str, Any], declared: GroupRuntime | None) -> GroupRuntime:
    """The runtime records of a deployed group follow: the declared one when its stored
    columns are the deployed FeatureDefinitions, else one built from the description (no
    transformations: PutRecord values are stored values); the TTL is the deployed one."""
    columns = deployed_columns(desc)
    ttl = ttl_seconds((desc.get("OnlineStoreConfig") or {}).get("TtlDuration"))
    if declared is not None and declared.columns == columns:
        return dataclasses.replace(declared, ttl_seconds=ttl)
    kinds = {name: kind for name, kind, _, _ in columns}
    identifier = str(desc["RecordIdentifierFeatureName"])
    event_time = str(desc["EventTimeFeatureName"])
    fields = tuple(
        FieldDef(name, f"list[{_FIELD_TYPES[kind]}]" if coll else _FIELD_TYPES[kind], True)
        for name, kind, coll, _ in columns
    )
    return GroupRuntime(
        name=str(desc["FeatureGroupName"]),
        identifier=identifier,
        keys=(identifier,),
        event_time=event_time,
        event_time_kind=kinds[event_time],
        fields=fields,
        features=(),
        columns=columns,
        ttl_seconds=ttl,
    )


@dataclasses.dataclass(frozen=True)
class Deployed:
    name: str
    runtime: GroupRuntime
    online: bool
    offline: bool
    fingerprint: tuple[object, ...]


class RuntimeService:
    def __init__(self, config: ProjectConfig, spec: ProjectSpec) -> None:
        from fsgen.store import LocalStore

        self.config = config
        self.spec = spec
        self.store: LocalStore = LocalStore.open(config, spec)
        self.registry: Registry | None = None
        self._declared = {g.name for g in spec.groups}
        self._groups: dict[str, Deployed] = {}
        self._lock = threading.Lock()

    def drop_group(self, group: str) -> None:
        """DeleteFeatureGroup: drop the online records, archive the offline data."""
        from fsgen.backends.local import archive_offline

        with self.store.lock(f"drop {group}"):
            self.store.online.drop(group)
            archive_offline(self.config.store_path, group)
        with self._lock:
            self._groups.pop(group, None)

    def create_group(self, description: Payload) -> None:
        """CreateFeatureGroup: an Iceberg offline store gets its (empty) local table."""
        from fsgen.backends.local import create_offline_table

        with self.store.lock(f"create {description['FeatureGroupName']}"):
            create_offline_table(self.config.store_path, description)

    # -- groups ----------------------------------------------------------------------------
    def resolve(self, name_or_arn: str) -> str:
        """The deployed group's name for a name or ARN; ResourceNotFound otherwise."""
        assert self.registry is not None
        groups = self.registry.snapshot()["groups"]
        if name_or_arn in groups:
            return name_or_arn
        if ARN.fullmatch(name_or_arn):
            wanted = name_or_arn.lower()
            for name, entry in groups.items():
                if str(entry["description"]["FeatureGroupArn"]).lower() == wanted:
                    return str(name)
        raise not_found(name_or_arn)

    def group(self, name_or_arn: str) -> Deployed:
        assert self.registry is not None
        name = self.resolve(name_or_arn)
        entry = self.registry.snapshot()["groups"][name]
        desc = entry["description"]
        fingerprint = (
            desc["CreationTime"],
            desc.get("LastModifiedTime"),
            len(desc["FeatureDefinitions"]),
            repr(desc.get("OnlineStoreConfig")),
        )
        cached = self._groups.get(name)
        if cached is not None and cached.fingerprint == fingerprint:
            return cached
        with self._lock:
            declared = self.store.runtime(name) if name in self._declared else None
            rt = deployed_runtime(desc, declared)
            online = bool((desc.get("OnlineStoreConfig") or {}).get("EnableOnlineStore"))
            offline = "OfflineStoreConfig" in desc
            table_format = str((desc.get("OfflineStoreConfig") or {}).get("TableFormat", "Glue"))
            self.store.adopt(rt, online=online, offline=offline, table_format=table_format)
            deployed = self._groups[name] = Deployed(name, rt, online, offline, fingerprint)
        return deployed

    # -- operations ------------------------------------------------------------------------
    def call(self, operation: str, request: Payload) -> Payload:
        handler = getattr(self, _snake(operation), None)
        if handler is None:
            raise ApiError("UnknownOperationException", f"{operation} is not served", 404)
        result: Payload = handler(request)
        return result

    # values ------------------------------------------------------------------------------
    def _scalar(self, g: Deployed, name: str, kind: str, text: object) -> object:
        if not isinstance(text, str):
            raise _validation(f"Feature {name}: expected a string value, got {text!r}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _validation(f"Feature {name}: value is not valid Unicode text") from None
        if kind == INTEGRAL:
            if not _INT_TEXT.fullmatch(text) or not INT64_MIN <= int(text) <= INT64_MAX:
                raise _validation(
                    f"Feature {name} of FeatureGroup {g.name} is Integral: value {text!r} "
                    "is not a 64-bit integer"
                )
            return int(text)
        if kind == FRACTIONAL:
            number = float(text) if _FLOAT_TEXT.fullmatch(text) else None
            if number is None or not math.isfinite(number):
                special = text.lower().lstrip("+-") in ("nan", "inf", "infinity")
                what = "a number" if number is None and not special else "a finite number"
                raise _validation(
                    f"Feature {name} of FeatureGroup {g.name} is Fractional: value {text!r} "
                    f"is not {what}"
                )
            return number
        return text

    def _decode(self, g: Deployed, record: list[Payload], *, partial: bool = False) -> Payload:
        rt = g.runtime
        known = {name: (kind, coll, dim) for name, kind, coll, dim in rt.columns}
        out: Payload = {}
        for entry in record:
            name = entry.get("FeatureName")
            if name not in known:
                raise _validation(f"Feature {name} is not defined in FeatureGroup {g.name}")
            if name in out:
                raise _validation(f"Feature {name} appears more than once in the record")
            kind, coll, dim = known[name]
            # a JSON null member is an absent member, as in AWS's JSON protocols
            has_list = entry.get("ValueAsStringList") is not None
            has_str = entry.get("ValueAsString") is not None
            if has_list == has_str or has_list != bool(coll):
                want = "ValueAsStringList" if coll else "ValueAsString"
                raise _validation(
                    f"Feature {name} of FeatureGroup {g.name} needs exactly one value, "
                    f"given as {want}"
                )
            if coll:
                items = [self._scalar(g, name, kind, v) for v in entry["ValueAsStringList"]]
                if coll == "Vector" and dim is not None and len(items) != dim:
                    raise _validation(
                        f"Feature {name} of FeatureGroup {g.name} is a Vector of dimension "
                        f"{dim}; got {len(items)} values"
                    )
                if coll == "Set":
                    items = sorted(set(items))  # type: ignore[type-var]
                out[name] = items
            else:
                out[name] = self._scalar(g, name, kind, entry["ValueAsString"])
        required = [] if partial else [rt.identifier, rt.event_time]
        for name in required:
            if name not in out:
                raise _validation(f"Record is missing {name}, which FeatureGroup {g.name} requires")
        if rt.identifier in out and out[rt.identifier] == "":
            raise _validation(f"Record identifier {rt.identifier} must not be empty")
        if rt.event_time in out:
            out[rt.event_time] = self._event_time(g, out[rt.event_time])
        return out

    def _event_time(self, g: Deployed, value: object) -> object:
        rt = g.runtime
        if rt.event_time_kind != FRACTIONAL:
            text = str(value)
            if not _EVENT_TEXT.fullmatch(text):
                raise _validation(
                    f"Event time {rt.event_time} value {text!r} of FeatureGroup {g.name} must "
                    "be formatted as yyyy-MM-dd'T'HH:mm:ssZ or yyyy-MM-dd'T'HH:mm:ss.SSSZ"
                )
        try:
            seconds = parse_event_time(rt.event_time_kind, value)
        except (TypeError, ValueError) as exc:
            raise _validation(f"Event time {rt.event_time}: {exc}") from None
        from fsgen.store.offline import MAX_SECONDS, MIN_SECONDS

        if not MIN_SECONDS <= seconds <= MAX_SECONDS:
            raise _validation(f"Event time {rt.event_time} {value!r} is outside years 1..9999")
        return format_event_time(rt.event_time_kind, seconds)

    def _targets(self, g: Deployed, stores: list[str] | None) -> tuple[bool, bool]:
        if not stores:
            return g.online, g.offline
        if len(set(stores)) != len(stores):
            raise _validation("TargetStores must not name a store twice")
        for store in stores:
            has = g.online if store == "OnlineStore" else g.offline
            if not has:
                raise _validation(
                    f"FeatureGroup {g.name} has no {store}; remove it from TargetStores"
                )
        return "OnlineStore" in stores, "OfflineStore" in stores

    def _write(
        self,
        g: Deployed,
        record: Payload,
        stores: list[str] | None,
        ttl: Mapping[str, Any] | None,
    ) -> None:
        online, offline = self._targets(g, stores)
        rt = g.runtime
        if ttl is not None:
            rt = dataclasses.replace(rt, ttl_seconds=ttl_seconds(ttl))
        seconds = rt.event_seconds(record)
        block = BlockResult(
            columns={name: [record.get(name)] for name, *_ in rt.columns},
            rows=[0],
            seconds=[seconds],
        )
        checked = check_record_size(rt, block)
        if checked.errors:  # PutRecord refuses a record over 350 KB, before writing it
            message = checked.errors[0][1].message  # the reason, without the reject's field
            raise _validation(message[:1].upper() + message[1:])
        try:
            self.store.put_block(rt, block, online_store=online, offline_store=offline)
        except FsgenError as exc:
            raise _validation(str(exc)) from None

    def put_record(self, request: Payload) -> Payload:
        g = self.group(request["FeatureGroupName"])
        record = self._decode(g, request["Record"])
        self._write(g, record, request.get("TargetStores"), request.get("TtlDuration"))
        return {}

    def batch_write_record(self, request: Payload) -> Payload:
        errors: list[Payload] = []
        for entry in request["Entries"]:
            try:
                g = self.group(entry["FeatureGroupName"])
                record = self._decode(g, entry["Record"])
                ttl = entry.get("TtlDuration") or request.get("TtlDuration")
                self._write(g, record, entry.get("TargetStores"), ttl)
            except ApiError as exc:
                errors.append({"Entry": entry, "ErrorCode": exc.code, "ErrorMessage": exc.message})
        return {"Errors": errors, "UnprocessedEntries": []}

    def _need_online(self, g: Deployed) -> None:
        if not g.online:
            raise _validation(f"FeatureGroup {g.name} has no OnlineStore to read from")

    def _names(self, g: Deployed, names: list[str] | None) -> list[str] | None:
        known = {c[0] for c in g.runtime.columns}
        for name in names or []:
            if name not in known:
                raise _validation(f"Feature {name} is not defined in FeatureGroup {g.name}")
        return names or None

    @staticmethod
    def _iso(seconds: float) -> str:
        """An ExpiresAt in SageMaker's ISO form; one past year 9999 (an event time near its
        end plus the TTL) is the last millisecond of 9999, which ISO-8601's four digits hold."""
        if seconds >= _AFTER_9999:
            return "9999-12-31T23:59:59.999Z"
        text = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
        return text.replace("+00:00", "Z")

    def _shown(self, g: Deployed, record: Mapping[str, object], names: list[str] | None) -> Any:
        return g.runtime.to_sagemaker(
            {k: v for k, v in record.items() if names is None or k in names}
        )

    def get_record(self, request: Payload) -> Payload:
        g = self.group(request["FeatureGroupName"])
        self._need_online(g)
        names = self._names(g, request.get("FeatureNames"))
        record_id = request["RecordIdentifierValueAsString"]
        record = self.store.get_record(g.name, record_id)
        if record is None:
            return {}
        out: Payload = {"Record": self._shown(g, record, names)}
        if request.get("ExpirationTimeResponse") == "Enabled":
            expires = self.store.expiry(g.name, [record_id])[0]
            if expires is not None:
                out["ExpiresAt"] = self._iso(expires)
        return out

    def batch_get_record(self, request: Payload) -> Payload:
        enabled = request.get("ExpirationTimeResponse") == "Enabled"
        records: list[Payload] = []
        errors: list[Payload] = []
        for ident in request["Identifiers"]:
            given = ident["FeatureGroupName"]
            ids = list(ident["RecordIdentifiersValueAsString"])
            try:
                g = self.group(given)
                self._need_online(g)
                names = self._names(g, ident.get("FeatureNames"))
            except ApiError as exc:
                errors.extend(
                    {
                        "FeatureGroupName": given,
                        "RecordIdentifierValueAsString": i,
                        "ErrorCode": exc.code,
                        "ErrorMessage": exc.message,
                    }
                    for i in ids
                )
                continue
            found = self.store.batch_get(g.name, ids)
            expiry = self.store.expiry(g.name, ids) if enabled else [None] * len(ids)
            for record_id, record, expires in zip(ids, found, expiry, strict=True):
                if record is None:
                    continue
                row: Payload = {
                    "FeatureGroupName": given,
                    "RecordIdentifierValueAsString": record_id,
                    "Record": self._shown(g, record, names),
                }
                if expires is not None:
                    row["ExpiresAt"] = self._iso(expires)
                records.append(row)
        return {"Records": records, "Errors": errors, "UnprocessedIdentifiers": []}

    def delete_record(self, request: Payload) -> Payload:
        g = self.group(request["FeatureGroupName"])
        online, offline = self._targets(g, request.get("TargetStores"))
        rt = g.runtime  # EventTime is text, as in a record: epoch seconds for a Fractional one
        given = self._scalar(g, rt.event_time, rt.event_time_kind, request["EventTime"])
        event_time = self._event_time(g, given)
        hard = request.get("DeletionMode", "SoftDelete") == "HardDelete"
        try:
            self.store.delete_record(
                g.name,
                request["RecordIdentifierValueAsString"],
                event_time,
                hard=hard,
                online_store=online,
                offline_store=offline,
            )
        except (ValueError, FsgenError) as exc:
            raise _validation(str(exc)) from None
        return {}

    def list_records(self, request: Payload) -> Payload:
        g = self.group(request["FeatureGroupName"])
        self._need_online(g)
        rows = self.store.online.snapshot(g.runtime)
        include_deleted = bool(request.get("IncludeSoftDeletedRecords"))
        ids = sorted(i for i, (_, deleted, _) in rows.items() if include_deleted or not deleted)
        now = self.store.clock()
        ids = [
            i
            for i, expires in zip(ids, self.store.expiry(g.name, ids), strict=True)
            if expires is None or expires >= now
        ]
        token = request.get("NextToken")
        start = 0
        if token is not None:
            if not token.isdigit() or int(token) > len(ids):
                raise _validation(f"NextToken {token!r} is not a token this operation returned")
            start = int(token)
        limit = int(request.get("MaxResults") or 100)
        out: Payload = {"RecordIdentifiers": ids[start : start + limit]}
        if start + limit < len(ids):
            out["NextToken"] = str(start + limit)
        return out

    def update_record(self, request: Payload) -> Payload:
        g = self.group(request["FeatureGroupName"])
        rt = g.runtime
        record_id = request["RecordIdentifierValueAsString"]
        changes = self._decode(g, request["Features"], partial=True)
        if len(request["Features"]) > 100:
            raise _validation("UpdateRecord updates at most 100 features per call")
        if rt.identifier in changes and str(changes[rt.identifier]) != str(record_id):
            raise _validation(f"Features must not change the record identifier {rt.identifier}")
        if request.get("TtlDuration") is not None and rt.event_time not in changes:
            raise _validation("TtlDuration requires an EventTime in Features")
        current = self.store.get_record(g.name, record_id) if g.online else None
        if current is None:
            raise ApiError(
                "ResourceNotFound",
                f"Record {record_id} not found in FeatureGroup {g.name}",
                404,
            )
        if rt.event_time in changes and rt.event_seconds(changes) < rt.event_seconds(current):
            raise ApiError(
                "ConflictException",
                f"EventTime {changes[rt.event_time]} is older than the record's "
                f"{current[rt.event_time]}",
                409,
            )
        ttl = request.get("TtlDuration")
        if ttl is None and rt.event_time not in changes:
            expires = self.store.expiry(g.name, [record_id])[0]
            if expires is not None:  # keep the record's own ExpiresAt
                left = expires - rt.event_seconds(current)
                ttl = {"Unit": "Seconds", "Value": max(1, round(left))}
        self._write(g, {**current, **changes}, request.get("TargetStores"), ttl)
        return {}


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
