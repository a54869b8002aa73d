from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pithelpers import write_pit_project

from fsgen.config import ProjectConfig
from fsgen.loader import load_with_config
from fsgen.spec import ProjectSpec


@pytest.fixture(scope="session")
def pit_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[ProjectConfig, ProjectSpec]:
    root = write_pit_project(tmp_path_factory.mktemp("pitproject"))
    return load_with_config(root)


@pytest.fixture(scope="session")
def postgres():  # type: ignore[no-untyped-def]
    """A throw-away PostgreSQL cluster for the whole session (skipped only outside CI)."""
    from sqlengines import postgres_cluster

    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture(params=["duckdb", "postgres"])
def sql_engine(request: pytest.FixtureRequest) -> tuple[str, object]:
    """Each engine that executes the generated Athena SQL, with its handle."""
    if request.param == "postgres":
        return "postgres", request.getfixturevalue("postgres")
    return "duckdb", None


@pytest.fixture(params=["window", "asof", "asof-uncached"])
def pit_join_form(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The local engine's join form forced for one test (fsgen.pit.planner), with and
    without the history cache (fsgen.pit.cache)."""
    form, _, uncached = str(request.param).partition("-")
    monkeypatch.setenv("FSGEN_PIT_FORM", form)
    monkeypatch.setenv("FSGEN_PIT_CACHE", "off" if uncached else "on")
    return str(request.param)
