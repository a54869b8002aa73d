"""The spark extra stays optional: the core install, ``fsgen --help`` and ``fsgen dataset
--help`` never import pyspark, and without it ``--engine spark`` says what to install. No JVM
is started here."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
from click.testing import CliRunner
from pithelpers import Row, iso, write_offline, write_pit_project

from fsgen.cli import main
from fsgen.loader import load_with_config

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import sys
from click.testing import CliRunner
from fsgen.cli import main
import fsgen, fsgen.pit, fsgen.pit.dataset, fsgen.pit.spark
top = CliRunner().invoke(main, ["--help"])
sub = CliRunner().invoke(main, ["dataset", "--help"])
print(top.exit_code, sub.exit_code, "spark" in sub.output)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("pyspark", "py4j")))
"""


def test_help_and_imports_never_load_pyspark() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.splitlines()
    assert out == ["0 0 True", "[]"]


def test_the_extra_pins_pyspark_35_and_dev_installs_it() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert extras["spark"] == ["pyspark>=3.5,<3.6"]
    assert set(extras["spark"]) <= set(extras["dev"])


def test_without_pyspark_the_engine_says_what_to_install(tmp_path, monkeypatch) -> None:
    config, spec = load_with_config(write_pit_project(tmp_path / "project"))
    t0 = 1_710_028_800 * 1_000_000
    row = Row(
        values={"acct_id": "a", "ts": iso(t0), "level": 1}, event_us=t0, write_us=t0, api_us=t0
    )
    write_offline(config.store_path, spec.group("accounts"), [row], "extra")
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"acct_id": ["a"], "ts_label": [iso(t0)]}).to_csv(labels, index=False)
    monkeypatch.setitem(sys.modules, "pyspark", None)
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    result = CliRunner().invoke(
        main,
        [
            "--project",
            str(config.root),
            "dataset",
            "pit-strict",
            "--labels",
            str(labels),
            "--output",
            str(tmp_path / "out.csv"),
            "--engine",
            "spark",
        ],
    )
    assert result.exit_code == 1
    assert "the spark engine needs pyspark: pip install 'fsgen[spark]'" in result.output
    assert not (tmp_path / "out.csv").exists()
