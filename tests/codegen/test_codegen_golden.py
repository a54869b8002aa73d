"""Golden files: each scenario under tests/golden/ is a project whose committed generated/ tree
pins the exact output. Refresh deliberately with ``FSGEN_UPDATE_GOLDEN=1 pytest tests/codegen``.
"""

from __future__ import annotations

import difflib
import os
import shutil
from pathlib import Path

import pytest
from codegen_helpers import GOLDEN, REPO, SCENARIOS, load_project

from fsgen.codegen import build, diff, generate

UPDATE = os.environ.get("FSGEN_UPDATE_GOLDEN") == "1"


def _unified(path: str, old: str, new: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"golden/{path}",
            tofile=f"generated/{path}",
        )
    )


@pytest.mark.parametrize("name", SCENARIOS)
def test_golden_output_matches(name: str) -> None:
    config, spec = load_project(GOLDEN / name)
    if UPDATE:
        generate(config, spec)
    result = diff(config, spec)
    problems = []
    expected_dir = config.generated_path
    for artifact in result.artifacts:
        target = expected_dir / artifact.path
        old = target.read_text(encoding="utf-8") if target.exists() else ""
        if old != artifact.content:
            problems.append(_unified(artifact.path, old, artifact.content))
    problems += [f"golden/{p} is no longer generated" for p in result.removed]
    assert not problems, (
        "generated output differs from the golden files "
        "(refresh with FSGEN_UPDATE_GOLDEN=1 if intended):\n" + "\n".join(problems)
    )


def test_example_generated_dir_is_fresh() -> None:
    config, spec = load_project(REPO)
    result = diff(config, spec)
    assert result.changed == [], f"run 'fsgen generate': stale {result.changed}"


@pytest.mark.parametrize("name", SCENARIOS)
def test_output_is_byte_identical_across_runs_and_locations(name: str, tmp_path: Path) -> None:
    """Same definitions, another directory and a second run: the same bytes (no absolute paths,
    no timestamps)."""
    config, spec = load_project(GOLDEN / name)
    first = {a.path: a.content.encode() for a in build(config, spec)}
    copy = tmp_path / "elsewhere" / f"renamed-{name}"
    shutil.copytree(GOLDEN / name, copy, ignore=shutil.ignore_patterns("generated", "__pycache__"))
    config2, spec2 = load_project(copy)
    generate(config2, spec2)
    second = {
        str(p.relative_to(config2.generated_path)): p.read_bytes()
        for p in config2.generated_path.rglob("*")
        if p.is_file()
    }
    assert first == second
    assert all(b"\r\n" not in v for v in second.values())
    assert all(str(tmp_path).encode() not in v for v in second.values())
    third = {a.path: a.content.encode() for a in build(config2, spec2)}
    assert third == first
