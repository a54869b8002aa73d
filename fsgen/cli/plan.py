"""plan, apply, destroy, history, serve: reconcile the deployed feature groups with the
definitions, Terraform-style."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from fsgen.cli._app import EXIT_CHANGES, AppContext, echo_json, handle_errors, main, pass_app

if TYPE_CHECKING:
    from fsgen import audit
    from fsgen.backends.base import Backend
    from fsgen.plan.model import Plan


def echo_plan(text: str) -> None:
    """A rendered plan on stdout, in Terraform's colours when stdout is a terminal (and
    NO_COLOR is unset); plain text into pipes and files."""
    import os

    from fsgen.plan.render import paint

    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    click.echo(paint(text) if color else text, nl=False, color=color)


def _backend(app: AppContext) -> Backend:
    from fsgen.backends import open_backend

    return open_backend(app.config, app.backend_name)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON on stdout.")
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there are no changes, 2 when there are, 1 on error.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Save the plan for 'fsgen apply PLANFILE'.",
)
@pass_app
@handle_errors
def plan(app: AppContext, as_json: bool, detailed_exitcode: bool, out: Path | None) -> None:
    """Show what apply would change on the backend."""
    from fsgen.plan.apply import compute_plan
    from fsgen.plan.render import render_plan

    result = compute_plan(app.config, app.spec, _backend(app))
    if out is not None:
        out.write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
    if as_json:
        echo_json(result.model_dump_json(indent=2))
    else:
        echo_plan(render_plan(result))
        if out is not None:
            click.echo(f"\nSaved the plan to {out}. Apply it with: fsgen apply {out}")
    if detailed_exitcode and result.has_changes:
        raise SystemExit(EXIT_CHANGES)


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        # No terminal to ask (CI, a pipe): answer "no" instead of hanging or guessing.
        line = sys.stdin.readline() if not sys.stdin.closed else ""
        if line.strip().lower() in ("yes",):
            return True
        click.echo(
            "No confirmation given (stdin is not a terminal, and it did not answer "
            "'yes'); pass --auto-approve to apply without asking.",
            err=True,
        )
        return False
    return (
        click.prompt(
            f"{question} Only 'yes' will be accepted", default="", show_default=False, err=True
        ).strip()
        == "yes"
    )


def _run_apply(
    app: AppContext,
    plan_file: Path | None,
    auto_approve: bool,
    allow_replace: bool,
    destroy: bool,
    lock_timeout: float,
) -> None:
    from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn

    from fsgen.plan.apply import apply_plan, check_fresh, compute_plan, load_plan
    from fsgen.plan.render import render_plan

    backend = _backend(app)
    saved = load_plan(plan_file) if plan_file is not None else None
    the_plan: Plan = saved or compute_plan(app.config, app.spec, backend, destroy=destroy)
    if saved is not None:
        check_fresh(app.config, app.spec, backend, saved)  # never show an outdated plan
        click.echo(f"Applying the saved plan {plan_file}:")
    if destroy and not the_plan.has_changes:  # "matches the definitions" would be untrue
        click.echo(
            f"No changes. No feature group of this project is deployed on the {backend.name} "
            "backend: nothing to destroy."
        )
        return
    echo_plan(render_plan(the_plan))
    if not the_plan.has_changes:
        return

    # The spinner starts with the first stage, after the question: a live display redraws
    # its line many times a second and would overwrite the prompt and the typed answer.
    bar = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=app.err, transient=True
    )
    task: list[TaskID] = []

    def confirm(p: Plan) -> bool:
        if auto_approve:
            return True
        if task:
            bar.stop()
        verb = "destroy these feature groups" if destroy else "perform these actions"
        if _confirm(f"Do you want to {verb}?"):
            return True
        from fsgen.plan.apply import PlanError

        raise PlanError(f"{'destroy' if destroy else 'apply'} cancelled; nothing was changed")

    def progress(text: str) -> None:
        if not task:
            bar.start()
            task.append(bar.add_task("applying", total=None))
        if text.startswith("["):
            bar.console.print(f"  {text}")
        bar.update(task[0], description=text)

    try:
        result = apply_plan(
            app.config,
            app.spec,
            backend,
            the_plan,
            allow_destructive=allow_replace,
            progress=progress,
            lock_timeout=lock_timeout,
            confirm=confirm,
        )
    finally:
        bar.stop()
    created, removed = set(the_plan.artifacts_created), set(the_plan.artifacts_removed)
    for path in result.regenerated:  # as the plan marked them: + created, - removed, ~ changed
        done = "created" if path in created else "removed" if path in removed else "regenerated"
        app.err.print(f"  {done} {path}")
    from fsgen.plan.render import apply_summary, destroy_summary

    if destroy:
        echo_plan(destroy_summary(the_plan, _offline_kept(app, backend.name)) + "\n")
    else:
        echo_plan(apply_summary(the_plan) + "\n")
    from fsgen.plan.render import backfill_lines

    for line in backfill_lines(the_plan):
        click.echo(f"Backfill needed: {line}")


def _offline_kept(app: AppContext, backend: str) -> str:
    """Where a deleted group's offline history stays, on each backend (README, Plan and
    apply)."""
    if backend == "aws":
        return (
            "SageMaker does not delete a group's offline store (its S3 objects and the Glue "
            "table stay)"
        )
    return f"moved to {app.config.store_path / 'archive'}/<group>/<UTC time>/"


@main.command()
@click.argument(
    "plan_file", required=False, type=click.Path(dir_okay=False, exists=True, path_type=Path)
)
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@click.option(
    "--allow-replace",
    is_flag=True,
    help="Allow stages that delete a group (replace, destroy): its online data is lost.",
)
@click.option(
    "--lock-timeout",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds to wait for another apply to finish.",
)
@pass_app
@handle_errors
def apply(
    app: AppContext,
    plan_file: Path | None,
    auto_approve: bool,
    allow_replace: bool,
    lock_timeout: float,
) -> None:
    """Apply the plan (or a saved PLAN_FILE) to the backend, then regenerate generated/."""
    _run_apply(app, plan_file, auto_approve, allow_replace, False, lock_timeout)


@main.command()
@click.option("--auto-approve", is_flag=True, help="Destroy without asking for confirmation.")
@click.option(
    "--lock-timeout",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds to wait for another apply to finish.",
)
@pass_app
@handle_errors
def destroy(app: AppContext, auto_approve: bool, lock_timeout: float) -> None:
    """Delete every feature group this project created on the backend."""
    _run_apply(app, None, auto_approve, True, True, lock_timeout)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the history as JSON lines.")
@click.option(
    "--kind",
    type=click.Choice(["apply", "ingest", "delete", "backfill"]),
    default=None,
    help="Only applies, only ingestion runs, only record deletes or only backfills.",
)
@click.option("--group", default=None, help="Only events that touched this feature group.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the newest N events.")
@pass_app
@handle_errors
def history(
    app: AppContext, as_json: bool, kind: str | None, group: str | None, limit: int | None
) -> None:
    """Show the audit trail, oldest first: who applied what, when, and how it ended, and every
    ingestion run with its counts and rejects (see fsgen.audit)."""
    from fsgen import audit

    recorded = audit.query(app.config, backend=app.backend)
    if group is not None:
        _check_history_group(app, group, recorded)
    events = audit.query(app.config, kind=kind, group=group, backend=app.backend, limit=limit)
    if as_json:
        for event in events:
            echo_json(json.dumps(event.to_dict(), sort_keys=True))
        return
    if not recorded:
        click.echo("No applies or ingestions recorded yet.")
        return
    if not events:
        asked = " ".join(
            f"--{name} {value}" for name, value in (("kind", kind), ("group", group)) if value
        )
        total = f"{len(recorded):,} recorded; 'fsgen history' lists them"
        click.echo(f"No events match {asked} ({total}).")
        return
    for event in events:
        click.echo(audit.render_line(event))


def _check_history_group(app: AppContext, group: str, recorded: list[audit.AuditEvent]) -> None:
    """A ``--group`` that neither the history nor the definitions know is a misspelling, not an
    empty history; a group destroyed long ago is still found by its events."""
    from fsgen.errors import FsgenError, NotFound

    known = {g for event in recorded for g in event.groups}
    if group in known:
        return
    try:
        known.update(g.name for g in app.spec.groups)
    except FsgenError:
        pass  # broken definitions: the history alone decides (it is read without them)
    if group not in known:
        raise NotFound(
            f"no feature group named {group!r} in the definitions or the history "
            f"(known: {', '.join(sorted(known)) or 'none'})"
        )


@main.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=4510,
    show_default=True,
    help="Port on 127.0.0.1 (0 picks a free one).",
)
@pass_app
@handle_errors
def serve(app: AppContext, port: int) -> None:
    """Serve SageMaker's feature-group and featurestore-runtime APIs on 127.0.0.1, backed by
    the local store, for boto3 (endpoint_url=http://127.0.0.1:PORT)."""
    from fsgen.server import make_server

    server = make_server(app.config, app.spec, port=port)
    app.err.print(
        f"fsgen serve: listening on {server.url} (store {app.config.store_path}); Ctrl-C stops"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
