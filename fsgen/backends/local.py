"""The local backend: feature groups deployed into the embedded store under ``<store>``.

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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fsgen.backends.base import BackendError, ControlPlaneBackend
from fsgen.backends.registry import ApiError, Registry
from fsgen.config import ProjectConfig


def drop_group_data(store_path: Path, group: str) -> None:
    """Drop ``group``'s online records and archive its offline directory."""
    from fsgen.store.online import OnlineStore

    online = OnlineStore(store_path / "online.sqlite")
    try:
        online.drop(group)
    finally:
        online.close()
    archive_offline(store_path, group)


def archive_offline(store_path: Path, group: str) -> None:
    """Move ``<store>/offline/<group>`` under ``<store>/archive/<group>/<UTC timestamp>``."""
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
        )

    def call(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.registry.call(operation, request)
        except ApiError as exc:
            raise BackendError(operation, exc.code, exc.message) from None
