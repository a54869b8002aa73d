"""The three hashes (schema, logic, metadata), so a metadata edit never looks like a schema
change and a reformatted function never looks like new logic.

All hashes are ``sha256:<hex>`` over canonical JSON (sorted keys, no whitespace).
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import textwrap
import types
from collections.abc import Callable

_CONSTANT_TYPES = (int, float, str, bool, bytes, tuple, frozenset, type(None))


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_of(value: object) -> str:
    data = value if isinstance(value, str) else canonical_json(value)
    return "sha256:" + hashlib.sha256(data.encode("utf-8")).hexdigest()


def function_source(fn: Callable[..., object]) -> str:
    """The function's source, dedented, or '' when Python cannot find it."""
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return ""


class _Normalizer(ast.NodeTransformer):
    """Drops decorators and docstrings; positions are dropped by ast.dump."""

    def _strip_doc(self, node: ast.AST) -> ast.AST:
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.decorator_list = []
        self.generic_visit(node)
        return self._strip_doc(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        node.decorator_list = []
        self.generic_visit(node)
        return self._strip_doc(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self.generic_visit(node)
        return self._strip_doc(node)


def normalized_ast(source: str) -> str:
    tree = _Normalizer().visit(ast.parse(source))
    return ast.dump(tree, annotate_fields=True, include_attributes=False)


def _global_names(source: str) -> list[str]:
    tree = ast.parse(source)
    names = {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }
    return sorted(names)


def logic_hash(
    fn: Callable[..., object],
    *,
    package: str,
    dependency_hashes: dict[str, str] | None = None,
    _seen: frozenset[int] = frozenset(),
) -> str:
    """Hash of what the function computes.

    Covers the normalized AST of the function, the logic hashes of helper functions it calls
    that live in the definitions package (recursively), the values of simple module constants
    it reads, and the hashes of the features it depends on. Comments, docstrings, formatting and
    decorators do not count.
    """
    source = function_source(fn)
    payload: dict[str, object] = {
        "ast": normalized_ast(source) if source else repr(getattr(fn, "__qualname__", fn)),
        "deps": dict(sorted((dependency_hashes or {}).items())),
    }
    helpers: dict[str, str] = {}
    constants: dict[str, str] = {}
    fn_globals: dict[str, object] = getattr(fn, "__globals__", {})
    for name in _global_names(source) if source else []:
        if name not in fn_globals:
            continue
        value = fn_globals[name]
        if isinstance(value, types.FunctionType) and _in_package(value, package):
            if id(value) in _seen or value is fn:
                helpers[name] = "recursive"
                continue
            helpers[name] = logic_hash(value, package=package, _seen=_seen | {id(fn)})
        elif isinstance(value, _CONSTANT_TYPES) and not name.startswith("__"):
            constants[name] = repr(value)
    payload["helpers"] = helpers
    payload["constants"] = constants
    return sha256_of(payload)


def _in_package(fn: types.FunctionType, package: str) -> bool:
    module = getattr(fn, "__module__", "") or ""
    return module == package or module.startswith(package + ".")
