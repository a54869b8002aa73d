"""A Spark run prints fsgen's lines only: the driver JVM starts with fsgen's log4j2
configuration (fsgen/runtime/log4j2.properties), so neither Spark's "Setting default log
level" notice nor the NativeCodeLoader warning precedes fsgen's output, while an error logged
in the JVM still reaches stderr. Each check starts its own fsgen process, hence its own JVM."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent
LOG4J_LINE = re.compile(r"\d\d/\d\d/\d\d \d\d:\d\d:\d\d (TRACE|DEBUG|INFO|WARN|ERROR|FATAL) ")


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "80"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def project(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scaffolded project (``fsgen init``), applied and ingested: what a new user runs Spark
    on."""
    root = tmp_path_factory.mktemp("sparklog") / "proj"
    assert run([str(BIN / "fsgen"), "init", str(root)], root.parent).returncode == 0
    applied = run([str(BIN / "fsgen"), "apply", "--auto-approve"], root)
    assert applied.returncode == 0, applied.stderr
    ingested = run([str(BIN / "fsgen"), "ingest", "user-activity", "data/user_activity.csv"], root)
    assert ingested.returncode == 0, ingested.stderr
    return root


def test_spark_ingest_prints_no_log4j_lines(project: Path) -> None:
    done = run(
        [
            str(BIN / "fsgen"),
            *("ingest", "user-activity", "data/user_activity.csv"),
            "--engine",
            "spark",
        ],
        project,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == (
        "running generated.groups.user_activity.runtime "
        "(generated/groups/user_activity/runtime.py, up to date with the definitions)"
    ), done.stderr
    assert re.fullmatch(r"user-activity: read 3, written 3, rejected 0 in .*", lines[1])
    assert len(lines) == 2, done.stderr
    assert "log level" not in done.stderr and "NativeCodeLoader" not in done.stderr


def test_spark_dataset_prints_no_log4j_lines(project: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("user_id,event_time\nu1,2024-01-03T00:00:00Z\n")
    out = tmp_path / "train.parquet"
    done = run(
        [
            str(BIN / "fsgen"),
            "dataset",
            "engagement-model",
            "--labels",
            str(labels),
            "--output",
            str(out),
            "--engine",
            "spark",
        ],
        project,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"engagement-model: 1 rows x 4 columns (2 features) -> {out}"
    ], done.stderr


def test_a_jvm_error_still_reaches_stderr(project: Path) -> None:
    script = textwrap.dedent(
        """
        from fsgen.runtime.sparktasks import session
        spark = session(log_level="ERROR")
        log = spark._jvm.org.apache.logging.log4j.LogManager.getLogger("fsgen.test")
        log.warn("a warning stays quiet")
        log.error("a real error surfaces")
        spark.stop()
        """
    )
    done = run([sys.executable, "-c", script], project)
    assert done.returncode == 0, done.stderr
    errors = [ln for ln in done.stderr.splitlines() if LOG4J_LINE.match(ln)]
    assert len(errors) == 1 and errors[0].endswith("ERROR test: a real error surfaces"), done.stderr
    assert "log level" not in done.stderr
