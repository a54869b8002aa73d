"""Fixtures of the governance tests: a moto server over HTTP for the AWS paths, and a copy of
the example project with its own store."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _forget_generated_package() -> Iterator[None]:
    """CLI runs here (ingest, stream replay) import a project's ``generated`` package bound to
    that project's featuredefs; later tests in this process must not find it cached."""
    yield
    for name in [m for m in sys.modules if m == "generated" or m.startswith("generated.")]:
        del sys.modules[name]


@pytest.fixture
def aws_env(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Environment pointing every boto3 client at the moto server (no real credentials)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    return moto_url


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """A copy of the example project (definitions, data, pyproject) in a fresh directory."""
    root = tmp_path / "example"
    root.mkdir()
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(
        REPO / "featuredefs", root / "featuredefs", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(REPO / "data", root / "data")
    return root
