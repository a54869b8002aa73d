"""FS114, the one rule that reads bytecode: every global name a transformation (and each helper
of the definitions package it calls) reads must resolve to its module's globals or a builtin,
else ingestion or serving would raise NameError. Reads the functions the loader imported."""

from __future__ import annotations

import builtins
import difflib
import dis
import os
import sys
import types
from collections.abc import Iterator

from fsgen.errors import Diagnostic
from fsgen.spec import FunctionRef, ProjectSpec, SourceLocation


def rule_global_names(spec: ProjectSpec) -> Iterator[Diagnostic]:
    """FS114: a name a transformation (or a helper of the definitions package it calls) reads
    as a global, which its module does not define and is no builtin: calling it would raise
    NameError during ingestion or serving. Reads the functions the loader imported."""
    seen: set[tuple[str, int, str]] = set()
    for what, ref, loc in _transformations(spec):
        fn = _function(ref)
        if fn is None:
            continue  # not importable at module level: FS104 says so
        root = _root_of(fn, loc)
        for helper, name, line in _unresolved(fn, spec.package):
            path = _relative(helper.__code__.co_filename, root)
            if (path, line, name) in seen:
                continue
            seen.add((path, line, name))
            used = what if helper is fn else f"helper {helper.__qualname__!r}, which {what} calls,"
            close = difflib.get_close_matches(name, _visible(helper), n=1, cutoff=0.75)
            yield Diagnostic(
                path=path,
                line=line,
                code="FS114",
                message=f"name {name!r} is not defined: {used} would raise NameError",
                hint=f"did you mean {close[0]!r}?"
                if close
                else f"import or define {name!r} in module {helper.__module__!r}",
            )


def _transformations(spec: ProjectSpec) -> Iterator[tuple[str, FunctionRef, SourceLocation]]:
    for g in spec.groups:
        for f in g.features:
            yield f"feature {f.name!r} of group {g.name!r}", f.function, f.location
    for od in spec.on_demand:
        yield f"on-demand feature {od.name!r}", od.function, od.location


def _function(ref: FunctionRef) -> types.FunctionType | None:
    fn = getattr(sys.modules.get(ref.module), ref.name, None)
    return fn if isinstance(fn, types.FunctionType) else None


def _root_of(fn: types.FunctionType, loc: SourceLocation) -> str | None:
    """The project root, from the feature's absolute file and its project-relative path."""
    file = fn.__code__.co_filename.replace(os.sep, "/")
    return file[: -len(loc.path)] if file.endswith("/" + loc.path) else None


def _relative(file: str, root: str | None) -> str:
    file = file.replace(os.sep, "/")
    return file[len(root) :] if root and file.startswith(root) else file


def _visible(fn: types.FunctionType) -> list[str]:
    """Names a misspelt one may have meant: the function's parameters and locals, its module's
    globals and the builtins."""
    names = {*fn.__code__.co_varnames, *fn.__globals__, *vars(builtins)}
    return sorted(n for n in names if not n.startswith("__"))


def _unresolved(
    fn: types.FunctionType, package: str
) -> Iterator[tuple[types.FunctionType, str, int]]:
    """(function, name, line) for each global read of ``fn`` and of the package's helpers it
    reaches that resolves to nothing."""
    todo, done = [fn], set()
    while todo:
        current = todo.pop(0)
        if current.__code__ in done:
            continue
        done.add(current.__code__)
        scope, available = current.__globals__, vars(builtins)
        loads = list(_global_loads(current.__code__))
        assigned = {name for name, _, store in loads if store}
        for name, line, store in loads:
            if store or name in assigned:
                continue
            if name not in scope and name not in available:
                yield current, name, line
            target = scope.get(name)
            if isinstance(target, types.FunctionType) and (
                target.__module__ == package or target.__module__.startswith(package + ".")
            ):
                todo.append(target)


def _global_loads(code: types.CodeType) -> Iterator[tuple[str, int, bool]]:
    """(name, line, is_store) of the global reads and writes in ``code`` and nested code."""
    line = code.co_firstlineno
    class_names: set[str] = set()
    for ins in dis.get_instructions(code):
        if ins.positions is not None and ins.positions.lineno is not None:
            line = ins.positions.lineno
        if ins.opname in ("STORE_GLOBAL", "DELETE_GLOBAL"):
            yield str(ins.argval), line, True
        elif ins.opname == "STORE_NAME":  # a class body's own names
            class_names.add(str(ins.argval))
        elif ins.opname == "LOAD_GLOBAL" or (
            ins.opname == "LOAD_NAME" and ins.argval not in class_names
        ):
            yield str(ins.argval), line, False
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _global_loads(const)


__all__ = ["rule_global_names"]
