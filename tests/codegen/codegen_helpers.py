"""Shared helpers for codegen tests: the golden scenarios (each a small fsgen project under
tests/golden/ with its committed generated/ tree) and importing generated modules in isolation
(every project's generated package is called ``generated``)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest

from fsgen.config import ProjectConfig
from fsgen.loader import load_with_config
from fsgen.spec import ProjectSpec

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden"
SCENARIOS = ("shop", "rides", "overrides", "baskets")


def load_project(root: Path) -> tuple[ProjectConfig, ProjectSpec]:
    return load_with_config(root)


def _purge(prefixes: tuple[str, ...]) -> None:
    for name in [m for m in sys.modules if m.split(".")[0] in prefixes]:
        del sys.modules[name]


@contextmanager
def project_on_path(root: Path, definitions: str) -> Iterator[None]:
    """Make ``root``'s definitions and generated package importable, isolated from others."""
    saved = list(sys.path)
    _purge(("generated", definitions))
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    try:
        yield
    finally:
        _purge(("generated", definitions))
        sys.path[:] = saved


def import_generated(module: str) -> ModuleType:
    return importlib.import_module(f"generated.{module}")


@pytest.fixture
def example() -> Iterator[tuple[ProjectConfig, ProjectSpec]]:
    config, spec = load_project(REPO)
    with project_on_path(REPO, config.definitions):
        config, spec = load_project(REPO)
        yield config, spec


@pytest.fixture(params=SCENARIOS)
def scenario(request: pytest.FixtureRequest) -> Iterator[tuple[ProjectConfig, ProjectSpec]]:
    root = GOLDEN / request.param
    config, spec = load_project(root)
    with project_on_path(root, config.definitions):
        config, spec = load_project(root)
        yield config, spec


@pytest.fixture
def rides() -> Iterator[tuple[ProjectConfig, ProjectSpec]]:
    root = GOLDEN / "rides"
    config, _ = load_project(root)
    with project_on_path(root, config.definitions):
        yield load_project(root)
