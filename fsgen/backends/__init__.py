"""Where feature groups are deployed: the embedded local store (``local``) or Amazon SageMaker
Feature Store (``aws``). Both speak SageMaker's control-plane shapes; see ``base``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fsgen.backends.base import Backend
    from fsgen.config import ProjectConfig


def open_backend(config: ProjectConfig, name: str | None = None) -> Backend:
    """The backend called ``name`` (default: the project's) for ``config``."""
    from fsgen.errors import ConfigError

    name = name or config.backend
    if name == "local":
        from fsgen.backends.local import LocalBackend

        return LocalBackend(config)
    if name == "aws":
        from fsgen.backends.aws import AwsBackend

        return AwsBackend.from_config(config)
    raise ConfigError(f"unknown backend {name!r} (known: local, aws)")
