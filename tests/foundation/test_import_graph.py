"""No import cycles in fsgen (the demo steps and ``fsgen.demo`` had one). The graph is read
from the source (module-level imports, ``TYPE_CHECKING`` blocks included; imports inside
functions are lazy and left out)."""

from __future__ import annotations

import ast
from pathlib import Path

FSGEN = Path(__file__).resolve().parents[2] / "fsgen"


def _module(path: Path) -> str:
    parts = path.relative_to(FSGEN.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(tree: ast.Module, known: set[str]) -> set[str]:
    out: set[str] = set()
    nodes: list[ast.stmt] = list(tree.body)
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.If):  # TYPE_CHECKING blocks
            nodes.extend(node.body)
            nodes.extend(node.orelse)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # ``from pkg import submodule`` depends on the submodule (the package is already
            # being imported); ``from module import name`` on the module
            subs = {f"{node.module}.{a.name}" for a in node.names} & known
            out.update(subs)
            if len(subs) < len(node.names):
                out.add(node.module)
    return {m for m in out if m in known}


def graph() -> dict[str, set[str]]:
    paths = sorted(FSGEN.rglob("*.py"))
    known = {_module(p) for p in paths}
    return {
        _module(p): _top_level_imports(ast.parse(p.read_text(encoding="utf-8")), known)
        for p in paths
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_fsgen_has_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


SEALED = ("fsgen.specbuild",)
"""packages whose parts are private: the rest of fsgen imports the package, never a part"""


def test_sealed_packages_are_imported_through_their_package() -> None:
    edges = graph()
    for package in SEALED:
        parts = {m for m in edges if m.startswith(package + ".")}
        assert parts, package  # the package still has parts
        outside = {
            (m, dep)
            for m, deps in edges.items()
            if m != package and not m.startswith(package + ".")
            for dep in deps & parts
        }
        assert outside == set(), f"import {package} instead of its parts"
        inward = {(m, package) for m in parts if package in edges[m]}
        assert inward == set(), "a part imports its own package (a cycle through __init__)"
