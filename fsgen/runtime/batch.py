"""What a generated batch job runs: its Python API (:func:`process_rows`, :func:`run`) and its
command line (:func:`main`), all on the one batch pipeline of :mod:`fsgen.runtime.ingest`, so
``python -m generated.groups.<g>.batch_job`` accepts, rejects and counts exactly what
``fsgen ingest`` does.

Where records go is the caller's: a :class:`~fsgen.runtime.sinks.Sink`, or for the command
line a ``destination`` function the generated module passes in (it opens the project's
backend; this module imports nothing from fsgen outside :mod:`fsgen.runtime`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from fsgen.runtime.aggwrite import AggregationRuntime
from fsgen.runtime.ingest import IngestResult, OnFinish, RejectSink, process_chunk
from fsgen.runtime.ingest import run as run_pipeline
from fsgen.runtime.pipeline import GroupRuntime
from fsgen.runtime.sinks import JsonlSink, Record, Sink, stored_records
from fsgen.runtime.sources import FORMATS, Reject, rows_chunk


class Destination(Protocol):
    """The project's backend as a batch job sees it: it runs the batch pipeline into its own
    sink (the local store's commits overlap the next chunk's transformation) and audits the
    run (``fsgen.backends.base.DataPlane`` is one)."""

    def ingest(
        self,
        group: str,
        source: object,
        rejects: Path | None = None,
        *,
        runtime: GroupRuntime | None = None,
        fmt: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        run_id: str | None = None,
        duplicates: str = "refuse",
    ) -> IngestResult: ...

    def default_rejects(self, group: str) -> Path:
        """The rejects file ``fsgen ingest`` would write (``<store>/rejects/...``)."""
        ...

    def hidden_states(self, group: str, since: float) -> list[tuple[str, str]]:
        """Entities whose states a SoftDelete later than ``since`` hides (see
        ``fsgen.backends.base.DataPlane``)."""
        ...

    def close(self) -> None: ...


def hidden_states_text(group: str, hidden: Sequence[tuple[str, str]]) -> str:
    """What ``fsgen ingest``, ``stream replay`` / ``consume`` and a batch job say of the states
    they wrote that a SoftDelete with a later event time hides: (record id, its time)."""
    shown = ", ".join(f"{rid} (until {when})" for rid, when in hidden[:5])
    more = f" and {len(hidden) - 5:,} more" if len(hidden) > 5 else ""
    return (
        f"{group}: the online state of {len(hidden):,} "
        f"entit{'y' if len(hidden) == 1 else 'ies'} is not readable: {shown}{more}: a "
        "SoftDelete with a later event time than this write hides it (a state record's event "
        "time is its write time; the online store keeps the latest). Their events are in the "
        "offline history (training sets read them); GetRecord and serving return no state "
        "until a write after that time"
    )


OpenDestination = Callable[[str | None], Destination]
"""project directory (None: the working directory's project) -> its destination"""


def process_rows(
    runtime: GroupRuntime, rows: Iterable[Mapping[str, object]], *, source: str = "<rows>"
) -> tuple[list[Record], list[Reject]]:
    """Validate and transform rows (numbered from 1); every row ends up in exactly one of the
    two lists."""
    good: list[dict[str, object]] = []
    numbers: list[int] = []
    bad: list[Reject] = []
    for number, row in enumerate(rows, start=1):
        if isinstance(row, Mapping):
            good.append(dict(row))
            numbers.append(number)
        else:
            reason = f"expected an object with fields, got {type(row).__name__}"
            bad.append(Reject(source, number, "<record>", reason, row))
    rejects = RejectSink(None, keep=0, into=bad)
    block = process_chunk(runtime, rows_chunk(source, good, numbers), rejects)
    bad.sort(key=lambda r: r.row)
    return stored_records(runtime, block), bad


def run(
    runtime: GroupRuntime | AggregationRuntime,
    source: object,
    sink: Sink | None,
    *,
    rejects: str | os.PathLike[str] | list[Reject] | None = None,
    format: str | None = None,
    on_finish: OnFinish | None = None,
) -> IngestResult:
    """Ingest one source into ``sink`` (None: a dry run); see :func:`fsgen.runtime.ingest.run`.
    The run's id starts with ``batch-`` (how the audit trail tells batch-job runs apart)."""
    aggregations = runtime if isinstance(runtime, AggregationRuntime) else None
    return run_pipeline(
        group_of(runtime),
        source,
        sink,
        rejects=rejects,
        fmt=format,
        workers=None,
        on_finish=on_finish,
        run_id=batch_run_id(),
        aggregations=aggregations,
    )


def group_of(runtime: GroupRuntime | AggregationRuntime) -> GroupRuntime:
    return runtime.group if isinstance(runtime, AggregationRuntime) else runtime


def batch_run_id() -> str:
    return f"batch-{uuid.uuid4().hex[:12]}"


def main(
    job: GroupRuntime | AggregationRuntime,
    default_sources: Sequence[str],
    argv: Sequence[str] | None = None,
    destination: OpenDestination | None = None,
) -> int:
    """``python -m <generated batch job> [SOURCE] [--rejects PATH] ...``; exit 1 on rejects."""
    runtime = group_of(job)
    parser = argparse.ArgumentParser(
        prog=f"batch job of {runtime.name}",
        description=f"Validate, transform and write raw records of feature group {runtime.name}.",
    )
    parser.add_argument(
        "source",
        nargs="?",
        default=None,
        help="CSV, Parquet or JSON-lines file, local or s3:// "
        f"(default: {', '.join(default_sources) or 'none'})",
    )
    parser.add_argument("--format", choices=FORMATS, default=None)
    parser.add_argument("--rejects", default=None, help="write rejected rows here (JSON lines)")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--dry-run", action="store_true", help="validate and transform only")
    out.add_argument("--output", default=None, help="write stored records as JSON lines")
    parser.add_argument("--project", default=None, help="project directory for the backend")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    seen = parser.add_mutually_exclusive_group()
    seen.add_argument(
        "--skip-seen",
        action="store_true",
        help="aggregation group: leave out events already in the offline history",
    )
    seen.add_argument(
        "--allow-duplicates",
        action="store_true",
        help="aggregation group: ingest such events as new events",
    )
    args = parser.parse_args(argv)
    source = args.source or (default_sources[0] if default_sources else None)
    if source is None:
        parser.error("no SOURCE given and the group declares no batch source")
    target: Destination | None = None
    hidden: list[tuple[str, str]] = []
    try:
        if args.output or args.dry_run:
            sink = JsonlSink(args.output) if args.output else None
            result = run(job, source, sink, rejects=args.rejects, format=args.format)
        else:
            if destination is None:
                parser.error("no backend to write to: use --dry-run or --output")
            target = destination(args.project)
            started = time.time()  # no state this run writes has an earlier EventTime
            # without --rejects, where fsgen ingest keeps them: the audit names the file
            result = target.ingest(
                runtime.name,
                source,
                Path(args.rejects) if args.rejects else target.default_rejects(runtime.name),
                runtime=runtime,
                fmt=args.format,
                run_id=batch_run_id(),
                duplicates="skip"
                if args.skip_seen
                else "allow"
                if args.allow_duplicates
                else "refuse",
            )
            if result.state_ids:  # as fsgen ingest: the states of this run a delete hides
                written = set(result.state_ids)
                found = target.hidden_states(runtime.name, started)
                hidden = [h for h in found if h[0] in written]
    except Exception as exc:  # a command line reports; FSGEN_DEBUG=1 shows the traceback
        if os.environ.get("FSGEN_DEBUG"):
            raise
        builtin = type(exc).__module__ == "builtins" and not isinstance(exc, OSError)
        print(
            f"error: {type(exc).__name__}: {exc}" if builtin else f"error: {exc}", file=sys.stderr
        )
        return 1
    finally:
        if target is not None:
            target.close()
    for reject in result.samples:
        print(f"rejected: {reject}", file=sys.stderr)
    if result.rejected > len(result.samples):
        print(f"... and {result.rejected - len(result.samples)} more rejects", file=sys.stderr)
    if result.rejected and result.rejects_path is None:
        print(
            f"note: the {result.rejected} reject(s) were not written to a file (give "
            "--rejects PATH to keep them)",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(result.to_dict(), sort_keys=True))
    else:
        print(result.summary(), file=sys.stderr)
    if hidden:
        print(f"warning: {hidden_states_text(runtime.name, hidden)}", file=sys.stderr)
    return 0 if result.ok and not hidden else 1


__all__ = [
    "Destination",
    "IngestResult",
    "Reject",
    "hidden_states_text",
    "main",
    "process_rows",
    "run",
]
