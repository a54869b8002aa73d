"""The featurestore-runtime half of ``fsgen serve``: PutRecord, GetRecord, BatchGetRecord,
BatchWriteRecord, DeleteRecord over :class:`fsgen.store.LocalStore`.

A group must be deployed (in the registry: ``fsgen apply`` or CreateFeatureGroup) to be read
or written, as on SageMaker; records are encoded and decoded with the group's GroupRuntime, so
values travel as the same lossless ``ValueAsString`` strings every other path uses. Values
arriving in PutRecord are stored feature values (no transformation runs), as on SageMaker.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fsgen.backends.registry import ApiError
from fsgen.config import ProjectConfig
from fsgen.errors import FsgenError
from fsgen.runtime.encoding import parse_event_time
from fsgen.runtime.pipeline import GroupRuntime
from fsgen.spec import ProjectSpec

if TYPE_CHECKING:
    from fsgen.backends.registry import Registry
    from fsgen.store import LocalStore

_GROUP_PATH = re.compile(r"^/FeatureGroup/([^/]+)$")
Query = Mapping[str, list[str]]
Payload = dict[str, Any]


def _validation(message: str) -> ApiError:
    return ApiError("ValidationError", message, 400)


def _not_found(group: str) -> ApiError:
    return ApiError("ResourceNotFound", f"Resource Not Found: FeatureGroup {group} not found.", 404)


class RuntimeService:
    def __init__(self, config: ProjectConfig, spec: ProjectSpec) -> None:
        from fsgen.store import LocalStore

        self.config = config
        self.spec = spec
        self.store: LocalStore = LocalStore.open(config, spec)
        self.registry: Registry | None = None
        self._runtimes: dict[str, GroupRuntime] = {}
        self._lock = threading.Lock()

    def drop_group(self, group: str) -> None:
        """DeleteFeatureGroup: drop the online records, archive the offline data."""
        from fsgen.backends.local import archive_offline

        with self.store.lock(f"drop {group}"):
            self.store.online.drop(group)
            archive_offline(self.config.store_path, group)

    # -- routing ---------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: Query, body: Payload) -> tuple[int, Payload]:
        if method == "POST" and path == "/BatchGetRecord":
            return 200, self.batch_get_record(body)
        if method == "POST" and path == "/BatchWriteRecord":
            return 200, self.batch_write_record(body)
        match = _GROUP_PATH.match(path)
        if match is None:
            raise ApiError("UnknownOperationException", f"no operation at {method} {path}", 404)
        group = match.group(1)
        if method == "GET":
            return 200, self.get_record(group, query)
        if method == "PUT":
            self.put_record(group, body)
            return 200, {}
        if method == "DELETE":
            self.delete_record(group, query)
            return 200, {}
        raise ApiError("UnknownOperationException", f"no operation at {method} {path}", 404)

    def runtime(self, group: str) -> GroupRuntime:
        """The group's runtime; ResourceNotFound unless it is deployed."""
        assert self.registry is not None
        if group not in self.registry.snapshot()["groups"]:
            raise _not_found(group)
        rt = self._runtimes.get(group)
        if rt is None:
            if group not in {g.name for g in self.spec.groups}:
                raise _validation(
                    f"FeatureGroup {group} is deployed but not declared in this "
                    "project's definitions; fsgen serve stores records of "
                    "declared groups only"
                )
            with self._lock:
                rt = self._runtimes[group] = self.store.runtime(group)
        return rt

    # -- operations ------------------------------------------------------------------------
    def _decode(self, rt: GroupRuntime, record: object) -> dict[str, object]:
        if not isinstance(record, list) or not record:
            raise _validation("Record must be a non-empty list of FeatureValue")
        known = {name: collection for name, _, collection, _ in rt.columns}
        seen: set[str] = set()
        for entry in record:
            name = entry.get("FeatureName") if isinstance(entry, dict) else None
            if name not in known:
                raise _validation(f"Feature {name!r} is not defined in FeatureGroup {rt.name}")
            if name in seen:
                raise _validation(f"Feature {name!r} appears twice in the record")
            seen.add(name)
            has_list, has_str = "ValueAsStringList" in entry, "ValueAsString" in entry
            if has_list == has_str or has_list != bool(known[name]):
                want = "ValueAsStringList" if known[name] else "ValueAsString"
                raise _validation(
                    f"Feature {name!r} of FeatureGroup {rt.name} needs exactly "
                    f"one value, given as {want}"
                )
        for required in (rt.identifier, rt.event_time):
            if required not in seen:
                raise _validation(
                    f"Record is missing {required!r}, which FeatureGroup {rt.name} requires"
                )
        try:
            native = rt.from_sagemaker(record)
            parse_event_time(rt.event_time_kind, native[rt.event_time])
        except (TypeError, ValueError) as exc:
            raise _validation(f"invalid value in record: {exc}") from None
        return native

    def put_record(self, group: str, body: Payload) -> None:
        rt = self.runtime(group)
        if body.get("TtlDuration"):
            raise _validation(
                "a per-record TtlDuration is not supported by fsgen serve; the group's TTL applies"
            )
        stores = body.get("TargetStores") or ["OnlineStore", "OfflineStore"]
        if sorted(stores) != ["OfflineStore", "OnlineStore"]:
            raise _validation(
                "fsgen serve writes to both stores; TargetStores must name "
                "OnlineStore and OfflineStore"
            )
        try:
            self.store.put_records(group, [self._decode(rt, body.get("Record"))])
        except FsgenError as exc:
            raise _validation(str(exc)) from None

    def _expires(self, rt: GroupRuntime, record: Mapping[str, object]) -> str | None:
        if not rt.ttl_seconds:
            return None
        seconds = rt.event_seconds(record) + rt.ttl_seconds
        return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")

    def get_record(self, group: str, query: Query) -> Payload:
        rt = self.runtime(group)
        record_id = (query.get("RecordIdentifierValueAsString") or [""])[0]
        if not record_id:
            raise _validation("RecordIdentifierValueAsString is required")
        names = query.get("FeatureName") or None
        self._check_names(rt, names)
        record = self.store.get_record(group, record_id)
        if record is None:
            return {}
        out: Payload = {
            "Record": rt.to_sagemaker(
                {k: v for k, v in record.items() if names is None or k in names}
            )
        }
        if (query.get("ExpirationTimeResponse") or ["Disabled"])[0] == "Enabled":
            expires = self._expires(rt, record)
            if expires:
                out["ExpiresAt"] = expires
        return out

    def _check_names(self, rt: GroupRuntime, names: list[str] | None) -> None:
        known = {c[0] for c in rt.columns}
        for name in names or []:
            if name not in known:
                raise _validation(f"Feature {name!r} is not defined in FeatureGroup {rt.name}")

    def batch_get_record(self, body: Payload) -> Payload:
        identifiers = body.get("Identifiers")
        if not isinstance(identifiers, list) or not identifiers:
            raise _validation("Identifiers must be a non-empty list")
        enabled = body.get("ExpirationTimeResponse") == "Enabled"
        records: list[Payload] = []
        errors: list[Payload] = []
        for ident in identifiers:
            group = str(ident.get("FeatureGroupName", ""))
            ids = [str(i) for i in ident.get("RecordIdentifiersValueAsString") or []]
            names = ident.get("FeatureNames") or None
            try:
                rt = self.runtime(group)
                self._check_names(rt, names)
            except ApiError as exc:
                errors.extend(
                    {
                        "FeatureGroupName": group,
                        "RecordIdentifierValueAsString": i,
                        "ErrorCode": exc.code,
                        "ErrorMessage": exc.message,
                    }
                    for i in ids
                )
                continue
            for record_id, record in zip(ids, self.store.batch_get(group, ids), strict=True):
                if record is None:
                    continue
                row: Payload = {
                    "FeatureGroupName": group,
                    "RecordIdentifierValueAsString": record_id,
                    "Record": rt.to_sagemaker(
                        {k: v for k, v in record.items() if names is None or k in names}
                    ),
                }
                expires = self._expires(rt, record) if enabled else None
                if expires:
                    row["ExpiresAt"] = expires
                records.append(row)
        return {"Records": records, "Errors": errors, "UnprocessedIdentifiers": []}

    def batch_write_record(self, body: Payload) -> Payload:
        entries = body.get("Entries")
        if not isinstance(entries, list) or not entries:
            raise _validation("Entries must be a non-empty list")
        errors: list[Payload] = []
        for entry in entries:
            try:
                self.put_record(str(entry.get("FeatureGroupName", "")), entry)
            except ApiError as exc:
                errors.append({"Entry": entry, "ErrorCode": exc.code, "ErrorMessage": exc.message})
        return {"Errors": errors, "UnprocessedEntries": []}

    def delete_record(self, group: str, query: Query) -> None:
        self.runtime(group)
        record_id = (query.get("RecordIdentifierValueAsString") or [""])[0]
        event_time = (query.get("EventTime") or [""])[0]
        if not record_id or not event_time:
            raise _validation("RecordIdentifierValueAsString and EventTime are required")
        mode = (query.get("DeletionMode") or ["SoftDelete"])[0]
        if mode not in ("SoftDelete", "HardDelete"):
            raise _validation("DeletionMode must be SoftDelete or HardDelete")
        try:
            self.store.delete_record(group, record_id, event_time, hard=mode == "HardDelete")
        except (ValueError, FsgenError) as exc:
            raise _validation(str(exc)) from None
