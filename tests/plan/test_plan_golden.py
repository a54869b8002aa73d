"""Golden plans: the create plan of each golden scenario (tests/golden/<scenario>) against an
empty local store, as text and JSON, pinned in tests/plan/golden/<scenario>/. Fails with a
unified diff; refresh deliberately with FSGEN_UPDATE_GOLDEN=1."""

from __future__ import annotations

import difflib
import os
import shutil
from pathlib import Path

import pytest

from fsgen.backends.local import LocalBackend
from fsgen.config import load_config
from fsgen.loader import load
from fsgen.plan.apply import compute_plan
from fsgen.plan.model import Plan
from fsgen.plan.render import render_plan

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE.parent / "golden"
EXPECTED = HERE / "golden"


def check(path: Path, actual: str) -> None:
    if os.environ.get("FSGEN_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
        return
    expected = path.read_text() if path.exists() else ""
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(True), actual.splitlines(True), str(path), "actual"
            )
        )
        pytest.fail(f"golden plan differs (FSGEN_UPDATE_GOLDEN=1 refreshes):\n{diff}")


@pytest.mark.parametrize("scenario", sorted(p.name for p in SCENARIOS.iterdir() if p.is_dir()))
def test_golden_plan(scenario: str, tmp_path: Path) -> None:
    root = tmp_path / scenario
    shutil.copytree(
        SCENARIOS / scenario,
        root,
        ignore=shutil.ignore_patterns("__pycache__", "generated", ".fsgen"),
    )
    config = load_config(root)
    spec = load(root)
    plan = compute_plan(config, spec, LocalBackend(config), artifacts=False)
    check(EXPECTED / scenario / "plan.txt", render_plan(plan))
    text = plan.model_dump_json(indent=2) + "\n"
    check(EXPECTED / scenario / "plan.json", text)
    assert Plan.model_validate_json(text) == plan
