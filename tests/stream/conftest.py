"""Fixtures for streaming tests: the example project with its store in a temp dir, the
generated stream handler, Kinesis events, and dummy AWS credentials."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamhelpers import REPO

from fsgen.config import ProjectConfig, load_config
from fsgen.loader import load
from fsgen.spec import ProjectSpec
from fsgen.store import LocalStore
from fsgen.stream.events import Handler, load_handler


@pytest.fixture(autouse=True)
def _dummy_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.delenv("FSGEN_DEAD_LETTER", raising=False)


@pytest.fixture(scope="session")
def repo_spec() -> tuple[ProjectConfig, ProjectSpec]:
    config = load_config(REPO)
    return config, load(config.root)


def _definitions_are_the_repos() -> bool:
    """Another test may have loaded a project whose definitions package is also called
    ``featuredefs`` (a copy, a scaffold): the loader replaces the package in sys.modules."""
    import sys

    package = sys.modules.get("featuredefs")
    paths = [Path(p) for p in getattr(package, "__path__", [])]
    return bool(paths) and all(p.resolve().is_relative_to(REPO.resolve()) for p in paths)


@pytest.fixture
def example(
    repo_spec: tuple[ProjectConfig, ProjectSpec], tmp_path: Path
) -> tuple[ProjectConfig, ProjectSpec]:
    """The example project, its store under tmp_path."""
    config, spec = repo_spec
    if not _definitions_are_the_repos():
        spec = load(config.root)
    return config.model_copy(update={"store_dir": str(tmp_path / "store")}), spec


@pytest.fixture
def handler(example: tuple[ProjectConfig, ProjectSpec]) -> Handler:
    h = load_handler(*example, "customer-features")
    assert h.note.startswith("running generated."), h.note
    return h


@pytest.fixture
def store(example: tuple[ProjectConfig, ProjectSpec]) -> Iterator[LocalStore]:
    s = LocalStore.open(*example)
    yield s
    s.close()


@pytest.fixture
def project_copy(tmp_path: Path, deploy: Callable[[Path], None]) -> ProjectConfig:
    """A copy of the example project (definitions, generated/, pyproject) for subprocesses,
    its groups deployed in its local store."""
    root = tmp_path / "project"
    root.mkdir()
    for name in ("featuredefs", "generated"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    deploy(root)
    return load_config(root)
