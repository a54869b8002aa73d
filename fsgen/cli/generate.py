"""``fsgen generate [--check]``: write generated/, or fail when it is stale."""

from __future__ import annotations

import json

import click

from fsgen.cli._app import EXIT_ERROR, AppContext, echo_json, handle_errors, main, pass_app


@main.command()
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 and name the stale files when generated/ is out of date.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@pass_app
@handle_errors
def generate(app: AppContext, check: bool, as_json: bool) -> None:
    """Write every artifact into generated/ (atomically, removing files no longer produced)."""
    from fsgen.codegen import diff
    from fsgen.codegen import generate as run_generate

    config, spec = app.config, app.spec
    result = diff(config, spec) if check else run_generate(config, spec)
    prefix = config.generated_dir.rstrip("/")
    stale = (
        [(p, "missing") for p in result.created]
        + [(p, "out of date") for p in result.updated]
        + [(p, "no longer generated") for p in result.removed]
    )
    if as_json:
        echo_json(
            json.dumps(
                {
                    "check": check,
                    "directory": prefix,
                    "fresh": not stale,
                    "created": result.created,
                    "updated": result.updated,
                    "removed": result.removed,
                    "unchanged": len(result.unchanged),
                },
                indent=2,
                sort_keys=True,
            )
        )
    if check:
        for path, why in sorted(stale):
            click.echo(f"stale: {prefix}/{path} ({why})", err=True)
        if stale:
            click.echo(
                f"error: {len(stale)} generated file(s) are stale; run 'fsgen generate'", err=True
            )
            raise SystemExit(EXIT_ERROR)
        if not as_json:
            click.echo(f"{prefix}/ is up to date ({len(result.artifacts)} artifacts)")
        return
    for path, why in sorted(stale):
        verb = {"missing": "created", "out of date": "updated"}.get(why, "removed")
        click.echo(f"  {verb} {prefix}/{path}", err=True)
    if not as_json:
        click.echo(f"{prefix}/: {result.summary()}")
