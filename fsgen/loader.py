"""Import a project's definitions package and turn what it declares into a ProjectSpec.

``load(root)`` is pure from the caller's point of view: it re-imports the definitions package
from scratch (files in sorted order), so two loads of the same tree are equal and a changed
file is always seen. :mod:`fsgen.specbuild` turns the declarations into the spec, collecting
structural problems (unknown inputs, cycles, duplicates) as diagnostics; the rule checks live
in :mod:`fsgen.validate`.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.abc
import importlib.machinery
import inspect
import pkgutil
import re
import sys
import traceback
import types
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from pathlib import Path

from fsgen import authoring as a
from fsgen.config import ProjectConfig, load_config
from fsgen.errors import DefinitionError, Diagnostic, ValidationFailed
from fsgen.spec import ProjectSpec
from fsgen.specbuild import Declarations, SpecBuilder, relative_path


@dataclass
class LoadResult:
    config: ProjectConfig
    spec: ProjectSpec | None
    diagnostics: list[Diagnostic]

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


def load(root: Path | str | None = None) -> ProjectSpec:
    """Load and validate; raise ValidationFailed listing every error."""
    result = check(root)
    if result.errors or result.spec is None:
        raise ValidationFailed(result.diagnostics)
    return result.spec


def load_with_config(root: Path | str | None = None) -> tuple[ProjectConfig, ProjectSpec]:
    result = check(root)
    if result.errors or result.spec is None:
        raise ValidationFailed(result.diagnostics)
    return result.config, result.spec


def check(root: Path | str | None = None) -> LoadResult:
    """Load the definitions and run every validation rule; never raises for bad definitions."""
    from fsgen.validate import validate

    config = load_config(Path(root) if root is not None else None)
    diags: list[Diagnostic] = []
    decls = import_definitions(config, diags)
    builder = SpecBuilder(config, diags)
    spec = builder.build(decls)
    if spec is not None:
        diags.extend(validate(spec))
    unique = sorted(set(diags), key=Diagnostic.sort_key)
    return LoadResult(config=config, spec=spec, diagnostics=unique)


# --------------------------------------------------------------------------- importing


class _FromSource(importlib.machinery.SourceFileLoader):
    """Compile definitions from their source every time: a cached .pyc is validated by mtime
    in whole seconds and by size, so an edit within the same second could load stale code."""

    def get_code(self, fullname: str) -> types.CodeType:
        path = self.get_filename(fullname)
        return compile(self.get_data(path), path, "exec", dont_inherit=True)


class _DefinitionsFinder(importlib.abc.MetaPathFinder):
    def __init__(self, package: str) -> None:
        self.package = package

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != self.package and not fullname.startswith(self.package + "."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            spec.loader = _FromSource(fullname, str(spec.origin))
        return spec


def import_definitions(config: ProjectConfig, diags: list[Diagnostic]) -> Declarations:
    package = config.definitions
    finder = _DefinitionsFinder(package)
    sys.meta_path.insert(0, finder)
    try:
        return _import_definitions(config, diags)
    finally:
        sys.meta_path.remove(finder)


def _import_definitions(config: ProjectConfig, diags: list[Diagnostic]) -> Declarations:
    package = config.definitions
    root = str(config.root)
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[name]
    if root in sys.path:
        sys.path.remove(root)
    sys.path.insert(0, root)
    importlib.invalidate_caches()
    decls = Declarations()
    try:
        top = importlib.import_module(package)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        diags.append(_import_diagnostic(exc, config, package))
        return decls
    decls.modules.append(top)
    path = getattr(top, "__path__", None)
    submodules = (
        sorted(pkgutil.walk_packages(path, package + "."), key=lambda i: i.name)
        if path is not None
        else []
    )
    causes: set[tuple[str, int, str, str]] = set()
    for info in submodules:
        try:
            decls.modules.append(importlib.import_module(info.name))
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            diagnostic = _import_diagnostic(exc, config, info.name)
            # a module importing one that failed fails at the same line for the same reason:
            # that is one problem, reported once
            cause = (diagnostic.path, diagnostic.line, type(exc).__name__, str(exc))
            if cause not in causes:
                causes.add(cause)
                diags.append(diagnostic)
    _collect(decls)
    return decls


def _import_diagnostic(exc: BaseException, config: ProjectConfig, module: str) -> Diagnostic:
    if isinstance(exc, DefinitionError):
        d = exc.diagnostic
        return d.model_copy(update={"path": relative_path(d.path, config.root)})
    path, line = f"{module.replace('.', '/')}.py", 1
    if isinstance(exc, SyntaxError) and exc.filename:
        path, line = relative_path(exc.filename, config.root), exc.lineno or 1
    else:
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if frame.filename.startswith(str(config.root)) and "/fsgen/" not in frame.filename:
                path, line = relative_path(frame.filename, config.root), frame.lineno or 1
                break
    return Diagnostic(
        path=path,
        line=line,
        code="FS100",
        message=f"importing {_failed_module(path, module, config)} failed: "
        f"{type(exc).__name__}: {exc}",
        hint=_keyword_hint(exc) or _attribute_hint(exc),
    )


def _failed_module(path: str, imported: str, config: ProjectConfig) -> str:
    """The definitions module that failed: the one at ``path`` when the error lies in another
    definitions module than the one being imported (``a`` imports ``b``, which raises), so the
    message names the file its location points at."""
    package = config.definitions.replace(".", "/")
    if path.endswith(".py") and (path == f"{package}.py" or path.startswith(package + "/")):
        return path[: -len(".py")].replace("/", ".").removesuffix(".__init__")
    return imported


def _attribute_hint(exc: BaseException) -> str | None:
    """For a misspelt attribute of an authoring object (``@group.featur``): the closest."""
    target = getattr(exc, "obj", None) if isinstance(exc, AttributeError) else None
    name = getattr(exc, "name", None)
    owner = target if isinstance(target, type) else type(target)
    if not isinstance(name, str) or owner.__module__ != a.__name__:
        return None
    if owner is a.Source:
        return "a source is Source.batch(path) or Source.kinesis(stream_name)"
    public = [n for n in dir(target) if not n.startswith("_")]
    close = difflib.get_close_matches(name, public, n=1)
    return f"did you mean {close[0]!r}?" if close else None


_UNEXPECTED_KEYWORD = re.compile(r"([\w.]+)\(\) got an unexpected keyword argument '(\w+)'")


def _keyword_hint(exc: BaseException) -> str | None:
    """For a misspelt keyword of fsgen's authoring API (``descripton=``): the keywords that
    call takes, the closest first."""
    match = _UNEXPECTED_KEYWORD.fullmatch(str(exc)) if isinstance(exc, TypeError) else None
    if match is None:
        return None
    target: object = a
    for part in match.group(1).split("."):
        target = getattr(target, part, None)
    if not callable(target):
        return None
    names = [
        p.name
        for p in inspect.signature(target).parameters.values()
        if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    close = difflib.get_close_matches(match.group(2), names, n=1)
    takes = f"{match.group(1)}() takes {', '.join(names)}"
    return f"did you mean {close[0]!r}? {takes}" if close else takes


def _collect(decls: Declarations) -> None:
    seen: set[int] = set()
    for module in decls.modules:
        for value in list(vars(module).values()):
            if id(value) in seen:
                continue
            if isinstance(value, a.Entity):
                decls.entities.append(value)
            elif isinstance(value, a.FeatureGroup):
                decls.groups.append(value)
            elif isinstance(value, a.FeatureSet):
                decls.feature_sets.append(value)
            elif callable(value) and hasattr(value, a.ON_DEMAND_ATTR):
                decls.on_demand.append(getattr(value, a.ON_DEMAND_ATTR))
            else:
                continue
            seen.add(id(value))
    for group in decls.groups:
        if all(group.entity is not e for e in decls.entities):
            decls.entities.append(group.entity)
