"""The click application: global options, the context every command gets, and the one place
where fsgen's exceptions become ``error: ...`` and an exit code.

Commands live in sibling modules (one per area) and import nothing heavy at module level, so
``fsgen --help`` stays fast.
"""

from __future__ import annotations

import functools
import os
import re
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
    """The one place exceptions become ``error: ...`` (one line) and exit status 1: fsgen's own
    errors, the errors of the libraries fsgen drives (botocore, the filesystem), and, as a last
    resort, anything else, named as a bug. ``--debug`` re-raises for the full traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from fsgen.errors import ValidationFailed

        ctx = click.get_current_context()
        app: AppContext | None = ctx.find_object(AppContext)
        try:
            return fn(*args, **kwargs)
        except ValidationFailed as exc:
            for d in exc.diagnostics:
                click.echo(d.render(), err=True)
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_ERROR)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            ctx.exit(130)
        except BrokenPipeError:
            # the reader of stdout stopped reading (``fsgen history --json | head``): that is
            # the reader's choice, not an error; stdout goes to /dev/null so the interpreter's
            # final flush does not complain either
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(0)
        except Exception as exc:
            if (app is not None and app.debug) or os.environ.get("FSGEN_DEBUG") == "1":
                raise
            click.echo(f"error: {describe_error(exc)}", err=True)
            ctx.exit(EXIT_ERROR)

    return wrapper  # type: ignore[return-value]


def describe_error(exc: BaseException) -> str:
    """One line for ``exc``: fsgen's message, a library error in the user's terms, or, for an
    exception nobody anticipated, its type and message named as a bug."""
    from fsgen.errors import FsgenError
    from fsgen.runtime.aggregate import AggregationError
    from fsgen.runtime.errors import ConfigurationError

    # the runtime's own errors (standard library only, so not FsgenError) are the user's too
    if isinstance(exc, FsgenError | AggregationError | ConfigurationError):
        text = str(exc)
    else:
        text = _library_error(exc) or (
            f"unexpected {type(exc).__name__}: {exc} (a bug in fsgen: rerun with --debug for "
            "the traceback, and please report it)"
        )
    return " ".join(text.split())


def _library_error(exc: BaseException) -> str | None:
    botocore = sys.modules.get("botocore.exceptions")
    if botocore is not None and isinstance(exc, botocore.BotoCoreError | botocore.ClientError):
        return _aws_error(exc, botocore)
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return None


def _aws_error(exc: BaseException, botocore: Any) -> str:
    if isinstance(exc, botocore.NoCredentialsError | botocore.PartialCredentialsError):
        return (
            f"AWS: {exc}: configure credentials for boto3 (AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance role), or run against a local "
            "endpoint ([tool.fsgen.aws] endpoint_url = fsgen serve's address)"
        )
    if isinstance(exc, botocore.NoRegionError):
        return "AWS: no region: set [tool.fsgen.aws] region (or AWS_DEFAULT_REGION)"
    if isinstance(exc, botocore.EndpointConnectionError):
        return f"AWS: {exc} (is the endpoint running and the address right?)"
    if isinstance(exc, botocore.ClientError):
        err = exc.response.get("Error", {})
        op = getattr(exc, "operation_name", "request")
        code, message = err.get("Code", "Error"), err.get("Message", str(exc))
        hint = ""
        if code in ("ResourceNotFound", "ResourceNotFoundException"):
            hint = " (deployed? 'fsgen --backend aws plan' shows what apply would create)"
        elif code in ("AccessDenied", "AccessDeniedException", "UnrecognizedClientException"):
            hint = " (check the credentials boto3 uses and their IAM policy)"
        return f"AWS {op}: {code}: {message}{hint}"
    return f"AWS: {exc}"


class Timestamp(click.ParamType):
    """An ISO-8601 instant (``2024-02-14T00:00:00Z``; a naive time is UTC) -> epoch seconds;
    anything else is a usage error naming the option. A query time, never stored: it may be
    as precise as microseconds (an aggregation read just after an event, at its time + 1 µs),
    unlike an event time, which SageMaker keeps to the millisecond."""

    name = "ISO-8601"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        from datetime import UTC, datetime

        from fsgen.runtime.encoding import parse_event_time

        try:
            return float(parse_event_time("String", value))
        except ValueError as exc:
            if "more precise than milliseconds" not in str(exc):
                self.fail(str(exc), param, ctx)
        except TypeError as exc:
            self.fail(str(exc), param, ctx)
        fraction = re.search(r"[.,]([0-9]+)", value)
        if fraction and fraction.group(1)[6:].strip("0"):
            self.fail(f"timestamp {value!r} is more precise than microseconds", param, ctx)
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        return (parsed - epoch).total_seconds()


ISO_TIME = Timestamp()


class UsageFailed(click.ClickException):
    """A usage error shown like every other error: one ``error: ...`` line and exit 1 (click
    would print three lines and exit 2, which ``fsgen plan --detailed-exitcode`` uses for
    'the plan has changes')."""

    exit_code = EXIT_ERROR

    def __init__(self, exc: click.UsageError) -> None:
        super().__init__(exc.format_message())
        ctx = exc.ctx
        self.help_hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {' '.join(self.format_message().split())}{self.help_hint}", err=True)


def _one_line(exc: click.UsageError) -> click.ClickException:
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        exc.exit_code = EXIT_OK  # type: ignore[misc]  # a bare 'fsgen' or 'fsgen stream' asks for the help it gets
        return exc
    return UsageFailed(exc)


class FsgenGroup(click.Group):
    """Turns click's usage errors into :class:`UsageFailed`, here and in every subcommand."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            raise _one_line(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _one_line(exc) from None


@click.group(
    cls=FsgenGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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


def per_second(count: int, seconds: float, unit: str = "row") -> str:
    """``"12,345 rows/s"``; ``"1 row/s"``; ``"- rows/s"`` when no time was measured."""
    if seconds <= 0:
        return f"- {unit}s/s"
    rate = count / seconds
    shown = f"{rate:,.0f}" if rate >= 10 else f"{rate:.3g}"
    return f"{shown} {unit if shown == '1' else unit + 's'}/s"
