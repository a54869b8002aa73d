"""Where feature groups are deployed: the embedded local store (``local``) or Amazon SageMaker
Feature Store (``aws``). Each backend has a control plane (``open_backend``: SageMaker's
control-plane shapes, see ``base``) and, beside it, a data plane (``open_data_plane``: records
in and out, see :class:`fsgen.backends.base.DataPlane`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fsgen.backends.base import Backend, DataPlane
    from fsgen.config import ProjectConfig
    from fsgen.spec import ProjectSpec

BACKENDS = ("local", "aws")


def _known(name: str) -> str:
    from fsgen.errors import ConfigError

    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r} (known: {', '.join(BACKENDS)})")
    return name


def open_backend(config: ProjectConfig, name: str | None = None) -> Backend:
    """The control plane of the backend called ``name`` (default: the project's)."""
    name = _known(name or config.backend)
    if name == "local":
        from fsgen.backends.local import LocalBackend

        return LocalBackend(config)
    from fsgen.backends.aws import AwsBackend

    return AwsBackend.from_config(config)


def open_data_plane(
    config: ProjectConfig,
    spec: ProjectSpec,
    name: str | None = None,
    *,
    on_wait: Callable[[str], None] | None = None,
    endpoint_url: str | None = None,
) -> DataPlane:
    """The data plane of the backend called ``name`` (default: the project's), opened once
    for a command. ``endpoint_url`` (aws) overrides the featurestore-runtime endpoint."""
    name = _known(name or config.backend)
    if name == "local":
        from fsgen.backends.local import LocalDataPlane

        return LocalDataPlane.open(config, spec, on_wait)
    from fsgen.backends.aws import AwsDataPlane

    return AwsDataPlane.open(config, spec, endpoint_url)


def project_data_plane(project: str | None = None) -> DataPlane:
    """The data plane of the project at or above ``project`` (default: the working
    directory), on ``FSGEN_BACKEND`` or its configured backend: what a generated batch job
    writes to (``python -m generated.groups.<g>.batch_job``)."""
    from fsgen.config import load_config
    from fsgen.loader import load

    config = load_config(Path(project) if project else None)
    return open_data_plane(config, load(config.root), os.environ.get("FSGEN_BACKEND") or None)
