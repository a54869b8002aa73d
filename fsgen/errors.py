"""fsgen's exception tree and the Diagnostic that validation reports.

Only ``fsgen.cli`` turns these into ``error: ...`` lines and exit codes; library code raises.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Severity = Literal["error", "warning"]


class Diagnostic(BaseModel):
    """One problem in the definitions, printed like compiler output."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    line: int
    code: str
    message: str
    severity: Severity = "error"
    hint: str | None = None

    def sort_key(self) -> tuple[str, int, str, str]:
        return (self.path, self.line, self.code, self.message)

    def render(self) -> str:
        text = f"{self.path}:{self.line}: {self.severity} {self.code}: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class FsgenError(Exception):
    """Base of every error fsgen raises on purpose."""


class ConfigError(FsgenError):
    """The project's configuration ([tool.fsgen]) is missing or wrong."""


class DefinitionError(FsgenError):
    """Raised while featuredefs are being imported; carries where it happened."""

    def __init__(
        self,
        message: str,
        *,
        path: str = "?",
        line: int = 0,
        code: str = "FS100",
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.diagnostic = Diagnostic(path=path, line=line, code=code, message=message, hint=hint)


class ValidationFailed(FsgenError):
    """The definitions have errors; ``diagnostics`` lists them all in a stable order."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
        errors = [d for d in self.diagnostics if d.severity == "error"]
        super().__init__(f"{len(errors)} error(s) in feature definitions")


class NotFound(FsgenError):
    """A named group, feature set or record does not exist."""


class StoreError(FsgenError):
    """The store refused an operation (lock held, corrupt state, backend error)."""


class IngestError(FsgenError):
    """Ingestion could not run at all (unreadable source, unknown group)."""
