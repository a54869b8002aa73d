"""fsgen.pit's modules import each other without a cycle, lazy imports included (the SQL, its
Athena runner and the dataset builder used to import each other)."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

PIT = Path(__file__).resolve().parents[2] / "fsgen" / "pit"


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "fsgen.pit":
                found |= {f"fsgen.pit.{a.name}" for a in node.names}
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def test_no_import_cycle_inside_fsgen_pit() -> None:
    modules = {f"fsgen.pit.{p.stem}": p for p in PIT.glob("*.py") if p.stem != "__init__"}
    graph = {m: {i for i in imports_of(p) if i in modules and i != m} for m, p in modules.items()}
    assert graph["fsgen.pit.athena_runner"] >= {"fsgen.pit.athena"}
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:  # pragma: no cover - the failure message is the point
        raise AssertionError(f"import cycle: {exc.args[1]}") from None
