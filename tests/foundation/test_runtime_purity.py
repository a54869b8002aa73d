"""``fsgen/runtime/`` imports nothing else from fsgen: the Lambda zip and generated code
depend only on it (and on the definitions). Each runtime module is imported alone in a fresh
interpreter and the fsgen modules it pulled in are listed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[2] / "fsgen" / "runtime"
HEAVY = ("pydantic", "pandas", "duckdb", "pyarrow", "numpy", "jinja2", "click", "boto3")

_CHECK = f"""
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps({{
    "outside": sorted(m for m in sys.modules
                      if m.startswith("fsgen.") and not m.startswith("fsgen.runtime")),
    "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules),
}}))
"""


def test_every_runtime_module_imports_only_the_runtime_and_the_standard_library() -> None:
    modules = sorted(p.stem for p in RUNTIME.glob("*.py") if p.stem != "__init__")
    assert "ingest" in modules and "sinks" in modules and "sources" in modules
    for name in ["__init__", *modules]:
        module = "fsgen.runtime" if name == "__init__" else f"fsgen.runtime.{name}"
        proc = subprocess.run(
            [sys.executable, "-c", _CHECK, module], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stderr
        found = json.loads(proc.stdout.splitlines()[-1])
        assert found == {"outside": [], "heavy": []}, (module, found)


def test_no_runtime_module_imports_fsgen_outside_the_runtime_even_lazily() -> None:
    """An AST scan: imports inside functions count too (they are how the runtime used to
    reach into the loader, the store and the audit trail)."""
    import ast

    found = []
    for path in sorted(RUNTIME.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                if name == "fsgen" or (
                    name.startswith("fsgen.") and not name.startswith("fsgen.runtime")
                ):
                    found.append(f"{path.name}:{node.lineno}: {name}")
    assert found == []
