"""The local backend: feature groups deployed into the embedded store under ``<store>``; its
control plane (:class:`LocalBackend`) and its data plane (:class:`LocalDataPlane`).

The registry of deployed groups is ``<store>/registry.json`` in SageMaker's own shapes (see
:mod:`fsgen.backends.registry`); apply history and the apply lock sit next to it.

Deleting a group (``fsgen destroy``, or the delete half of a replace) really drops the group's
online records. Its offline data is kept, not deleted: the directory
``<store>/offline/<group>/`` moves to ``<store>/archive/<group>/<UTC timestamp>/``, so a
recreated group starts empty while the old history stays readable (SageMaker, likewise, leaves
the offline store's S3 objects in place when a group is deleted).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsgen.backends.base import BackendError, ControlPlaneBackend, DeleteOutcome
from fsgen.backends.registry import ApiError, Registry
from fsgen.config import ProjectConfig

if TYPE_CHECKING:
    from fsgen.runtime.endpoint import RecordSource
    from fsgen.runtime.ingest import IngestResult
    from fsgen.runtime.pipeline import GroupRuntime
    from fsgen.runtime.sinks import Sink
    from fsgen.spec import ProjectSpec
    from fsgen.store import LocalStore


def drop_group_data(store_path: Path, group: str) -> None:
    """Drop ``group``'s online records and archive its offline directory."""
    from fsgen.store.online import OnlineStore

    online = OnlineStore(store_path / "online.sqlite")
    try:
        online.drop(group)
    finally:
        online.close()
    archive_offline(store_path, group)


def create_offline_table(store_path: Path, description: dict[str, Any]) -> None:
    """CreateFeatureGroup of a group with an Iceberg offline store creates its (empty) local
    Iceberg table, as SageMaker creates the Glue catalog's (fsgen.store.iceberg)."""
    from fsgen.store import iceberg

    iceberg.create_for(store_path, description)


def archive_offline(store_path: Path, group: str) -> None:
    """Move ``<store>/offline/<group>`` under ``<store>/archive/<group>/<UTC timestamp>``
    (an Iceberg group's table leaves the catalog first: the new group starts a table of its
    own)."""
    from fsgen.store import iceberg

    iceberg.forget(store_path, group)
    offline = store_path / "offline" / group
    if offline.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = store_path / "archive" / group / stamp
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(offline), str(target))


class LocalBackend(ControlPlaneBackend):
    name = "local"
    poll_interval = 0.01

    def __init__(self, config: ProjectConfig) -> None:
        self.config = config
        self.state_dir = config.store_path
        self.registry = Registry(
            config.store_path,
            region=config.aws.region,
            on_delete=lambda group: drop_group_data(config.store_path, group),
            on_create=lambda description: create_offline_table(config.store_path, description),
        )

    def call(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.registry.call(operation, request)
        except ApiError as exc:
            raise BackendError(operation, exc.code, exc.message) from None


class LocalDataPlane:
    """The embedded store's data plane: :class:`fsgen.store.LocalStore`, opened once."""

    name = "local"

    def __init__(
        self,
        config: ProjectConfig,
        store: LocalStore,
        deployed: frozenset[str] | None = None,
        definitions: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.deployed = deployed
        """Groups in the registry when the plane was opened (None: not checked)."""
        self.definitions = definitions or {}
        """Per deployed group, its FeatureDefinitions as deployed: name -> type
        (``Integral``, ``List(String)``, ``Vector(16)``)"""

    @classmethod
    def open(
        cls,
        config: ProjectConfig,
        spec: ProjectSpec,
        on_wait: Callable[[str], None] | None = None,
    ) -> LocalDataPlane:
        from fsgen.sagemaker import type_name
        from fsgen.store import LocalStore

        groups = Registry(config.store_path).snapshot()["groups"]
        definitions = {
            name: {
                str(d["FeatureName"]): type_name(d)
                for d in entry.get("description", {}).get("FeatureDefinitions", [])
            }
            for name, entry in groups.items()
        }
        store = LocalStore.open(config, spec, on_wait=on_wait)
        return cls(config, store, frozenset(groups), definitions)

    def require_deployed(self, group: str, operation: str) -> None:
        """SageMaker's answer to a record operation on a group that does not exist: a group of
        the definitions that was never applied (or was destroyed) has no store to write to or
        read from, locally as on AWS."""
        if self.deployed is None or group in self.deployed:
            return
        self.store.group_spec(group)  # a group that is not even defined: NotFound, known names
        raise BackendError(
            operation,
            "ResourceNotFound",
            f"feature group {group!r} is not deployed on the local backend (defined, but never "
            "applied or since destroyed); run `fsgen apply` to create it",
        )

    def require_applied(self, group: str) -> None:
        """A write of ``group`` as SageMaker's PutRecord takes it: the group deployed, and
        every feature the definitions give a record deployed with the same type. A feature
        added or retyped in featuredefs but not applied yet is refused before anything is
        written (on AWS, PutRecord of such a record fails: "Feature ... is not defined in
        FeatureGroup ...", as ``fsgen serve`` answers), naming the features and the fix."""
        self.require_deployed(group, "PutRecord")
        deployed = self.definitions.get(group)
        if not deployed:
            return  # not checked (a plane opened without the registry)
        from fsgen.sagemaker import desired_state

        declared = desired_state(self.store.group_spec(group), self.config).features
        missing = [f"{f.name} ({f.type})" for f in declared if f.name not in deployed]
        changed = [
            f"{f.name} ({deployed[f.name]} deployed, {f.type} declared)"
            for f in declared
            if f.name in deployed and deployed[f.name] != f.type
        ]
        if not (missing or changed):
            return
        parts = []
        if missing:
            parts.append(f"not deployed: {', '.join(missing)}")
        if changed:
            parts.append(f"deployed with another type: {', '.join(changed)}")
        raise BackendError(
            "PutRecord",
            "ValidationError",
            f"the definitions of feature group {group!r} differ from the deployed group "
            f"({'; '.join(parts)}): nothing was written; run `fsgen plan` and `fsgen apply` "
            "first",
        )

    def sink(self, group: str) -> Sink:
        self.require_applied(group)
        return self.store.writer(group)

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
        self.require_applied(group)
        return self.store.ingest(
            group,
            source,
            rejects,
            runtime=runtime,
            fmt=fmt,
            progress=progress,
            run_id=run_id,
            duplicates=duplicates,
        )

    def finish(self, result: IngestResult, error: str | None) -> None:
        self.store.finish_run(result, error)

    def record_counts(self, **counts: Any) -> None:
        from fsgen import audit

        audit.record_counts(self.store.root, **counts)

    def hidden_states(self, group: str, since: float) -> list[tuple[str, str]]:
        return self.store.hidden_states(group, since)

    def default_rejects(self, group: str) -> Path:
        from fsgen.backends.base import default_rejects_path

        return default_rejects_path(self.config.store_path, group)

    def get_record(
        self,
        group: str,
        record_id: str,
        feature_names: Sequence[str] | None = None,
        *,
        now: float | None = None,
    ) -> dict[str, object] | None:
        self.require_deployed(group, "GetRecord")
        return self.store.get_record(group, record_id, feature_names, now=now)

    def missing_reason(self, group: str, record_id: str, *, now: float | None = None) -> str:
        return self.store.missing_reason(group, record_id, now=now)

    def delete_record(
        self, group: str, record_id: str, event_time: str, hard: bool = False
    ) -> DeleteOutcome:
        self.require_deployed(group, "DeleteRecord")
        done = self.store.delete_record(group, record_id, event_time, hard=hard)
        return DeleteOutcome(group, done.record_id, done.event_time, hard, done.online_applied)

    def record_source(self, clock: Callable[[], float] | None = None) -> RecordSource:
        from fsgen.serving.sources import LocalRecordSource

        return LocalRecordSource(self.store, clock)

    def rebuild_states(
        self, group: str, ids: Sequence[str] | None = None
    ) -> tuple[int, list[tuple[str, str]]]:
        self.require_applied(group)
        return self.store.rebuild_states(group, ids)

    def local_store(self, command: str) -> Path:
        return self.store.root

    def close(self) -> None:
        self.store.close()
