"""The builder's common ground: the declarations the loader collects, source locations
relative to the project root, diagnostics, and reading a function's annotations."""

from __future__ import annotations

import inspect
import os
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fsgen import authoring as a
from fsgen.config import ProjectConfig
from fsgen.errors import Diagnostic
from fsgen.spec import FunctionRef, RawType, SourceLocation
from fsgen.types import DType, List, Scalar, Set, python_annotation_matches

_RAW_TYPES: dict[object, RawType] = {
    int: "int",
    float: "float",
    str: "str",
    bool: "bool",
    list[int]: "list[int]",
    list[float]: "list[float]",
    list[str]: "list[str]",
    typing.List[int]: "list[int]",  # noqa: UP006
    typing.List[float]: "list[float]",  # noqa: UP006
    typing.List[str]: "list[str]",  # noqa: UP006
}
_SCALAR_RAW: dict[Scalar, RawType] = {
    Scalar.INTEGRAL: "int",
    Scalar.FRACTIONAL: "float",
    Scalar.STRING: "str",
}


@dataclass
class Declarations:
    """Authoring objects found in the definitions package, in load order."""

    modules: list[types.ModuleType] = field(default_factory=list)
    entities: list[a.Entity] = field(default_factory=list)
    groups: list[a.FeatureGroup] = field(default_factory=list)
    feature_sets: list[a.FeatureSet] = field(default_factory=list)
    on_demand: list[a.OnDemandDecl] = field(default_factory=list)

    def problems(self) -> list[Diagnostic]:
        """What the declarations noted while their modules were imported (see
        fsgen.authoring): a dtype that is no dtype, tags or sources of the wrong kind, ..."""
        out: list[Diagnostic] = []
        for g in self.groups:
            out += g.problems
            for decl in g.features:
                out += decl.problems
        for fs in self.feature_sets:
            out += fs.problems
        for od in self.on_demand:
            out += od.problems
        return out


_STAND_INS = [DType(scalar=s) for s in (Scalar.INTEGRAL, Scalar.FRACTIONAL, Scalar.STRING)] + [
    make(DType(scalar=s)) for make in (List, Set) for s in Scalar
]


def declared_dtype(decl: a.FeatureDecl | a.OnDemandDecl) -> DType:
    """The declaration's dtype; for one that is no fsgen dtype (an error the builder has
    reported already), the one its return annotation means, so no other check reports a
    mismatch the author did not write. The spec it goes into is never used: it has an error."""
    if isinstance(decl.dtype, DType):
        return decl.dtype
    annotation = _return_annotation(decl.fn)
    if annotation is not None:
        for dtype in _STAND_INS:
            if python_annotation_matches(dtype, annotation):
                return dtype
    return DType(scalar=Scalar.STRING)


def relative_path(path: str, root: Path) -> str:
    try:
        rel = os.path.relpath(path, root)
    except ValueError:
        return path
    return rel.replace(os.sep, "/") if not rel.startswith("..") else path


class BuilderBase:
    """Where every part of the builder reports: the project, its diagnostics, locations."""

    def __init__(self, config: ProjectConfig, diags: list[Diagnostic]) -> None:
        self.config = config
        self.diags = diags
        self.package = config.definitions

    def loc(self, location: a.Location) -> SourceLocation:
        return SourceLocation(
            path=relative_path(location.path, self.config.root), line=location.line
        )

    def error(
        self,
        location: a.Location | SourceLocation,
        code: str,
        message: str,
        hint: str | None = None,
    ) -> None:
        sl = location if isinstance(location, SourceLocation) else self.loc(location)
        self.diags.append(
            Diagnostic(path=sl.path, line=sl.line, code=code, message=message, hint=hint)
        )

    def duplicates(self, what: str, named: list[tuple[str, a.Location]]) -> None:
        first: dict[str, a.Location] = {}
        for name, location in named:
            if name in first:
                other = self.loc(first[name])
                self.error(
                    location,
                    "FS101",
                    f"duplicate {what} name {name!r}",
                    hint=f"first defined at {other}",
                )
                self.error(
                    first[name],
                    "FS101",
                    f"duplicate {what} name {name!r}",
                    hint=f"defined again at {self.loc(location)}",
                )
            else:
                first[name] = location

    def duration(self, value: str | int | None, location: a.Location, what: str) -> int | None:
        try:
            return a.parse_duration(value)
        except ValueError as exc:
            self.error(location, "FS205", f"{what}: {exc}")
            return None

    def function_ref(self, fn: Callable[..., object], location: a.Location) -> FunctionRef:
        module = getattr(fn, "__module__", "") or ""
        name = getattr(fn, "__name__", "")
        owner = sys.modules.get(module)
        if owner is None or getattr(owner, name, None) is not fn:
            again = None if owner is None else _rebound_at(owner, name, fn)
            if again is not None:
                self.error(
                    location,
                    "FS115",
                    f"{name!r} is defined twice in {module!r}: this feature function and again "
                    f"at {self.loc(again)}, which replaces it in the module (generated code "
                    f"imports {module}.{name} and would get the later one)",
                    hint=f"rename one of the two (the later one, or this function: "
                    f"name={name!r} in the decorator keeps the feature's name)",
                )
            else:
                self.error(
                    location,
                    "FS104",
                    f"function {name!r} must be defined at module level of {module!r} "
                    "so generated code can import it",
                )
        return FunctionRef(module=module, name=name)


def _rebound_at(owner: types.ModuleType, name: str, fn: Callable[..., object]) -> a.Location | None:
    """Where module ``owner`` binds ``name`` again after the module-level ``def`` of ``fn``
    (another ``def``, a class, an assignment or an import), or None when ``fn`` is no
    module-level function of it (a nested one: FS104)."""
    import ast

    code = getattr(fn, "__code__", None)
    path = getattr(owner, "__file__", None)
    if code is None or path is None or code.co_filename != path:
        return None
    try:
        tree = ast.parse(Path(path).read_bytes(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return None
    defined = False
    later: int | None = None
    for node in tree.body:
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            if first == code.co_firstlineno:
                defined = True
                continue
        if defined and name in _bound_names(node):
            later = first
    return None if later is None else a.Location(path, later)


def _bound_names(node: object) -> set[str]:
    """The module-level names a statement binds (def, class, assignment, import)."""
    import ast

    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    if isinstance(node, ast.Import | ast.ImportFrom):
        return {(x.asname or x.name).split(".")[0] for x in node.names}
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, ast.AnnAssign | ast.AugAssign) and node.value is not None:
        targets = [node.target]
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def _module_of(path: str, root: Path) -> str:
    rel = relative_path(path, root)
    return rel[:-3].replace("/", ".").removesuffix(".__init__") if rel.endswith(".py") else rel


def _type_hints(fn: Callable[..., object]) -> dict[str, object] | None:
    try:
        return typing.get_type_hints(fn)
    except Exception:
        return None


def _unwrap_optional(annotation: object) -> tuple[object, bool]:
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if (origin is typing.Union or origin is types.UnionType) and type(None) in args:
        rest = [x for x in args if x is not type(None)]
        if len(rest) == 1:
            return rest[0], True
    return annotation, False


def _annotation_text(annotation: object) -> str:
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _return_annotation(fn: Callable[..., object]) -> str | None:
    try:
        ann = inspect.signature(fn).return_annotation
    except (TypeError, ValueError):
        return None
    if ann is inspect.Signature.empty:
        return None
    return _annotation_text(ann)
