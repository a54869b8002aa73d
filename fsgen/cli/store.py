"""Record commands: ingest, get, delete-record.

On the local backend they work on the embedded store; with ``--backend aws`` they speak
sagemaker-featurestore-runtime through boto3 (PutRecord, GetRecord, DeleteRecord) against the
configured region or ``[tool.fsgen.aws] endpoint_url`` (``fsgen serve`` included), with the same
validation, transformation and rejects as the local path."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from fsgen.cli._app import (
    EXIT_ERROR,
    ISO_TIME,
    AppContext,
    echo_json,
    handle_errors,
    main,
    pass_app,
    per_second,
)

if TYPE_CHECKING:
    from fsgen.backends.aws import AwsBackend
    from fsgen.store import LocalStore


def _aws(app: AppContext) -> AwsBackend | None:
    """The AWS backend when ``--backend aws`` is chosen, else None (the local store)."""
    if app.backend_name != "aws":
        return None
    from fsgen.backends.aws import AwsBackend

    return AwsBackend.from_config(app.config)


def _default_rejects(app: AppContext, group: str) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return app.config.store_path / "rejects" / f"{group}-{stamp}.jsonl"


def _store(app: AppContext, command: str) -> LocalStore:
    from fsgen.store import LocalStore

    return LocalStore.open(
        app.config, app.spec, on_wait=lambda msg: app.err.print(f"[yellow]{msg}[/yellow]")
    )


@main.command()
@click.argument("group")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where rejected records go, as JSON lines "
    "(default: <store>/rejects/<group>-<time>.jsonl, written only if needed).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet", "jsonl"]),
    default=None,
    help="Source format (default: from the file name).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@pass_app
@handle_errors
def ingest(
    app: AppContext, group: str, path: Path, rejects: Path | None, fmt: str | None, as_json: bool
) -> None:
    """Validate, transform and write the records of PATH (CSV, Parquet, JSON lines) into
    GROUP's offline and online stores. Exit status 1 when any record was rejected."""
    backend = _aws(app)
    if backend is not None:
        _ingest_aws(app, backend, group, path, rejects, fmt, as_json)
        return
    store = _store(app, "ingest")
    runtime, note = store.generated_runtime(group, app.config.generated_dir.replace("/", "."))
    app.err.print(f"[dim]{note}[/dim]")
    if rejects is None:
        rejects = _default_rejects(app, group)
    with _Progress(app, path.stat().st_size, f"ingest {group}") as advance:
        result = store.ingest(group, path, rejects, runtime=runtime, fmt=fmt, progress=advance)
    store.close()
    app.err.print(
        f"{result.summary()} in {result.seconds:.2f}s ({per_second(result.read, result.seconds)})"
    )
    for r in result.samples[:10]:
        app.err.print(
            f"  [red]rejected[/red] {r.source} row {r.row}: {r.field}: {r.reason}", markup=True
        )
    if result.rejected > 10:
        app.err.print(f"  ... and {result.rejected - 10:,} more")
    if as_json:
        echo_json(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    if result.rejected:
        raise SystemExit(EXIT_ERROR)


class _Progress:
    """A rich progress bar on stderr for runs that take more than a moment."""

    def __init__(self, app: AppContext, total: int, label: str) -> None:
        self.app, self.total, self.label = app, total, label
        self.progress: object = None

    def __enter__(self) -> Callable[[int, int], None]:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        console = self.app.err
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[rows]:,} rows"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        task = progress.add_task(self.label, total=max(self.total, 1), rows=0)
        progress.start()
        self.progress = progress
        seen = [0]

        def advance(rows: int, position: int) -> None:
            seen[0] += rows
            progress.update(task, completed=position, rows=seen[0])

        return advance

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()  # type: ignore[attr-defined]


@main.command()
@click.argument("group")
@click.argument("record_id")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON on stdout.")
@click.option(
    "--feature", "features", multiple=True, help="Only these features (repeatable; default: all)."
)
@click.option(
    "--as-of",
    "as_of",
    type=ISO_TIME,
    default=None,
    help="Evaluate TTL expiry at this time (ISO-8601) instead of now.",
)
@pass_app
@handle_errors
def get(
    app: AppContext,
    group: str,
    record_id: str,
    as_json: bool,
    features: tuple[str, ...],
    as_of: float | None,
) -> None:
    """Print GROUP's online record RECORD_ID (exit 1 when missing, expired or deleted)."""
    from fsgen.errors import ConfigError, NotFound

    backend = _aws(app)
    if backend is not None:
        if as_of is not None:
            raise ConfigError("--as-of needs the local store: SageMaker applies TTL at read time")
        from fsgen.bind import group_runtime

        runtime = group_runtime(app.spec.group(group))
        raw = backend.get_record(group, record_id, list(features) or None)
        record = None if raw is None else runtime.from_sagemaker(raw)
    else:
        store = _store(app, "get")
        record = store.get_record(group, record_id, list(features) or None, now=as_of)
    if record is None:
        raise NotFound(f"{group}: no online record {record_id!r} (missing, expired or deleted)")
    if as_json:
        echo_json(json.dumps(record, indent=2, sort_keys=False))
        return
    width = max(len(k) for k in record)
    for key, value in record.items():
        click.echo(f"{key.ljust(width)}  {'-' if value is None else value}")


@main.command("delete-record")
@click.argument("group")
@click.argument("record_id")
@click.option(
    "--event-time",
    "event_time",
    required=True,
    help="The delete's event time (ISO-8601, or epoch seconds for Fractional).",
)
@click.option("--hard", is_flag=True, help="HardDelete: remove the online row entirely.")
@pass_app
@handle_errors
def delete_record(app: AppContext, group: str, record_id: str, event_time: str, hard: bool) -> None:
    """Delete RECORD_ID from GROUP like SageMaker's DeleteRecord (SoftDelete by default);
    a tombstone (is_deleted=true) is appended to the offline store."""
    mode = "HardDelete" if hard else "SoftDelete"
    backend = _aws(app)
    if backend is not None:
        app.spec.group(group)  # an unknown group is an error before any call
        backend.delete_record(group, record_id, event_time, hard=hard)
        click.echo(f"{mode} {group} {record_id} at {event_time}: DeleteRecord accepted")
        return
    store = _store(app, "delete-record")
    result = store.delete_record(group, record_id, event_time, hard=hard)
    if result.online_applied:
        click.echo(
            f"{mode} {group} {record_id} at {result.event_time}: deleted online, "
            "tombstone written offline"
        )
    else:
        click.echo(
            f"{mode} {group} {record_id} at {result.event_time}: the online record is "
            "newer and was kept; tombstone written offline",
            err=True,
        )


def _ingest_aws(
    app: AppContext,
    backend: AwsBackend,
    group: str,
    path: Path,
    rejects: Path | None,
    fmt: str | None,
    as_json: bool,
) -> None:
    """The generated batch job's path with PutRecord as its writer."""
    from fsgen.bind import group_runtime
    from fsgen.runtime.batch import run
    from fsgen.runtime.writers import PutRecordWriter

    runtime = group_runtime(app.spec.group(group))
    writer = PutRecordWriter({group: runtime}, client=backend.runtime)
    rejects = rejects or _default_rejects(app, group)
    started = time.perf_counter()
    result = run(runtime, path, writer, rejects=rejects, format=fmt)
    seconds = time.perf_counter() - started
    app.err.print(
        f"{group}: read {result.read:,}, written {result.written:,} (PutRecord), rejected "
        f"{len(result.rejects):,} in {seconds:.2f}s"
        + (f"; rejects in {rejects}" if result.rejects else "")
    )
    for r in result.rejects[:10]:
        app.err.print(f"  rejected {r}", markup=False)
    if as_json:
        summary = {
            "group": group,
            "source": str(path),
            "read": result.read,
            "written": result.written,
            "rejected": len(result.rejects),
            "rejects_path": str(rejects) if result.rejects else None,
        }
        echo_json(json.dumps(summary, indent=2, sort_keys=True))
    if result.rejects:
        raise SystemExit(EXIT_ERROR)
