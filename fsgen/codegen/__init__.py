"""Code generation: every artifact of a project from its one spec.

``generate(config, spec)`` writes ``generated/``; ``diff`` compares without writing;
``changed_artifacts`` answers plan's question; ``stale_files`` is ``fsgen generate --check``.
New artifact kinds register in :data:`fsgen.codegen.artifacts.BUILDERS`.
"""

from fsgen.codegen.artifacts import BUILDERS, Artifact, BuildContext, Builder
from fsgen.codegen.emit import (
    MANIFEST,
    CodegenError,
    GenerationResult,
    build,
    changed_artifacts,
    diff,
    generate,
    stale_files,
)

__all__ = [
    "BUILDERS",
    "MANIFEST",
    "Artifact",
    "BuildContext",
    "Builder",
    "CodegenError",
    "GenerationResult",
    "build",
    "changed_artifacts",
    "diff",
    "generate",
    "stale_files",
]
