"""``fsgen stream replay GROUP PATH``: feed a JSON-lines file through the stream handler exactly
as Lambda would -- batched Kinesis events with base64 data, increasing sequence numbers and
the record id as partition key -- into the local store (or a PutRecord endpoint).

Every line is sent as it is in the file (its bytes, base64-encoded), so a line that is not JSON
reaches the handler as the same poison record a producer could put on the stream. The result
accounts for every line: ``read == written + dead_lettered + failed``. A record that fails is
named by the file's line as well as its sequence number, in the result and in its dead-letter
entry (``source``, ``line``), so it can be found and fixed in the file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fsgen.runtime.kinesis import DeadLetter, RetryPolicy, StreamResult
from fsgen.runtime.sinks import Sink
from fsgen.stream.events import SHARD, Handler, event_record, stream_arn

SEQUENCE_BASE = 49_000_000_000_000_000_000_000_000_000_000_000_000_000_000
COALESCE_ROWS = 100_000
"""records a replay into the local store commits together (the batch pipeline's chunk)"""


def sequence_number(n: int, run: int = 0) -> str:
    """Kinesis-style (56-digit) sequence number of the n-th record (from 1) of the file whose
    number is ``run`` (see :func:`file_number`): replaying the same file again reuses its
    numbers (a dead-letter destination keeps its entries once), two different files never
    share one (each keeps its own)."""
    return str(SEQUENCE_BASE + run * 10**12 + n)


@dataclass
class ReplayResult:
    group: str
    source: str
    batches: int = 0
    read: int = 0
    written: int = 0
    dead_lettered: int = 0
    failed: int = 0
    seconds: float = 0.0
    failures: list[dict[str, object]] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    """per record: from being read to being visible online (``measure_latency``)"""

    def add(self, result: StreamResult, lines: Mapping[str, int] | None = None) -> None:
        """Count a batch; ``lines`` maps its sequence numbers to their lines in the file."""
        self.batches += 1
        self.read += result.read
        self.written += result.written
        self.dead_lettered += result.dead_lettered
        self.failed += result.failed
        self.failures += [
            {
                "source": self.source,
                "line": (lines or {}).get(f.sequence_number),
                "sequenceNumber": f.sequence_number,
                "field": f.field,
                "message": f.message,
                "kind": f.kind,
                "dead_lettered": f.dead_lettered,
            }
            for f in result.failures
        ]

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def to_json(self) -> dict[str, object]:
        return {
            "group": self.group,
            "source": self.source,
            "batches": self.batches,
            "read": self.read,
            "written": self.written,
            "dead_lettered": self.dead_lettered,
            "failed": self.failed,
            "seconds": round(self.seconds, 6),
        }

    def summary(self) -> str:
        return (
            f"{self.group}: read {self.read:,}, written {self.written:,}, dead-lettered "
            f"{self.dead_lettered:,}, failed {self.failed:,} "
            f"({self.batches:,} {_batches(self.batches)})"
        )


def file_number(path: Path) -> int:
    """A number for the file's content (12 decimal digits of its SHA-256)."""
    import hashlib

    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return int(digest.hexdigest(), 16) % 10**12


def lines(path: Path) -> Iterator[bytes]:
    """Non-blank lines of a JSON-lines file, without their line ending."""
    for _, data in numbered_lines(path):
        yield data


def numbered_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Non-blank lines of a JSON-lines file with their line numbers (1 = the first line, blank
    lines counted), without their line ending."""
    with Path(path).open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            stripped = line.rstrip(b"\r\n")
            if stripped.strip():
                yield number, stripped


@dataclass
class FileDeadLetter:
    """A dead-letter destination whose entries also name the file and line a replayed record
    came from (``source``, ``line``), beside its sequence number."""

    inner: DeadLetter
    source: str
    lines: dict[str, int] = field(default_factory=dict)
    """sequence number -> line of the batch being handled"""

    def send(self, entries: list[dict[str, object]]) -> None:
        self.inner.send(
            [
                {**e, "source": self.source, "line": self.lines.get(str(e.get("sequenceNumber")))}
                for e in entries
            ]
        )


def partition_key(data: bytes, identifier: str, fallback: str) -> str:
    """The record id when the line is a JSON object that has one (as a producer would key
    it), else the line number."""
    try:
        value = json.loads(data)
        key = value.get(identifier) if isinstance(value, dict) else None
        return str(key) if key not in (None, "") else fallback
    except (ValueError, RecursionError):  # not JSON, nested too deep, a 5,000-digit id
        return fallback


def arrival_sequence(n: int, run: int) -> str:
    """The sequence number of the n-th record of a replay of an aggregation group started at
    ``run`` (epoch milliseconds): it fits int64 and increases across replays, as Kinesis's
    do over time, so a later replay's events are never taken for replays of earlier ones."""
    return str(run * 10**6 + n)


def events(
    handler: Handler,
    payloads: Sequence[bytes],
    batch_size: int,
    stream: str,
    start: int = 1,
    run: int = 0,
) -> Iterator[dict[str, object]]:
    """Lambda events of ``batch_size`` records each."""
    arn = stream_arn(stream)
    batch: list[dict[str, object]] = []
    number = arrival_sequence if handler.aggregations else sequence_number
    for n, data in enumerate(payloads, start=start):
        batch.append(
            event_record(
                data,
                number(n, run),
                partition_key(data, handler.runtime.identifier, str(n)),
                shard=SHARD,
                source_arn=arn,
                arrival=time.time(),
            )
        )
        if len(batch) >= batch_size:
            yield {"Records": batch}
            batch = []
    if batch:
        yield {"Records": batch}


def replay(
    handler: Handler,
    path: Path,
    sink: Sink,
    dead_letter: DeadLetter | None,
    *,
    batch_size: int = 100,
    stream: str = "replay",
    retry: RetryPolicy | None = None,
    visible: object = None,
    limit: int | None = None,
    commit_rows: int = COALESCE_ROWS,
) -> ReplayResult:
    """Replay ``path`` through ``handler``. ``visible`` (a LocalStore) makes the replay check
    after each batch that its last written record is readable online and record each record's
    latency from being read to that moment. ``limit`` stops after that many lines.

    Into the local store (a sink with ``coalesce``), the written records of consecutive
    batches are committed together, ``commit_rows`` at a time and at the end, so the
    offline store gets one file per event-time hour per commit, not one per hour per batch
    (20,000 records over 28 days: at most 672 files, not 18,000). Each commit stays atomic;
    a replay killed before one leaves the records since the last one unwritten, and a re-run
    writes them (replays are idempotent). With ``visible`` every batch is committed at once."""
    if batch_size < 1 or commit_rows < 1:
        raise ValueError("batch size and commit rows must be at least 1")
    started = time.perf_counter()
    coalescing = visible is None and hasattr(sink, "coalesce")
    if coalescing:
        sink.coalesce = commit_rows  # type: ignore[attr-defined]
    try:
        result = _replay(
            handler, path, sink, dead_letter, batch_size, stream, retry, visible, limit
        )
        if coalescing:
            sink.flush()  # type: ignore[attr-defined]
        result.seconds = time.perf_counter() - started
    except BaseException:
        if coalescing:
            sink.discard()  # type: ignore[attr-defined]
        raise
    finally:
        if coalescing:
            sink.coalesce = 0  # type: ignore[attr-defined]
    return result


def _replay(
    handler: Handler,
    path: Path,
    sink: Sink,
    dead_letter: DeadLetter | None,
    batch_size: int,
    stream: str,
    retry: RetryPolicy | None,
    visible: object,
    limit: int | None,
) -> ReplayResult:
    result = ReplayResult(handler.group, str(path))
    payloads = numbered_lines(path)
    run = int(time.time() * 1000) if handler.aggregations else file_number(path)
    sourced = FileDeadLetter(dead_letter, str(path)) if dead_letter is not None else None
    n = 0
    while True:
        chunk: list[bytes] = []
        numbers: list[int] = []
        read_at: list[float] = []
        for number, data in payloads:
            if limit is not None and n + len(chunk) >= limit:
                break
            chunk.append(data)
            numbers.append(number)
            read_at.append(time.perf_counter())
            if len(chunk) >= batch_size:
                break
        if not chunk:
            break
        (event,) = events(handler, chunk, batch_size, stream, start=n + 1, run=run)
        records = event["Records"]
        assert isinstance(records, list)
        where = {
            str(r["kinesis"]["sequenceNumber"]): number
            for r, number in zip(records, numbers, strict=True)
        }
        if sourced is not None:
            sourced.lines = where
        n += len(chunk)
        kwargs = {"retry": retry} if retry is not None else {}
        outcome = handler.process(event, sink, sourced, **kwargs)
        result.add(outcome, where)
        if visible is not None:
            _check_visible(handler, visible, event, outcome)
            done = time.perf_counter()
            result.latencies_ms += [(done - t) * 1000 for t in read_at]
    return result


def _check_visible(
    handler: Handler, store: object, event: dict[str, object], outcome: StreamResult
) -> None:
    """Read the batch's last written record back from the online store."""
    failed = {f.sequence_number for f in outcome.failures}
    records = event["Records"]
    assert isinstance(records, list)
    for item in reversed(records):
        if item["kinesis"]["sequenceNumber"] not in failed:
            key = item["kinesis"]["partitionKey"]
            store.get_record(handler.group, key)  # type: ignore[attr-defined]
            return


def _batches(n: int) -> str:
    return "batch" if n == 1 else "batches"
