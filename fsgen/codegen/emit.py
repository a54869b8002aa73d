"""Writing generated/: atomic writes, MANIFEST.json, removal of files no longer produced, and
the staleness check.

Invariants: output is a pure function of (definitions, config) — sorted, no timestamps, no
absolute paths, LF, UTF-8; a file is only rewritten when its bytes change; each write goes to a
temp file in the same directory and is renamed over the target, and MANIFEST.json is written
last, so an interrupted run leaves every file either old or new and the next run finishes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fsgen.codegen.artifacts import Artifact, BuildContext, Builder, load_builders
from fsgen.codegen.env import project_templates, take_overrides, to_json
from fsgen.config import ProjectConfig
from fsgen.errors import FsgenError
from fsgen.spec import ProjectSpec

MANIFEST = "MANIFEST.json"
FORMAT_VERSION = 1


class CodegenError(FsgenError):
    """Generation could not produce a consistent set of files."""


@dataclass
class GenerationResult:
    """What ``generate`` did (or, for ``--check``, would do), as generated-dir-relative paths."""

    directory: Path
    artifacts: list[Artifact]
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> list[str]:
        return sorted(self.created + self.updated + self.removed)

    def summary(self) -> str:
        return (
            f"{len(self.artifacts)} artifacts: {len(self.created)} created, "
            f"{len(self.updated)} updated, {len(self.removed)} removed, "
            f"{len(self.unchanged)} unchanged"
        )


def sha256_text(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def build(
    config: ProjectConfig, spec: ProjectSpec, builders: Iterable[Builder] | None = None
) -> list[Artifact]:
    """Every artifact including MANIFEST.json, sorted by path."""
    ctx = BuildContext(spec=spec, config=config)
    found: dict[str, Artifact] = {}
    import jinja2

    with project_templates(config.root):  # the project's templates/ overrides, if any
        for builder in builders if builders is not None else load_builders():
            take_overrides()  # a builder's renders belong to its own artifacts only
            try:
                for artifact in builder(ctx):
                    _check_path(artifact.path)
                    check_parses(artifact.path, artifact.content)
                    if artifact.path in found:
                        raise CodegenError(f"two artifact builders produce {artifact.path!r}")
                    found[artifact.path] = artifact
            except jinja2.TemplateError as exc:
                raise CodegenError(_template_error(exc, config.root)) from exc
    artifacts = [found[p] for p in sorted(found)]
    return [*artifacts, manifest_artifact(artifacts)]


def _template_error(exc: BaseException, root: Path) -> str:
    """``templates/x.jinja:12: template error: ...``: where a (most likely overridden)
    template failed, from the syntax error or the template frame of the traceback."""
    where, line = getattr(exc, "filename", None), getattr(exc, "lineno", None)
    tb = exc.__traceback__
    while tb is not None:  # jinja maps a render-time error to the template's own line
        if tb.tb_frame.f_code.co_filename.endswith(".jinja"):
            where, line = tb.tb_frame.f_code.co_filename, tb.tb_lineno
        tb = tb.tb_next
    shown = where or "<template>"
    with contextlib.suppress(ValueError):
        shown = Path(shown).resolve().relative_to(root.resolve()).as_posix()
    return f"{shown}:{line or 0}: template error: {type(exc).__name__}: {exc}"


def check_parses(path: str, text: str) -> None:
    """Every generated Python file compiles and every JSON file loads, or generation fails
    (a hostile name, description or path must be escaped, never break an artifact)."""
    try:
        if path.endswith(".py"):
            compile(text, path, "exec", dont_inherit=True)
        elif path.endswith(".json"):
            json.loads(text)
    except (SyntaxError, ValueError) as exc:
        raise CodegenError(f"generated {path} does not parse: {exc}") from None


def _check_path(path: str) -> None:
    parts = path.split("/")
    if path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
        raise CodegenError(f"artifact path {path!r} must be relative and normalized")
    if path == MANIFEST:
        raise CodegenError(f"{MANIFEST} is written by fsgen itself")


def manifest_artifact(artifacts: list[Artifact]) -> Artifact:
    files: dict[str, dict[str, object]] = {
        a.path: {
            "kind": a.kind,
            "sha256": sha256_text(a.content),
            "sources": list(a.sources),
            "spec_hash": a.spec_hash,
            **({"templates": dict(a.templates)} if a.templates else {}),
        }
        for a in artifacts
    }
    document = {
        "format_version": FORMAT_VERSION,
        "generator": "fsgen",
        "note": "@generated by fsgen — DO NOT EDIT. Regenerate: fsgen generate",
        "files": files,
    }
    return Artifact(
        path=MANIFEST,
        kind="manifest",
        content=to_json(document) + "\n",
        sources=(),
        spec_hash=sha256_text(json.dumps(files, sort_keys=True)),
    )


def previous_files(directory: Path) -> list[str]:
    """Paths the last generation wrote (from its manifest); [] when there is none."""
    try:
        data = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        files = data["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return sorted(p for p in files if isinstance(p, str) and _safe(p))


def _safe(path: str) -> bool:
    try:
        _check_path(path)
    except CodegenError:
        return False
    return True


def diff(
    config: ProjectConfig, spec: ProjectSpec, builders: Iterable[Builder] | None = None
) -> GenerationResult:
    """Compare what would be generated with what is on disk; writes nothing."""
    directory = config.generated_path
    artifacts = build(config, spec, builders)
    result = GenerationResult(directory=directory, artifacts=artifacts)
    produced = {a.path for a in artifacts}
    for artifact in artifacts:
        target = directory / artifact.path
        try:
            current = target.read_bytes()
        except FileNotFoundError:
            result.created.append(artifact.path)
            continue
        if current == artifact.content.encode("utf-8"):
            result.unchanged.append(artifact.path)
        else:
            result.updated.append(artifact.path)
    result.removed = [
        p for p in previous_files(directory) if p not in produced and (directory / p).exists()
    ]
    return result


def generate(
    config: ProjectConfig, spec: ProjectSpec, builders: Iterable[Builder] | None = None
) -> GenerationResult:
    """Write generated/: changed files atomically, then remove files no longer produced, then
    the manifest."""
    result = diff(config, spec, builders)
    directory = result.directory
    by_path = {a.path: a for a in result.artifacts}
    pending = [p for p in result.created + result.updated if p != MANIFEST]
    for path in sorted(pending):
        write_atomic(directory / path, by_path[path].content)
    for path in result.removed:
        (directory / path).unlink(missing_ok=True)
        _prune_empty(directory / path, directory)
    if MANIFEST in result.created or MANIFEST in result.updated:
        write_atomic(directory / MANIFEST, by_path[MANIFEST].content)
    return result


def write_atomic(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _prune_empty(path: Path, root: Path) -> None:
    parent = path.parent
    while parent != root and root in parent.parents:
        leftovers = [p for p in parent.iterdir() if p.name != "__pycache__"]
        if leftovers:
            return
        for cache in parent.glob("__pycache__"):
            for f in cache.iterdir():
                f.unlink()
            cache.rmdir()
        parent.rmdir()
        parent = parent.parent


def stale_files(config: ProjectConfig, spec: ProjectSpec) -> list[str]:
    """Human-readable lines naming each stale file, empty when generated/ is fresh."""
    result = diff(config, spec)
    prefix = config.generated_dir.rstrip("/")
    lines = [f"{prefix}/{p}: missing" for p in result.created]
    lines += [f"{prefix}/{p}: out of date" for p in result.updated]
    lines += [f"{prefix}/{p}: no longer generated" for p in result.removed]
    return sorted(lines)


def changed_artifacts(config: ProjectConfig, spec: ProjectSpec) -> list[str]:
    """Generated-dir-relative paths that ``fsgen generate`` would create, change or remove
    (MANIFEST.json excluded): what ``fsgen plan`` lists."""
    return sorted(artifact_marks(config, spec))


def artifact_marks(config: ProjectConfig, spec: ProjectSpec) -> dict[str, str]:
    """Each path :func:`changed_artifacts` lists -> ``+`` (created), ``~`` (changed) or ``-``
    (no longer generated: removed)."""
    result = diff(config, spec)
    marks = {p: "+" for p in result.created}
    marks.update({p: "~" for p in result.updated})
    marks.update({p: "-" for p in result.removed})
    marks.pop(MANIFEST, None)
    return marks
