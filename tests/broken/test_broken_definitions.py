"""Each broken definition set under tests/broken/<case>/ gives exactly its expected.txt through
``fsgen validate``: every diagnostic with file:line, no traceback. Before FS109 covered default
types, ``defaults={age: "n/a"}`` validated (and ``fsgen dataset`` crashed with ArrowInvalid) and a
List default crashed validate with a pydantic traceback; FS114 did not exist."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from fsgen.cli import main

HERE = Path(__file__).resolve().parent
CASES = sorted(p.parent.name for p in HERE.glob("*/pyproject.toml"))
UPDATE = os.environ.get("FSGEN_UPDATE_GOLDEN") == "1"
ENV = {"COLUMNS": "80", "NO_COLOR": "1"}


def copy_case(name: str, tmp_path: Path) -> Path:
    return Path(
        shutil.copytree(HERE / name, tmp_path / name, ignore=shutil.ignore_patterns("*.txt"))
    )


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=ENV, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("name", CASES)
def test_validate_reports_the_expected_diagnostics(name: str, tmp_path: Path) -> None:
    root = copy_case(name, tmp_path)
    code, out, err = cli("--project", str(root), "validate")
    expected = HERE / name / "expected.txt"
    if UPDATE:
        expected.write_text(err, encoding="utf-8")
    assert code == 1 and out == ""
    assert "Traceback" not in err
    assert err == expected.read_text(encoding="utf-8")


def test_the_cases_cover_the_new_diagnostics() -> None:
    text = {name: (HERE / name / "expected.txt").read_text() for name in CASES}
    assert "error FS114: name 'raw_sesions' is not defined" in text["name_errors"]
    assert "nameerrdefs/helpers.py:5: error FS114: name 'MAX_VALUE'" in text["name_errors"]
    assert "'n/a' is not an Integral value" in text["wrong_defaults"]
    assert "a default for a List(String) feature is not supported" in text["list_default"]
    # a bare decorator: one diagnostic (not one per importing module), no memory address
    assert text["bare_decorator"].count("error FS107") == 1
    assert "is used without arguments on 'volume_cm3'" in text["bare_decorator"]
    assert " at 0x" not in text["bare_decorator"]
    assert "no attribute 'featur'\n  hint: did you mean 'feature'?" in text["bare_decorator"]
    refs = text["feature_set_refs"]
    assert "keys must be a mapping" in refs and "dictionary update sequence" not in refs
    assert "hint: did you mean 'weight_kg'?" in refs
    assert "'parcel-scans' is a feature group: list the FeatureGroup object itself" in refs
    assert "hint: did you mean 'owner'? FeatureSet.__init__() takes name, features," in refs
    lists = text["not_lists"]
    assert "sources must be a list, e.g. sources=[Source.batch('data/events.csv')]" in lists
    assert "windows must be a list" in lists and "@on_demand: sources must be a list" in lists
    assert "not iterable" not in lists


def test_validate_json_lists_the_same_diagnostics(tmp_path: Path) -> None:
    root = copy_case("wrong_defaults", tmp_path)
    code, out, _ = cli("--project", str(root), "validate", "--json")
    report = json.loads(out)
    assert code == 1 and not report["valid"]
    assert [(d["path"], d["line"], d["code"]) for d in report["diagnostics"]] == [
        ("baddefs/listeners.py", 38, "FS109")
    ] * 3


def test_dataset_stops_at_the_diagnostic_instead_of_crashing(tmp_path: Path) -> None:
    root = copy_case("wrong_defaults", tmp_path)
    code, _, err = cli(
        "--project",
        str(root),
        "dataset",
        "churn-model",
        "--labels",
        str(HERE / "wrong_defaults" / "labels.csv"),
        "--output",
        str(tmp_path / "out.parquet"),
    )
    assert code == 1
    assert "baddefs/listeners.py:38: error FS109" in err
    assert "ArrowInvalid" not in err and "Traceback" not in err
    assert not (tmp_path / "out.parquet").exists()


def test_a_correct_default_of_each_type_is_accepted(tmp_path: Path) -> None:
    fixes = {
        "wrong_defaults": (
            'defaults={age: "n/a", skip_rate: True, country: 0}',
            'defaults={age: 0, skip_rate: 0, country: "unknown"}',
        ),
        "list_default": (
            'defaults={age: 2.5, top_genres: ["pop"]}',
            "defaults={age: 30.0, top_genres: None}",
        ),
    }
    for name, (wrong, right) in fixes.items():
        root = copy_case(name, tmp_path)
        (defs,) = root.glob("*/listeners.py")
        assert wrong in defs.read_text()
        defs.write_text(defs.read_text().replace(wrong, right))
        code, out, err = cli("--project", str(root), "validate")
        assert code == 0, err
        assert out.endswith(": valid\n")


def test_a_python_type_as_dtype_hides_no_other_error_of_its_file(tmp_path: Path) -> None:
    """``@group.feature(float)`` raised while the module was imported, so its FS107 was the
    only error of the file; now validate, plan and generate report every error in one run,
    and nothing is generated from the half-declared feature."""
    root = copy_case("python_dtype", tmp_path)
    expected = (HERE / "python_dtype" / "expected.txt").read_text().splitlines()
    diagnostics = [line for line in expected if not line.startswith(" ") and ": error " in line]
    assert [line.split(": error ")[1].split(":")[0] for line in diagnostics] == [
        "FS107",
        "FS203",
        "FS104",
        "FS107",
        "FS107",
    ]
    assert "  hint: did you mean Fractional? (from fsgen import Fractional)" in expected
    for command in ("plan", "generate"):
        code, _, err = cli("--project", str(root), command)
        assert code == 1 and "Traceback" not in err
        assert err.splitlines()[:-1] == expected[:-1]  # the diagnostics, then the summary
        assert err.splitlines()[-1] == "error: 5 error(s) in feature definitions"
    assert not (root / "generated").exists()
