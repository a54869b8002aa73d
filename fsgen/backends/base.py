"""The backend Protocols -- the control plane plan and apply use, and the data plane records
go through -- and the one implementation of the control plane in terms of SageMaker's
operations.

A backend reports what is deployed (``deployed``) and executes plan stages (``execute``). Both
backends speak SageMaker's request/response shapes: the local backend calls
:class:`fsgen.backends.registry.Registry` in process, the AWS backend calls boto3. So the
stage executor, the waiting logic and the translation to :class:`GroupState` are written once,
in :class:`ControlPlaneBackend`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fsgen import ttl_history
from fsgen.errors import StoreError
from fsgen.plan.model import GroupState, Stage
from fsgen.sagemaker import MANAGED_TAG, from_sagemaker

if TYPE_CHECKING:
    from fsgen.runtime.endpoint import RecordSource
    from fsgen.runtime.ingest import IngestResult
    from fsgen.runtime.pipeline import GroupRuntime
    from fsgen.runtime.sinks import Sink

Progress = Callable[[str], None]


class BackendError(StoreError):
    """A backend operation failed; ``code`` is AWS's error code when there is one."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation} failed: {code}: {message}")
        self.operation = operation
        self.code = code


class Backend(Protocol):
    name: str
    state_dir: Path
    """Where apply history and the apply lock live."""

    def deployed(self) -> dict[str, GroupState]:
        """Every feature group the backend has, by name."""
        ...

    def execute(self, stage: Stage, progress: Progress) -> None:
        """Carry out one stage and wait until the group is ready again."""
        ...

    def preflight(self, desired: Sequence[GroupState]) -> list[str]:
        """Warnings for the plan about prerequisites outside the feature groups."""
        ...


class ControlPlaneBackend:
    """Backend behaviour over a ``call(operation, request) -> response`` function."""

    name = "abstract"
    state_dir: Path
    poll_interval = 0.05
    max_poll_interval = 5.0
    wait_timeout = 1800.0

    def call(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def preflight(self, desired: Sequence[GroupState]) -> list[str]:
        return []

    # -- reading ---------------------------------------------------------------------------
    def group_names(self) -> list[str]:
        names: list[str] = []
        token: str | None = None
        while True:
            request: dict[str, Any] = {"MaxResults": 100, "SortBy": "Name"}
            if token:
                request["NextToken"] = token
            page = self.call("ListFeatureGroups", request)
            names.extend(s["FeatureGroupName"] for s in page.get("FeatureGroupSummaries", []))
            token = page.get("NextToken")
            if not token:
                return names

    def describe(self, name: str) -> dict[str, Any] | None:
        try:
            desc = self.call("DescribeFeatureGroup", {"FeatureGroupName": name})
        except BackendError as exc:
            if exc.code == "ResourceNotFound":
                return None
            raise
        while desc.get("NextToken"):  # FeatureDefinitions arrive in pages for large groups
            more = self.call(
                "DescribeFeatureGroup", {"FeatureGroupName": name, "NextToken": desc["NextToken"]}
            )
            desc["FeatureDefinitions"] = [
                *desc["FeatureDefinitions"],
                *more.get("FeatureDefinitions", []),
            ]
            desc["NextToken"] = more.get("NextToken")
        return desc

    def tags(self, arn: str) -> list[dict[str, str]]:
        tags: list[dict[str, str]] = []
        token: str | None = None
        while True:
            request: dict[str, Any] = {"ResourceArn": arn}
            if token:
                request["NextToken"] = token
            page = self.call("ListTags", request)
            tags.extend(page.get("Tags", []))
            token = page.get("NextToken")
            if not token:
                return tags

    def state(self, name: str) -> GroupState | None:
        desc = self.describe(name)
        if desc is None:
            return None
        tags = self.tags(desc["FeatureGroupArn"])
        metadata: dict[str, dict[str, Any]] = {}
        if any(t["Key"] == MANAGED_TAG for t in tags):
            for definition in desc["FeatureDefinitions"]:
                feature = definition["FeatureName"]
                metadata[feature] = self.call(
                    "DescribeFeatureMetadata", {"FeatureGroupName": name, "FeatureName": feature}
                )
        return from_sagemaker(desc, metadata, tags)

    def record_ttl_change(self, group: str, old: int | None, new: int | None) -> None:
        """Append (LastModifiedTime of the update just made, old, new) to the group's tag
        ``fsgen:ttl-history``: from that instant records are written with the new TTL."""
        desc = self.describe(group)
        if desc is None:
            raise BackendError("AddTags", "ResourceNotFound", f"{group} not found")
        arn = desc["FeatureGroupArn"]
        current = {t["Key"]: t["Value"] for t in self.tags(arn)}
        try:
            value = ttl_history.appended(
                current.get(ttl_history.TAG),
                ttl_history.TtlChange(_micros(desc["LastModifiedTime"]), old, new),
            )
        except ttl_history.TtlHistoryError as exc:
            raise BackendError("AddTags", "ValidationException", f"{group}: {exc}") from None
        self.call(
            "AddTags", {"ResourceArn": arn, "Tags": [{"Key": ttl_history.TAG, "Value": value}]}
        )

    def deployed(self) -> dict[str, GroupState]:
        out: dict[str, GroupState] = {}
        for name in self.group_names():
            state = self.state(name)
            if state is not None and state.status not in ("Deleting",):
                out[name] = state
        return out

    # -- writing ---------------------------------------------------------------------------
    def execute(self, stage: Stage, progress: Progress) -> None:
        if stage.kind == "create_group":
            self.call("CreateFeatureGroup", dict(stage.request))
            self.wait(stage.group, "created", progress)
        elif stage.kind == "delete_group":
            self.call("DeleteFeatureGroup", {"FeatureGroupName": stage.group})
            self.wait(stage.group, "deleted", progress)
        elif stage.kind == "update_group":
            self.call("UpdateFeatureGroup", dict(stage.request))
            self.wait(stage.group, "updated", progress)
        elif stage.kind == "update_feature_metadata":
            self.call("UpdateFeatureMetadata", dict(stage.request))
        elif stage.kind == "set_tags":
            desc = self.describe(stage.group)
            if desc is None:
                raise BackendError("AddTags", "ResourceNotFound", f"{stage.group} not found")
            arn = desc["FeatureGroupArn"]
            if stage.add:
                self.call(
                    "AddTags",
                    {
                        "ResourceArn": arn,
                        "Tags": [{"Key": k, "Value": v} for k, v in stage.add.items()],
                    },
                )
            if stage.remove:
                self.call("DeleteTags", {"ResourceArn": arn, "TagKeys": list(stage.remove)})
        elif stage.kind == "record_ttl_change":
            self.record_ttl_change(stage.group, stage.old_seconds, stage.new_seconds)
        else:  # pragma: no cover - the Stage union is closed
            raise AssertionError(stage)

    def wait(self, name: str, goal: str, progress: Progress) -> None:
        """Poll DescribeFeatureGroup until the group is ``created``/``updated``/``deleted``."""
        deadline = time.monotonic() + self.wait_timeout
        interval = self.poll_interval
        while True:
            desc = self.describe(name)
            status = "Deleted" if desc is None else str(desc.get("FeatureGroupStatus"))
            update = ((desc or {}).get("LastUpdateStatus") or {}).get("Status", "Successful")
            progress(f"{name}: {status}" + (f", update {update}" if goal == "updated" else ""))
            if goal == "deleted" and desc is None:
                return
            if status in ("CreateFailed", "DeleteFailed"):
                reason = (desc or {}).get("FailureReason", "no reason given")
                raise BackendError("DescribeFeatureGroup", status, f"{name}: {reason}")
            if goal == "updated" and update == "Failed":
                reason = ((desc or {}).get("LastUpdateStatus") or {}).get("FailureReason", "")
                raise BackendError("UpdateFeatureGroup", "Failed", f"{name}: {reason}")
            if goal == "created" and status == "Created":
                return
            if goal == "updated" and status == "Created" and update != "InProgress":
                return
            if time.monotonic() > deadline:
                raise BackendError(
                    "DescribeFeatureGroup",
                    "Timeout",
                    f"{name} did not become {goal} in {self.wait_timeout:.0f}s",
                )
            time.sleep(interval)
            interval = min(interval * 2, self.max_poll_interval)


# ---------------------------------------------------------------------------- data plane


@dataclass(frozen=True)
class DeleteOutcome:
    """What a DeleteRecord did: ``online_applied`` is False when a newer online record was
    kept (a SoftDelete older than it); the offline tombstone is written either way."""

    group: str
    record_id: str
    event_time: object
    hard: bool
    online_applied: bool = True


class DataPlane(Protocol):
    """A backend's data plane, beside its control plane (``call``/``execute``): records in
    and out. The CLI opens one per command (:func:`fsgen.backends.open_data_plane`) and
    never asks which backend it is; what a backend cannot do raises ConfigError saying so."""

    name: str

    def sink(self, group: str) -> Sink:
        """Where stored records of ``group`` go (batch pipeline and stream handler)."""
        ...

    def ingest(
        self,
        group: str,
        source: object,
        rejects: Path | None = None,
        *,
        runtime: GroupRuntime | None = None,
        fmt: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        run_id: str | None = None,
        duplicates: str = "refuse",
    ) -> IngestResult:
        """Run the batch pipeline into this backend; the run is audited once. ``duplicates``:
        what an aggregation group's events already in the offline history from an earlier
        ingestion do (refuse, skip, allow), where the backend can read the history back."""
        ...

    def finish(self, result: IngestResult, error: str | None) -> None:
        """Record a batch run (its audit entry)."""
        ...

    def hidden_states(self, group: str, since: float) -> list[tuple[str, str]]:
        """An aggregation group's entities whose states a SoftDelete later than ``since``
        hides online, as (record id, the delete's event time), where the backend can tell
        (SageMaker's GetRecord returns nothing for a soft-deleted record: no trace there)."""
        ...

    def default_rejects(self, group: str) -> Path:
        """Where a batch run into this backend writes its rejects when no path is given
        (:func:`default_rejects_path`): every entry point keeps them, and audits the path."""
        ...

    def record_counts(self, **counts: Any) -> None:
        """Record a stream run known by its counts (see :func:`fsgen.audit.record_counts`)."""
        ...

    def get_record(
        self,
        group: str,
        record_id: str,
        feature_names: Sequence[str] | None = None,
        *,
        now: float | None = None,
    ) -> dict[str, object] | None:
        """The online record (native values); ``now`` judges TTL expiry at another instant."""
        ...

    def missing_reason(self, group: str, record_id: str, *, now: float | None = None) -> str:
        """Why :meth:`get_record` just found no record for ``record_id`` (at ``now``), as far
        as the backend knows: never written, TTL expired at ..., deleted at ...; a backend
        that is not told says so rather than guessing."""
        ...

    def delete_record(
        self, group: str, record_id: str, event_time: str, hard: bool = False
    ) -> DeleteOutcome: ...

    def record_source(self, clock: Callable[[], float] | None = None) -> RecordSource:
        """BatchGetRecord for the generated endpoint handler."""
        ...

    def rebuild_states(
        self, group: str, ids: Sequence[str] | None = None
    ) -> tuple[int, list[tuple[str, str]]]:
        """Rebuild an aggregation group's online states from its offline event history (all
        its entities, or ``ids``): the count and the (id, reason) of states too large."""
        ...

    def local_store(self, command: str) -> Path:
        """The local store directory ``command`` reads; ConfigError where there is none."""
        ...

    def close(self) -> None: ...


def default_rejects_path(store_path: Path, group: str) -> Path:
    """``<store>/rejects/<group>-<UTC time>-<random>.jsonl``: two ingests started in the same
    second never share (and overwrite) a rejects file; written only if a row is rejected."""
    import time
    import uuid

    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return store_path / "rejects" / f"{group}-{stamp}-{uuid.uuid4().hex[:8]}.jsonl"


def _micros(value: object) -> int:
    """DescribeFeatureGroup's LastModifiedTime (boto3: a datetime; the local registry: epoch
    seconds) as epoch µs."""
    from datetime import datetime

    if isinstance(value, datetime):
        return round(value.timestamp() * 1_000_000)
    if isinstance(value, int | float):
        return round(float(value) * 1_000_000)
    raise BackendError("DescribeFeatureGroup", "InvalidResponse", f"LastModifiedTime {value!r}")
