"""``fsgen ingest``: a file through the batch pipeline into the backend's data plane (opened once
by :func:`fsgen.cli.store.open_plane`), with a progress bar, a rejects file that never collides,
and ``--engine spark`` for the generated Spark job."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from fsgen.cli._app import (
    EXIT_ERROR,
    AppContext,
    echo_json,
    handle_errors,
    main,
    pass_app,
    per_second,
)
from fsgen.cli.store import open_plane, warn_hidden

if TYPE_CHECKING:
    from fsgen.backends.base import DataPlane
    from fsgen.runtime.ingest import IngestResult
    from fsgen.runtime.pipeline import GroupRuntime


def _default_rejects(app: AppContext, group: str) -> Path:
    from fsgen.backends.base import default_rejects_path

    return default_rejects_path(app.config.store_path, group)


@main.command()
@click.argument("group")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where rejected records go, as JSON lines "
    "(default: <store>/rejects/<group>-<time>-<random>.jsonl, written only if needed).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet", "jsonl"]),
    default=None,
    help="Source format (default: from the file name).",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "spark"]),
    default="local",
    help="local: this process; spark: the generated Spark job on local[2] (FSGEN_SPARK_MASTER), "
    "local backend only; needs pip install 'fsgen[spark]' and Java 17.",
)
@click.option(
    "--skip-seen",
    is_flag=True,
    help="Aggregation group: leave out the events the offline history already holds from an "
    "earlier ingestion (same entity, event time and values) and ingest the rest "
    "(default: refuse the file, writing nothing).",
)
@click.option(
    "--allow-duplicates",
    is_flag=True,
    help="Aggregation group: ingest such events as new events (counted again).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@pass_app
@handle_errors
def ingest(
    app: AppContext,
    group: str,
    path: Path,
    rejects: Path | None,
    fmt: str | None,
    engine: str,
    skip_seen: bool,
    allow_duplicates: bool,
    as_json: bool,
) -> None:
    """Validate, transform and write the records of PATH (CSV, Parquet, JSON lines) into
    GROUP's offline and online stores. Exit status 1 when any record was rejected, or when an
    aggregation group's file holds events already ingested (see --skip-seen)."""
    from fsgen.bind import generated_runtime
    from fsgen.errors import IngestError
    from fsgen.runtime.errors import ConfigurationError

    if skip_seen and allow_duplicates:
        raise click.UsageError("give --skip-seen or --allow-duplicates, not both")
    duplicates = "skip" if skip_seen else "allow" if allow_duplicates else "refuse"
    if duplicates != "refuse" and not app.spec.group(group).aggregations:
        raise click.UsageError(
            f"--{'skip-seen' if skip_seen else 'allow-duplicates'} is for aggregation groups; "
            f"{group!r} stores records (one per id and event time), which a second ingestion "
            "overwrites rather than counts"
        )
    runtime, note = generated_runtime(app.config, app.spec, group)
    app.err.print(f"[dim]{note}[/dim]")
    if rejects is None:
        rejects = _default_rejects(app, group)
    plane = open_plane(app)
    hidden: list[tuple[str, str]] = []
    try:
        started = time.time()  # no state this run writes has an earlier EventTime
        with _Progress(app, path, fmt, f"ingest {group}") as advance:
            if engine == "spark":
                result = _ingest_spark(app, plane, group, path, rejects, runtime, fmt, advance)
            else:
                result = plane.ingest(
                    group,
                    path,
                    rejects,
                    runtime=runtime,
                    fmt=fmt,
                    progress=advance,
                    duplicates=duplicates,
                )
        if app.spec.group(group).aggregations and result.state_ids:
            # only the entities this run wrote a state of: another one's delete is not its
            written = set(result.state_ids)
            hidden = [h for h in plane.hidden_states(group, started) if h[0] in written]
    except ConfigurationError as exc:
        raise IngestError(
            f"{group}: the run stopped on a configuration error, not a bad record (no row was "
            f"rejected for it): {exc}"
        ) from None
    finally:
        plane.close()
    app.err.print(
        f"{result.summary()} in {result.seconds:.2f}s "
        f"({per_second(result.read, result.seconds)}, {plane.name} backend)"
    )
    for r in result.samples[:10]:
        app.err.print(
            f"  [red]rejected[/red] {r.source} row {r.row}: {r.field}: {r.reason}", markup=True
        )
    if result.rejected > 10:
        app.err.print(f"  ... and {result.rejected - 10:,} more")
    if result.read == 0:  # an empty export is worth a second look, not a quiet success
        app.err.print(
            f"[yellow]warning[/yellow]: {path} holds no records (an empty file, or a header "
            "with no rows): nothing was written"
        )
    warn_hidden(app, group, hidden)
    if as_json:
        echo_json(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    if result.rejected or hidden:
        raise SystemExit(EXIT_ERROR)


def _ingest_spark(
    app: AppContext,
    plane: DataPlane,
    group: str,
    path: Path,
    rejects: Path,
    runtime: GroupRuntime,
    fmt: str | None,
    advance: Callable[[int, int], None],
) -> IngestResult:
    """The generated Spark job into the local store (:mod:`fsgen.store.spark`)."""
    from fsgen.backends.local import LocalDataPlane
    from fsgen.errors import FsgenError
    from fsgen.store import spark

    if not isinstance(plane, LocalDataPlane):
        raise FsgenError(
            f"--engine spark writes the local store; on the {plane.name} backend run the "
            "generated Glue job (README: Scale-out with Spark / Glue)"
        )
    aggregations = [a.name for a in app.spec.group(group).aggregations]
    if aggregations:
        raise FsgenError(
            f"--engine spark does not run aggregation groups: {group!r} declares "
            f"{', '.join(aggregations)} (its events need one ordered state per entity); "
            f"ingest it with the default --engine local"
        )
    from fsgen.runtime.sparktasks import SparkUnavailable

    plane.require_applied(group)
    try:
        return spark.ingest(
            app.config, plane.store, runtime, path, rejects, fmt=fmt, progress=advance
        )
    except SparkUnavailable as exc:
        raise FsgenError(str(exc)) from None


class _Progress:
    """A rich progress bar on stderr (on a terminal): records written or rejected so far
    against the source's record count, the rate, the rejects and the time left.

    The bar counts records the pipeline has finished with, never the reader's read-ahead;
    the total is the file's record count (Parquet metadata; lines for JSON lines and CSV, so
    a CSV with line breaks inside quoted values finishes short of it)."""

    def __init__(self, app: AppContext, path: Path, fmt: str | None, label: str) -> None:
        self.app, self.path, self.fmt, self.label = app, path, fmt, label
        self.progress: object = None

    def __enter__(self) -> Callable[[int, int], None]:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        console = self.app.err
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[count]}"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[rejected]:,} rejected"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        total = _records_in(self.path, self.fmt) if console.is_terminal else None
        of = "" if total is None else f"/{total:,}"
        task = progress.add_task(
            self.label, total=total, count=f"0{of} records", rate="", rejected=0
        )
        progress.start()
        self.progress = progress
        started = time.perf_counter()
        done = [0, 0]

        def advance(rows: int, rejected: int) -> None:
            done[0] += rows
            done[1] += rejected
            rate = per_second(done[0], time.perf_counter() - started, "record")
            count = f"{done[0]:,}{of} records"
            progress.update(task, completed=done[0], count=count, rate=rate, rejected=done[1])

        return advance

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()  # type: ignore[attr-defined]


def _records_in(path: Path, fmt: str | None) -> int | None:
    """The number of records of a source file, for the progress bar (None: unknown)."""
    kind = fmt or {".parquet": "parquet", ".jsonl": "jsonl", ".json": "jsonl"}.get(
        path.suffix.lower(), "csv"
    )
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        lines, last = 0, b"\n"
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                lines += block.count(b"\n")
                last = block[-1:]
        lines += last != b"\n"  # a last line without its newline
        return max(lines - (kind == "csv"), 0)  # the CSV header is not a record
    except Exception:  # an unreadable file: the pipeline reports it; the bar has no total
        return None
