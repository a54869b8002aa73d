"""One local SparkSession (``local[2]``, two shuffle partitions, UI off) for the Spark tests,
and the point-in-time tests' project and offline writer (tests/pit/pithelpers.py).

Without pyspark or Java the Spark tests skip on a developer's machine and fail in CI
(``CI`` set), where ``make setup`` installs pyspark with the dev extra."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pit"))

from pithelpers import write_pit_project

from fsgen.config import ProjectConfig
from fsgen.loader import load_with_config
from fsgen.spec import ProjectSpec


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must install it: make setup, .ci/run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        _unavailable("pyspark is not installed (pip install -e '.[spark]')")
    from fsgen.pit import PitError
    from fsgen.pit.spark import find_java

    try:
        find_java()
    except PitError as exc:
        _unavailable(str(exc))
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # the driver listens on loopback
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Python workers: this venv
    session = (
        SparkSession.builder.master("local[2]")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .appName("fsgen-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def pit_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[ProjectConfig, ProjectSpec]:
    root = write_pit_project(tmp_path_factory.mktemp("sparkpitproject"))
    return load_with_config(root)
