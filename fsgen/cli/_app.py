"""The click application: global options, the context every command gets, and the one place
where fsgen's exceptions become ``error: ...`` and an exit code.

Commands live in sibling modules (one per area) and import nothing heavy at module level, so
``fsgen --help`` stays fast.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console

    from fsgen.config import ProjectConfig
    from fsgen.spec import ProjectSpec

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2


@dataclass
class AppContext:
    """What a command needs: where the project is, which backend, and consoles."""

    project: Path | None
    backend: str | None
    debug: bool = False
    _config: ProjectConfig | None = field(default=None, repr=False)
    _spec: ProjectSpec | None = field(default=None, repr=False)

    @property
    def config(self) -> ProjectConfig:
        if self._config is None:
            from fsgen.config import load_config

            self._config = load_config(self.project)
        return self._config

    @property
    def spec(self) -> ProjectSpec:
        """The validated spec; raises ValidationFailed (rendered with every diagnostic)."""
        if self._spec is None:
            from fsgen.loader import load

            self._spec = load(self.config.root)
        return self._spec

    @property
    def backend_name(self) -> str:
        return self.backend or os.environ.get("FSGEN_BACKEND") or self.config.backend

    @property
    def err(self) -> Console:
        return stderr_console()

    @property
    def out(self) -> Console:
        return stdout_console()


@functools.cache
def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


@functools.cache
def stdout_console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def handle_errors(fn: F) -> F:
    """Turn FsgenError (and a user's exception while loading) into 'error: ...' + exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from fsgen.errors import FsgenError, ValidationFailed

        ctx = click.get_current_context()
        app: AppContext | None = ctx.find_object(AppContext)
        try:
            return fn(*args, **kwargs)
        except ValidationFailed as exc:
            for d in exc.diagnostics:
                click.echo(d.render(), err=True)
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_ERROR)
        except FsgenError as exc:
            if app is not None and app.debug:
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_ERROR)
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            ctx.exit(130)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Project directory (default: nearest pyproject.toml with [tool.fsgen]).",
)
@click.option(
    "--backend",
    type=click.Choice(["local", "aws"]),
    default=None,
    help="Backend to use (default: [tool.fsgen] backend, else local).",
)
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
@click.version_option(package_name="fsgen")
@click.pass_context
def main(ctx: click.Context, project: Path | None, backend: str | None, debug: bool) -> None:
    """fsgen: declare each feature once; plan, generate, ingest, train and serve from it."""
    ctx.obj = AppContext(project=project, backend=backend, debug=debug)
    if debug:
        os.environ["FSGEN_DEBUG"] = "1"


pass_app = click.make_pass_decorator(AppContext)


def echo_json(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
