"""The Spark job stays optional: importing it, generating it and ``fsgen ingest --help`` never
load pyspark, and without pyspark ``fsgen ingest --engine spark`` says in one line what to
install, writing nothing. No JVM is started here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fsgen.cli import main

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import sys
from click.testing import CliRunner
from fsgen.cli import main
import fsgen.glue, fsgen.runtime.sparkjob, fsgen.store.spark
import generated.groups.customer_features.spark_job
sub = CliRunner().invoke(main, ["ingest", "--help"])
print(sub.exit_code, "--engine" in sub.output)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("pyspark", "py4j")))
"""


def test_the_job_and_ingest_help_never_load_pyspark() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.splitlines()
    assert out == ["0 True", "[]"]


def test_without_pyspark_engine_spark_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    root = tmp_path / "example"
    root.mkdir()
    for name in ("featuredefs", "data", "generated"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    runner = CliRunner()
    assert runner.invoke(main, ["--project", str(root), "apply", "--auto-approve"]).exit_code == 0
    monkeypatch.setitem(sys.modules, "pyspark", None)
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    rejects = tmp_path / "rejects.jsonl"
    result = runner.invoke(
        main,
        [
            *("--project", str(root), "ingest", "customer-features"),
            str(root / "data" / "customers.csv"),
            *("--engine", "spark", "--rejects", str(rejects)),
        ],
    )
    assert result.exit_code == 1
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert errors == ["error: the spark engine needs pyspark: pip install 'fsgen[spark]'"]
    assert not rejects.exists()
    assert not list((root / ".fsgen").glob("offline/*/data/*"))
