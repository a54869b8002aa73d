"""Fixtures for the AWS backend tests: the example project in a temp dir, ``fsgen serve`` on a
free loopback port, boto3 clients and an AwsBackend pointed at it. Dummy credentials only."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from fsgen.backends.aws import AwsBackend, clients
from fsgen.config import ProjectConfig, load_config
from fsgen.loader import load
from fsgen.server import FeatureStoreServer, serve_in_thread
from fsgen.spec import ProjectSpec

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _dummy_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("FSGEN_USER", "tester")


@pytest.fixture
def example(tmp_path: Path) -> tuple[ProjectConfig, ProjectSpec]:
    root = tmp_path / "example"
    root.mkdir()
    shutil.copytree(
        REPO / "featuredefs", root / "featuredefs", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    config = load_config(root)
    return config, load(root)


@pytest.fixture
def served(example: tuple[ProjectConfig, ProjectSpec]) -> Iterator[FeatureStoreServer]:
    config, spec = example
    server = serve_in_thread(config, spec, port=0)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        server.runtime.store.close()


@pytest.fixture
def aws_args(example: tuple[ProjectConfig, ProjectSpec], served: FeatureStoreServer) -> list[str]:
    """The example project's ``[tool.fsgen.aws]`` pointed at ``served``; the CLI arguments
    that run a command on it with ``--backend aws``."""
    config, _ = example
    pyproject = config.root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "[tool.fsgen.aws]\n", f'[tool.fsgen.aws]\nendpoint_url = "{served.url}"\n'
        )
    )
    return ["--project", str(config.root), "--backend", "aws"]


def backend_for(url: str, config: ProjectConfig) -> AwsBackend:
    control, runtime = clients("us-east-1", url, max_attempts=2)
    backend = AwsBackend(control, runtime, config.store_path / "aws")
    backend.poll_interval = backend.max_poll_interval = 0.01
    return backend


@pytest.fixture
def make_backend() -> object:
    return backend_for


@pytest.fixture
def aws(served: FeatureStoreServer, example: tuple[ProjectConfig, ProjectSpec]) -> AwsBackend:
    return backend_for(served.url, example[0])
