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
