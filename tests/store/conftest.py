"""Fixtures for the local store tests: a small project built in a temp dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from storehelpers import FakeClock, make_project

from fsgen.config import ProjectConfig, load_config
from fsgen.loader import load
from fsgen.spec import ProjectSpec
from fsgen.store import LocalStore


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[ProjectConfig, ProjectSpec]:
    root = make_project(tmp_path_factory.mktemp("storeproject"))
    return load_config(root), load(root)


@pytest.fixture(scope="session")
def iceberg_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[ProjectConfig, ProjectSpec]:
    """The same project with both groups' offline stores as Iceberg tables."""
    root = make_project(
        tmp_path_factory.mktemp("iceproject"), package="icestoredefs", table_format="Iceberg"
    )
    return load_config(root), load(root)


@pytest.fixture(scope="session")
def spec(project: tuple[ProjectConfig, ProjectSpec]) -> ProjectSpec:
    return project[1]


@pytest.fixture
def store(tmp_path: Path, spec: ProjectSpec) -> Iterator[LocalStore]:
    clock = FakeClock(1_700_000_000.0)
    s = LocalStore(tmp_path / "store", spec, clock=clock)
    s.fake_clock = clock  # type: ignore[attr-defined]
    yield s
    s.close()
