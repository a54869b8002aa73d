"""fsgen validate / init / --help through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from fsgen.cli import main

REPO = Path(__file__).resolve().parents[2]
ENV = {"COLUMNS": "80", "NO_COLOR": "1"}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner(env=ENV).invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_validate_example_prints_summary() -> None:
    code, out, _ = run("--project", str(REPO), "validate")
    assert code == 0
    assert out == "3 feature groups, 13 features (5 from 2 aggregations), 2 feature sets: valid\n"


def test_validate_json() -> None:
    code, out, _ = run("--project", str(REPO), "validate", "--json")
    assert code == 0
    assert json.loads(out) == {
        "valid": True,
        "diagnostics": [],
        "summary": "3 feature groups, 13 features (5 from 2 aggregations), 2 feature sets",
    }


def test_validate_reports_every_error_and_exits_1(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "featuredefs/bad.py": """
        from fsgen import Entity, FeatureGroup, Fractional, String

        customer = Entity("customer_id", String)
        g = FeatureGroup("grp", entity=customer, event_time="ts", owner="o", description="d")

        @g.feature(Fractional, description="Average spend per month of tenure")
        def avg_monthly_spend(total_spend: float, tenure) -> float:
            return total_spend / tenure

        @g.feature(Fractional)
        def other(total_spend: float) -> float:
            return total_spend
        """
        }
    )
    code, out, err = run("--project", str(root), "validate")
    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        "featuredefs/bad.py:6: error FS104: feature 'avg_monthly_spend' depends on 'tenure', "
        "which is not defined",
        "  hint: add a parameter annotation for raw field 'tenure' or define a feature named "
        "'tenure'",
        "featuredefs/bad.py:10: error FS108: feature 'other' has no description",
        "  hint: one line of business meaning, e.g. 'Average spend per month'",
        "1 feature group, 2 features, 0 feature sets: 2 error(s)",
    ]
    code, out, _ = run("--project", str(root), "validate", "--json")
    payload = json.loads(out)
    assert code == 1 and payload["valid"] is False
    assert [(d["path"], d["line"], d["code"]) for d in payload["diagnostics"]] == [
        ("featuredefs/bad.py", 6, "FS104"),
        ("featuredefs/bad.py", 10, "FS108"),
    ]


def test_missing_project_is_a_clear_error(tmp_path: Path) -> None:
    code, _, err = run("--project", str(tmp_path), "validate")
    assert code == 1
    assert err.startswith("error: no pyproject.toml with a [tool.fsgen] table")


def test_init_scaffolds_a_valid_project(tmp_path: Path) -> None:
    target = tmp_path / "new-project"
    code, out, _ = run("init", str(target))
    assert code == 0 and "Initialized fsgen project" in out
    code, out, _ = run("--project", str(target), "validate")
    assert (code, out) == (0, "1 feature group, 2 features, 1 feature set: valid\n")
    code, _, err = run("init", str(target))
    assert code == 1 and "already exists" in err


def test_init_says_where_and_what_to_run_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A project made in the current directory is named after it (normalized), and the next
    step is not a ``cd .``; one made elsewhere says where, quoted for the shell."""
    here = tmp_path / "plant telemetry"
    here.mkdir()
    monkeypatch.chdir(here)
    code, out, _ = run("init", ".")
    assert code == 0
    assert out == f"Initialized fsgen project 'plant-telemetry' in {here}. Next: fsgen validate\n"
    code, out, _ = run("init", "sub dir")
    assert code == 0
    assert out.endswith("Next: cd 'sub dir' && fsgen validate\n")


def test_help_imports_nothing_heavy() -> None:
    probe = (
        "import sys\n"
        "from fsgen.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('pandas', 'duckdb', 'boto3', 'botocore', 'pyarrow', "
        "'pydantic', 'jinja2', 'rich') if m in sys.modules)\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert out.strip().splitlines()[-1] == "HEAVY="
