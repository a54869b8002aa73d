"""Fixtures for plan/apply tests."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from planproj import Defs, Project


@pytest.fixture
def project(tmp_path: Path) -> Callable[[Defs], Project]:
    def make(defs: Defs, aws: str = "") -> Project:
        return Project(tmp_path / "proj").write(defs, aws)

    return make


@pytest.fixture(autouse=True)
def _dummy_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach AWS: dummy credentials, no shared config files."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("FSGEN_USER", "tester")
