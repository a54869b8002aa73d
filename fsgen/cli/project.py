"""Project commands: init, validate, demo."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import click

from fsgen.cli._app import EXIT_ERROR, AppContext, echo_json, handle_errors, main, pass_app


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@pass_app
@handle_errors
def validate(app: AppContext, as_json: bool) -> None:
    """Load the definitions and check every rule."""
    from fsgen.loader import check

    result = check(app.config.root)
    errors = result.errors
    summary = result.spec.summary() if result.spec else "definitions could not be loaded"
    warnings = []
    if result.spec is not None and not errors and not result.spec.groups:
        # valid, but nothing to plan, ingest or serve: most likely not what was meant
        package = app.config.definitions
        warnings.append(
            f"{package}/ declares no feature group: there is nothing to apply, ingest or "
            f"serve (declare a FeatureGroup in a module of {package}/; fsgen init writes an "
            "example)"
        )
    if as_json:
        echo_json(
            json.dumps(
                {
                    "valid": not errors,
                    "summary": summary,
                    "diagnostics": [d.model_dump() for d in result.diagnostics],
                    "warnings": warnings,
                },
                indent=2,
                sort_keys=True,
            )
        )
    else:
        for d in result.diagnostics:
            click.echo(d.render(), err=True)
        if errors:
            click.echo(f"{summary}: {len(errors)} error(s)", err=True)
        else:
            click.echo(f"{summary}: valid")
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
    if errors:
        raise SystemExit(EXIT_ERROR)


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--name",
    default=None,
    help="Project name and identity, the fsgen:project tag (default: the directory's name).",
)
@handle_errors
def init(directory: Path, name: str | None) -> None:
    """Scaffold a new fsgen project in DIRECTORY."""
    from fsgen.scaffold import project_name, scaffold

    written = scaffold(directory, name=name)
    for path in written:
        click.echo(f"  created {path}", err=True)
    where = directory.resolve()
    here = where == Path.cwd().resolve()
    step = "fsgen validate" if here else f"cd {shlex.quote(str(directory))} && fsgen validate"
    identity = project_name(directory, name)
    click.echo(f"Initialized fsgen project {identity!r} in {where}. Next: {step}")


@main.command()
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the demo's store and outputs go (default: the project's store dir).",
)
@pass_app
@handle_errors
def demo(app: AppContext, workdir: Path | None) -> None:
    """Run the end-to-end demo on the example project with the embedded local store."""
    from fsgen.demo import run_demo

    run_demo(app.config, workdir=workdir)
