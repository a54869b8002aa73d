"""Fixtures for the ``fsgen serve`` tests: the example project in a temp dir and a server on a
free loopback port (in a thread, or as the ``fsgen serve`` process)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from serverlib import REPO, Example, ServeProcess, stop

from fsgen.config import load_config
from fsgen.loader import load
from fsgen.server import FeatureStoreServer, serve_in_thread


@pytest.fixture(autouse=True)
def _dummy_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("FSGEN_USER", "tester")
    monkeypatch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")


@pytest.fixture
def example(tmp_path: Path) -> Example:
    root = tmp_path / "example"
    root.mkdir()
    shutil.copytree(
        REPO / "featuredefs", root / "featuredefs", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return load_config(root), load(root)


@pytest.fixture
def served(example: Example) -> Iterator[FeatureStoreServer]:
    config, spec = example
    server = serve_in_thread(config, spec, port=0)
    try:
        yield server
    finally:
        stop(server)


@pytest.fixture
def serve_process(example: Example) -> Iterator[ServeProcess]:
    process = ServeProcess(example[0].root).start()
    try:
        yield process
    finally:
        process.stop()
