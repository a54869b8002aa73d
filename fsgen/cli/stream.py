"""Streaming commands: ``fsgen stream replay``, ``fsgen stream consume``, ``fsgen package
lambda``. Thin: parse, build the handler/writer/dead-letter, call fsgen.stream, render."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from fsgen.cli._app import EXIT_ERROR, AppContext, echo_json, handle_errors, main, pass_app
from fsgen.cli.store import warn_hidden
from fsgen.runtime.pipeline import GroupRuntime, composite_identifier

if TYPE_CHECKING:
    from fsgen.backends.base import DataPlane
    from fsgen.runtime.kinesis import DeadLetter
    from fsgen.stream.events import Handler


@main.group()
def stream() -> None:
    """Run the generated Kinesis -> Lambda stream handler locally."""


def _dead_letter(app: AppContext, group: str, url: str | None) -> DeadLetter:
    """The destination, refused before anything is read when it is a local path that cannot
    become a file (a directory, or under a file), as ingest's ``--rejects`` is: otherwise
    every poison record would 'fail' after the good ones were written."""
    from fsgen.errors import FsgenError
    from fsgen.runtime.chunks import SourceError
    from fsgen.runtime.deadletter import from_url
    from fsgen.runtime.ingest import check_output_path

    target = _dead_letter_path(app, group, url)
    if not target.startswith(("s3://", "https://", "http://")):
        try:
            check_output_path(Path(target.removeprefix("file://")), "--dead-letter")
        except SourceError as exc:
            raise FsgenError(str(exc)) from None
    return from_url(target)


def _plane(app: AppContext, put_endpoint_url: str | None, group: str) -> DataPlane:
    """The backend's data plane, opened once; ``--endpoint-url`` means PutRecord there
    (``fsgen serve``, SageMaker)."""
    from fsgen.cli.store import open_plane

    app.spec.group(group)  # an unknown group: NotFound with the known names

    if put_endpoint_url:
        from fsgen.backends import open_data_plane

        return open_data_plane(app.config, app.spec, "aws", endpoint_url=put_endpoint_url)
    return open_plane(app)


def _dead_letter_path(app: AppContext, group: str, url: str | None) -> str:
    return url or str(app.config.store_path / "dead-letter" / f"{group}.jsonl")


def _entity_id(keys: Sequence[str], value: object) -> str | None:
    """The record id of a stream record's JSON value as written (:func:`_stored_ids` makes it
    the store's): a composite key's from its key values, since its identifier is no field of
    the record; None when a key is absent or empty."""
    if not isinstance(value, dict):
        return None
    parts = [value.get(k) for k in keys]
    if any(p is None or p == "" for p in parts):
        return None
    return str(parts[0]) if len(parts) == 1 else composite_identifier([str(p) for p in parts])


def _stored_ids(rt: GroupRuntime, ids: Iterable[str]) -> set[str]:
    """``ids`` as the store keys them (an Integral key ``"007"`` is record 7)."""
    from fsgen.store.local import stored_id

    return {stored_id(rt, i) for i in ids}


def _record_ids(path: Path, rt: GroupRuntime) -> Iterator[str]:
    """The record ids of PATH's JSON lines, in file order (lines that are no JSON object, or
    lack a key, are left out)."""
    with path.open("rb") as fh:
        for line in fh:
            try:
                value = json.loads(line)
            except (ValueError, RecursionError):  # not JSON, or nested too deep
                continue
            key = _entity_id(rt.keys, value)
            if key is not None:
                yield key


def _first_ids(path: Path, rt: GroupRuntime, n: int) -> list[str]:
    from fsgen.store.local import stored_id

    ids: list[str] = []
    for key in (stored_id(rt, i) for i in _record_ids(path, rt)):
        if _storable(key) and key not in ids:
            ids.append(key)
            if len(ids) == n:
                break
    return ids


def _storable(text: str) -> bool:
    """False for an id no store can hold (a lone surrogate: not encodable text)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _newest_event_time(handler: Handler, path: Path, skip: Collection[object] = ()) -> float | None:
    """Epoch seconds of the newest valid event time in PATH (to show values as of then);
    event times the store refuses (outside years 1..9999) and the lines in ``skip`` (line
    numbers from 1: the records the replay dead-lettered or failed) do not count."""
    from fsgen.runtime.encoding import parse_event_time
    from fsgen.store.offline import MAX_SECONDS, MIN_SECONDS

    newest: float | None = None
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if number in skip:
                continue
            try:
                value = json.loads(line)
                seconds = parse_event_time(
                    handler.runtime.event_time_kind, value[handler.runtime.event_time]
                )
            except (ValueError, TypeError, KeyError, OverflowError, RecursionError):
                continue
            if not MIN_SECONDS <= seconds <= MAX_SECONDS:
                continue
            newest = seconds if newest is None else max(newest, seconds)
    return newest


def _shower(
    app: AppContext, group: str, as_of: float | None
) -> Callable[[dict[str, object] | None], str]:
    """How a record is shown: its values, or for an aggregation group its aggregation
    features finalized one second after ``as_of`` (so the newest event counts), or now when
    ``as_of`` is None."""
    spec = app.spec.group(group)
    if not spec.aggregations:
        return _show
    from fsgen.runtime.aggcodec import for_group
    from fsgen.runtime.aggregate import AggregationError, finalize_record

    definitions = [a.runtime() for a in spec.aggregations]
    # nothing written (as_of None): as of now, never as of the epoch, which a state answers
    # as of its watermark and so without the events at it
    at = int((time.time() if as_of is None else as_of + 1) * 1_000_000)

    def show(record: dict[str, object] | None) -> str:
        if record is None:
            return "(none)"
        states = {k: v for k, v in record.items() if isinstance(v, str)}
        try:
            values = finalize_record(definitions, states, at)
        except AggregationError as exc:  # a state of another definition: say so, go on
            return f"(not readable: {for_group(str(exc), group)})"
        return ", ".join(f"{k}={v!r}" for k, v in values.items())

    return show


_HANDLER_LOG_HELP = (
    "Append the handler's JSON log lines (what Lambda sends to CloudWatch: one per failed "
    "record) to this file."
)


@contextmanager
def _handler_log(path: Path | None, *, quiet: bool) -> Iterator[None]:
    """Where the handler's log lines go: PATH, else nowhere when the command lists the failures
    itself (``quiet``), else stderr."""
    from fsgen.runtime.streamrecords import logs_to

    if path is None:
        with logs_to((lambda line: None) if quiet else None):
            yield
        return
    with path.open("a", encoding="utf-8") as out, logs_to(lambda line: print(line, file=out)):
        yield


def _show(record: dict[str, object] | None) -> str:
    if record is None:
        return "(none)"
    return ", ".join(f"{k}={v!r}" for k, v in record.items())


def _refuse_batch_file(path: Path, group: str) -> None:
    """A CSV or Parquet file is no stream: each of its lines would be dead-lettered as a record
    that is not JSON. Refused by its name (or Parquet's magic bytes) before anything is sent."""
    from fsgen.errors import FsgenError

    with path.open("rb") as fh:
        parquet = fh.read(4) == b"PAR1"
    kind = "Parquet" if parquet or path.suffix.lower() == ".parquet" else None
    if kind is None and path.suffix.lower() in (".csv", ".tsv"):
        kind = "CSV"
    if kind is not None:
        raise FsgenError(
            f"{path} is a {kind} file; stream replay reads JSON lines (one record's JSON "
            f"object per line, as producers put them on the stream). Ingest a batch file with "
            f"`fsgen ingest {group} {path}`; nothing was sent"
        )


def _redrive_dead_letter(app: AppContext, group: str, source: Path, url: str | None) -> str | None:
    """Where a redrive's own dead letters go: ``url``, or when that is the very file being
    redriven, a new file beside it. Appended to the source, they would mix with the entries
    just redriven, and redriving that file again would send those a second time (an
    aggregation counts such an event twice)."""
    from datetime import UTC, datetime

    target = _dead_letter_path(app, group, url)
    if target.startswith(("s3://", "https://", "http://")):
        return url
    if Path(target.removeprefix("file://")).resolve() != source.resolve():
        return url
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    fresh = source.with_name(f"{source.stem}-redrive-{stamp}.jsonl")
    app.err.print(
        f"this redrive's dead letters go to {fresh}, not back into {source} (which holds "
        "the entries redriven now)"
    )
    return str(fresh)


def _decode_dead_letters(source: Path, into: Path) -> Path:
    """The raw payloads of a dead-letter file's entries as JSON lines, in entry order, written
    to a new file under ``into``; an entry without a base64 ``data`` payload is an error
    naming its line, before anything is written. A payload's line breaks become spaces (JSON
    allows them only between tokens, where a space means the same)."""
    import base64
    import binascii
    from datetime import UTC, datetime

    from fsgen.errors import FsgenError

    payloads: list[bytes] = []
    with source.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                data = base64.b64decode(entry["data"], validate=True)
            except (ValueError, TypeError, KeyError, binascii.Error, RecursionError):
                raise FsgenError(
                    f"{source}:{number}: not a dead-letter entry (a JSON object with the "
                    "record's base64 'data'); nothing was sent"
                ) from None
            payloads.append(data.replace(b"\r", b" ").replace(b"\n", b" ") + b"\n")
    into.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = into / f"{source.stem}-{stamp}.jsonl"
    target.write_bytes(b"".join(payloads))
    return target


@stream.command("replay")
@click.argument("group")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--batch-size",
    default=100,
    show_default=True,
    type=click.IntRange(1, 10000),
    help="Records per Kinesis event (Lambda's BatchSize).",
)
@click.option(
    "--dead-letter",
    "dead_letter",
    default=None,
    help="Dead-letter destination: a file, s3://bucket/prefix or an SQS queue URL "
    "(default: <store>/dead-letter/<group>.jsonl).",
)
@click.option(
    "--endpoint-url",
    default=None,
    help="Write with PutRecord to this endpoint (e.g. fsgen serve) instead of the local store.",
)
@click.option(
    "--show",
    "show_ids",
    multiple=True,
    help="Record ids whose online values to show before and after (repeatable; "
    "default: the first two in PATH).",
)
@click.option(
    "--handler-log",
    "handler_log",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=_HANDLER_LOG_HELP + " Not printed: replay lists the failures itself.",
)
@click.option(
    "--from-dead-letter",
    "from_dead_letter",
    is_flag=True,
    help="PATH is a dead-letter file (JSON lines with each record's base64 'data'): replay "
    "the payloads, decoded into <store>/dead-letter/redrive/ first.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON on stdout.")
@pass_app
@handle_errors
def replay_cmd(
    app: AppContext,
    group: str,
    path: Path,
    batch_size: int,
    dead_letter: str | None,
    endpoint_url: str | None,
    show_ids: tuple[str, ...],
    handler_log: Path | None,
    from_dead_letter: bool,
    as_json: bool,
) -> None:
    """Feed PATH's JSON lines through GROUP's stream handler as Lambda would (batched Kinesis
    events). Exit status 1 when a record was dead-lettered or failed."""
    from fsgen.stream.events import load_handler
    from fsgen.stream.replay import replay

    app.spec.group(group)  # an unknown group: NotFound with the known names
    _refuse_batch_file(path, group)
    if from_dead_letter:
        dead_letter = _redrive_dead_letter(app, group, path, dead_letter)
    dlq = _dead_letter(app, group, dead_letter)
    if from_dead_letter:
        source = path
        path = _decode_dead_letters(source, app.config.store_path / "dead-letter" / "redrive")
        app.err.print(f"dead-lettered payloads of {source} decoded into {path}")
    handler = load_handler(app.config, app.spec, group)
    app.err.print(f"[dim]{handler.note}[/dim]")
    plane = _plane(app, endpoint_url, group)
    ids = list(show_ids) or _first_ids(path, handler.runtime, 2)
    as_of = _newest_event_time(handler, path)
    hidden: list[tuple[str, str]] = []
    try:
        before = {i: plane.get_record(group, i, now=as_of) for i in ids}
        started = time.time()  # no state this run writes has an earlier EventTime
        with _handler_log(handler_log, quiet=True):
            result = replay(handler, path, plane.sink(group), dlq, batch_size=batch_size)
        app.err.print(f"{result.summary()} in {result.seconds:.2f}s")
        # the store's few future-dated deletes first: the file is read again for its ids
        # only when there is one
        later = plane.hidden_states(group, started) if handler.aggregations else []
        if later and result.written:
            written = _stored_ids(handler.runtime, set(_record_ids(path, handler.runtime)))
            hidden = [h for h in later if h[0] in written]
            warn_hidden(app, group, hidden)
        if result.read == 0:  # an empty export is worth a second look, as for ingest
            app.err.print(
                f"[yellow]warning[/yellow]: {path} holds no records (an empty file, or blank "
                "lines): nothing was sent"
            )
        if result.failures:  # the newest event time of the records that were written
            as_of = _newest_event_time(handler, path, {f["line"] for f in result.failures})
        plane.record_counts(  # the run joins the audit trail
            group=group,
            source=str(path),
            read=result.read,
            written=result.written,
            rejected=result.dead_lettered + result.failed,
            rejects=_dead_letter_path(app, group, dead_letter) if result.dead_lettered else None,
            seconds=result.seconds,
            run="stream-replay",
        )
        if as_of is not None:
            from fsgen.runtime.encoding import format_event_time

            newest = format_event_time("String", as_of)
            app.err.print(
                f"aggregation features one second after {newest} "
                "(the newest event time written, so it counts):"
                if handler.aggregations
                else f"online values as of {newest} "
                "(the newest event time written; TTL counts from there):"
                if plane.name != "aws"
                else "online values as GetRecord returns them now (the endpoint applies the "
                f"TTL at its own clock; the newest event time written is {newest}):"
            )
        elif ids:
            app.err.print(
                "aggregation features now (no event was written):"
                if handler.aggregations
                else "online values now (no record was written):"
            )
        show = _shower(app, group, as_of)
        for i in ids:
            app.err.print(f"  {i}: before {show(before[i])}")
            app.err.print(f"  {i}: after  {show(plane.get_record(group, i, now=as_of))}")
    finally:
        plane.close()

    def arrival(f: dict[str, object]) -> tuple[int, str]:
        number = str(f["sequenceNumber"])
        return (int(number), number) if number.isdigit() else (0, number)

    from rich.markup import escape

    # the handler reports a batch's failures by kind (late events after the others);
    # shown in arrival order, as they stand in PATH
    for f in sorted(result.failures, key=arrival)[:10]:
        what = "dead-lettered" if f["dead_lettered"] else "failed"
        app.err.print(
            f"  {escape(str(f['source']))}:{f['line']}: seq {f['sequenceNumber']}: "
            f"[red]{what}[/red]: {escape(str(f['field']))}: {escape(str(f['message']))}"
        )
    if len(result.failures) > 10:
        app.err.print(f"  ... and {len(result.failures) - 10:,} more")
    if result.dead_lettered:
        dlq_at = dead_letter or str(app.config.store_path / "dead-letter" / f"{group}.jsonl")
        app.err.print(f"dead letters: {dlq_at}")
    if as_json:
        echo_json(json.dumps(result.to_json(), sort_keys=True))
    if result.dead_lettered or result.failed or hidden:
        raise SystemExit(EXIT_ERROR)


@stream.command("consume")
@click.argument("group")
@click.option("--stream", "stream_name", required=True, help="Kinesis stream name.")
@click.option(
    "--endpoint-url",
    default=None,
    help="Kinesis endpoint (a local Kinesis such as moto); default: AWS.",
)
@click.option("--region", default=None, help="AWS region (default: [tool.fsgen.aws] region).")
@click.option(
    "--batch-size",
    default=100,
    show_default=True,
    type=click.IntRange(1, 10000),
    help="Records per GetRecords call and handler invocation (Lambda's BatchSize).",
)
@click.option(
    "--max-records",
    default=None,
    type=click.IntRange(1),
    help="Stop after this many records are handled.",
)
@click.option(
    "--idle-timeout",
    default=None,
    type=click.FloatRange(0),
    help="Stop after this many seconds without new records.",
)
@click.option(
    "--poll-interval",
    default=0.2,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds to wait after a round of polls that found no new records.",
)
@click.option(
    "--commit-seconds",
    default=1.0,  # fsgen.stream.consume.COMMIT_SECONDS (not imported: startup time)
    show_default=True,
    type=click.FloatRange(0),
    help="Into the local store, commit the batches of up to this many seconds together "
    "(0: every batch on its own).",
)
@click.option(
    "--commit-rows",
    default=100_000,  # fsgen.stream.consume.COMMIT_ROWS
    show_default=True,
    type=click.IntRange(1),
    help="Commit at most this many records together.",
)
@click.option(
    "--dead-letter",
    "dead_letter",
    default=None,
    help="Dead-letter destination (default: <store>/dead-letter/<group>.jsonl).",
)
@click.option(
    "--put-endpoint-url",
    default=None,
    help="Write with PutRecord to this endpoint instead of the local store.",
)
@click.option(
    "--handler-log",
    "handler_log",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=_HANDLER_LOG_HELP + " Default: stderr.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON on stdout.")
@pass_app
@handle_errors
def consume_cmd(
    app: AppContext,
    group: str,
    stream_name: str,
    endpoint_url: str | None,
    region: str | None,
    batch_size: int,
    max_records: int | None,
    idle_timeout: float | None,
    poll_interval: float,
    commit_seconds: float,
    commit_rows: int,
    dead_letter: str | None,
    put_endpoint_url: str | None,
    handler_log: Path | None,
    as_json: bool,
) -> None:
    """Poll Kinesis stream --stream and run GROUP's stream handler on each batch; checkpoints
    under the store directory let a restart resume where it stopped. Exit status 1 when a
    record was dead-lettered or was still failing when it stopped."""
    from fsgen.stream.checkpoints import Checkpoints
    from fsgen.stream.consume import Consumer, kinesis_client
    from fsgen.stream.events import load_handler

    app.spec.group(group)  # an unknown group: NotFound with the known names
    dlq = _dead_letter(app, group, dead_letter)
    handler = load_handler(app.config, app.spec, group)
    app.err.print(f"[dim]{handler.note}[/dim]")
    plane = _plane(app, put_endpoint_url, group)
    checkpoints = Checkpoints(app.config.store_path, stream_name, group)
    written: set[str] = set()  # an aggregation group's entities this run wrote states of
    noted = _note_ids(handler.runtime.keys, written) if handler.aggregations else None
    consumer = Consumer(
        handler,
        kinesis_client(endpoint_url, region or app.config.aws.region),
        stream_name,
        plane.sink(group),
        dlq,
        checkpoints,
        batch_size=batch_size,
        poll_interval=poll_interval,
        commit_rows=commit_rows,
        commit_seconds=commit_seconds,
        on_records=noted,
    )
    started = time.perf_counter()
    since = time.time()  # no state this run writes has an earlier EventTime
    hidden: list[tuple[str, str]] = []
    try:
        with _handler_log(handler_log, quiet=False):
            result = consumer.run(max_records, idle_timeout)
        if written and result.written:
            ours = _stored_ids(handler.runtime, written)
            hidden = [h for h in plane.hidden_states(group, since) if h[0] in ours]
        plane.record_counts(  # the run joins the audit trail, as replay does
            group=group,
            source=f"kinesis:{stream_name}",
            read=result.written + result.dead_lettered,
            written=result.written,
            rejected=result.dead_lettered,
            rejects=_dead_letter_path(app, group, dead_letter) if result.dead_lettered else None,
            seconds=time.perf_counter() - started,
            run="stream-consume",
        )
    finally:
        plane.close()
    app.err.print(result.summary())
    warn_hidden(app, group, hidden)
    if result.dead_lettered:
        app.err.print(f"dead letters: {_dead_letter_path(app, group, dead_letter)}")
    if result.failed:
        app.err.print(
            f"{result.failed:,} record(s) still failing when the consumer stopped: not written; "
            "the checkpoint is before them, so the next consume reads them again"
        )
    if as_json:
        counts = result.to_json()
        counts["hidden"] = [{"record_id": rid, "until": until} for rid, until in hidden]
        echo_json(json.dumps(counts, sort_keys=True))
    if result.dead_lettered or result.failed or hidden:
        raise SystemExit(EXIT_ERROR)


def _note_ids(keys: Sequence[str], into: set[str]) -> Callable[[list[Mapping[str, Any]]], None]:
    """A Consumer ``on_records`` hook adding each record's entity id as written (see
    :func:`_entity_id`; :func:`_stored_ids` makes them the store's) to ``into``; a record that
    is no JSON object is the handler's dead letter."""

    def note(records: list[Mapping[str, Any]]) -> None:
        for r in records:
            try:
                value = json.loads(r["Data"])
            except (ValueError, RecursionError, TypeError, KeyError):
                continue
            key = _entity_id(keys, value)
            if key is not None:
                into.add(key)

    return note


@main.group("package")
def package() -> None:
    """Build deployment packages."""


@package.command("lambda")
@click.argument("group")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Zip path (default: <store>/lambda/<group>.zip).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@pass_app
@handle_errors
def package_lambda(app: AppContext, group: str, output: Path | None, as_json: bool) -> None:
    """Build GROUP's stream handler deployment zip (handler, definitions, fsgen.runtime) and
    check that it imports on its own."""
    from fsgen.stream.package import build

    result = build(app.config, app.spec, group, output)
    app.err.print(
        f"{result.path}: {len(result.files)} files, {result.size:,} bytes; "
        f"handler {result.handler} (imports from the zip alone: ok)"
    )
    if as_json:
        echo_json(json.dumps(result.to_json(), sort_keys=True))


@package.command("glue")
@click.argument("group")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory (default: <store>/glue/<group>/).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@pass_app
@handle_errors
def package_glue(app: AppContext, group: str, output: Path | None, as_json: bool) -> None:
    """Build GROUP's Glue job files: spark_job.py (the script) and fsgen-glue-<group>.zip
    (--extra-py-files: the job, definitions, fsgen.runtime), checked to import on its own."""
    from fsgen.stream.package import build_glue

    result = build_glue(app.config, app.spec, group, output)
    app.err.print(
        f"{result.path}: {len(result.files)} files, {result.size:,} bytes; script "
        f"{result.path.with_name('spark_job.py')} (imports from the zip alone: ok)"
    )
    if as_json:
        echo_json(json.dumps(result.to_json(), sort_keys=True))
