"""The Kinesis -> Lambda path of generated stream handlers.

Each Kinesis record carries one raw record as base64-encoded JSON. It is decoded, validated
and transformed by the group's :class:`GroupRuntime` (the same code as batch ingestion), then
the good records of the event are written together. Every record ends in exactly one of:

- **written**;
- **dead-lettered** -- a poison record that no retry can fix (not base64, not JSON, invalid
  after validation, a transformation raised, or the feature store rejected it as invalid) goes
  to the dead-letter destination with its reason, sequence number and raw payload, so it never
  blocks the shard;
- **failed** -- a retryable failure (throttling, an unavailable endpoint) that survived the
  in-handler back-off, or a configuration failure that is no record's fault (a
  :class:`~fsgen.runtime.errors.ConfigurationError`: no pseudonymization key, Secrets Manager
  unreachable; then every record of the batch fails this way and none is dead-lettered),
  returned in ``batchItemFailures`` (Lambda's ReportBatchItemFailures contract) so Lambda
  retries from there. Without a dead-letter destination poison records are
  reported there too, and the event source mapping's own retry/on-failure policy applies.

Re-running records is harmless (no duplicate visible record): the online store keeps a record
only if its event time is >= the stored one, and the offline store shows one row per
(identifier, event time), the latest write. Standard library only: no pandas, no duckdb.

This module is the processing; the records' decoding and outcome types live in
:mod:`fsgen.runtime.streamrecords`, the retry rules in :mod:`fsgen.runtime.retry`, and both are
re-exported here, where generated handlers import them from.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping

from fsgen.runtime.aggwrite import (
    AggregationRuntime,
    Writes,
    apply_events,
    events_of,
    kinesis_sequence,
    paused_gc,
)
from fsgen.runtime.bulk import BlockResult, process_many
from fsgen.runtime.errors import ConfigurationError
from fsgen.runtime.ingest import check_record_size, check_years
from fsgen.runtime.pipeline import GroupRuntime
from fsgen.runtime.retry import DEFAULT_RETRY, REJECTED, RetryPolicy, attempt, classify
from fsgen.runtime.sinks import PartialWrite, RecordRejected, Sink, block_rows, stored_records
from fsgen.runtime.streamrecords import (
    POISON,
    RETRY,
    DeadLetter,
    DecodeError,
    Failure,
    StreamResult,
    dead_letter_entry,
    decode_record,
    log,
    sequence_number,
)

# ------------------------------------------------------------------------------ processing


def process_event(
    runtime: GroupRuntime | AggregationRuntime,
    event: Mapping[str, object],
    sink: Sink,
    dead_letter: DeadLetter | None = None,
    *,
    retry: RetryPolicy = DEFAULT_RETRY,
    context: object = None,
) -> StreamResult:
    """Decode, validate, transform and write the records of one Kinesis event.

    Records are validated and transformed together by :func:`fsgen.runtime.bulk.process_many`
    (proven equal to ``GroupRuntime.process`` record by record), with the batch pipeline's
    event-time check. The good ones go to the sink in one ``write``; a sink that writes record
    by record reports how far it got (``PartialWrite``), and a batch an atomic sink rejects is
    written again record by record to isolate the bad one.

    An aggregation group (``runtime`` an :class:`~fsgen.runtime.aggwrite.AggregationRuntime`)
    updates its entities' states instead: see :func:`process_aggregation_event`."""
    if isinstance(runtime, AggregationRuntime):
        return process_aggregation_event(
            runtime, event, sink, dead_letter, retry=retry, context=context
        )
    records = event.get("Records")
    if not isinstance(records, list):
        raise DecodeError("event has no Records list")
    result = StreamResult(group=runtime.name, read=len(records))
    poison: list[tuple[object, Failure]] = []
    decoded: list[tuple[object, str]] = []
    raws: list[dict[str, object]] = []
    for position, item in enumerate(records, start=1):
        if not isinstance(item, Mapping):
            poison.append(
                (item, Failure(str(position), "<record>", "event record is not an object"))
            )
            continue
        seq = sequence_number(item, position)
        try:
            raws.append(decode_record(item))
        except DecodeError as exc:
            poison.append((item, Failure(seq, "<record>", str(exc))))
            continue
        decoded.append((item, seq))
    try:
        block = check_record_size(runtime, check_years(runtime, process_many(runtime, raws)))
    except ConfigurationError as exc:
        return _configuration_failure(runtime, records, exc)
    for index, error in block.errors:
        item, seq = decoded[index]
        poison.append((item, Failure(seq, error.field, error.message)))
    good = [decoded[i] for i in block.rows]
    for (item, seq), outcome in zip(
        good, _write(runtime, block, sink, retry, context), strict=True
    ):
        if outcome is None:
            result.written += 1
        elif outcome[0] == REJECTED:
            poison.append(
                (item, Failure(seq, "<write>", f"rejected by the feature store: {outcome[1]}"))
            )
        else:
            result.failures.append(Failure(seq, "<write>", outcome[1], RETRY))
    result.failures.extend(
        _dead_letter(runtime.name, _in_order(poison, records), dead_letter, retry, context)
    )
    if len(result.failures) > 1:
        result.failures.sort(key=_failure_order(records))
    for failure in result.failures:
        log(
            {
                "level": "error",
                "group": runtime.name,
                "sequenceNumber": failure.sequence_number,
                "field": failure.field,
                "message": failure.message,
                "kind": failure.kind,
                "deadLettered": failure.dead_lettered,
            }
        )
    return result


@paused_gc()  # the whole step: a context manager is a decorator too
def process_aggregation_event(
    art: AggregationRuntime,
    event: Mapping[str, object],
    sink: object,
    dead_letter: DeadLetter | None = None,
    *,
    retry: RetryPolicy = DEFAULT_RETRY,
    context: object = None,
    clock: Callable[[], float] = time.time,
) -> StreamResult:
    """The stream step of an aggregation group for one Kinesis event (one shard's batch).

    Records are decoded and processed like a row group's (same functions, same poison
    outcomes), each gets ``event_sequence = kinesis_sequence(sequenceNumber)``; then the
    touched entities' states are loaded, the events applied in arrival order, the event rows
    written offline and the states online (``sink.update_states``). A replayed record (its
    sequence not above its entity's state) changes nothing and counts as written, so a retried
    batch is idempotent; a LATE event is dead-lettered with its reason and nothing of it is
    written. A write that fails after the back-off reports every applied record for retry.
    The cyclic garbage collector is paused for the step (:func:`paused_gc`)."""
    records = event.get("Records")
    if not isinstance(records, list):
        raise DecodeError("event has no Records list")
    rt = art.group
    result = StreamResult(group=rt.name, read=len(records))
    poison: list[tuple[object, Failure]] = []
    decoded: list[tuple[object, str, int]] = []
    raws: list[dict[str, object]] = []
    for position, item in enumerate(records, start=1):
        if not isinstance(item, Mapping):
            poison.append(
                (item, Failure(str(position), "<record>", "event record is not an object"))
            )
            continue
        seq = sequence_number(item, position)
        try:
            sequence = kinesis_sequence(seq)
            raws.append(decode_record(item))
        except (DecodeError, ValueError) as exc:
            poison.append((item, Failure(seq, "<record>", str(exc))))
            continue
        decoded.append((item, seq, sequence))
    try:
        block = check_record_size(
            art.values,
            check_years(art.values, process_many(art.values, raws)),
            value_limit=False,
        )
    except ConfigurationError as exc:
        return _configuration_failure(rt, records, exc)
    for index, error in block.errors:
        item, seq, _ = decoded[index]
        reason = art.declared_reason(error.field, error.message)
        poison.append((item, Failure(seq, art.declared(error.field), reason)))
    events, bad = events_of(art, block, [decoded[i][2] for i in block.rows], clock())
    for r in bad:
        item, seq, _ = decoded[r.index]
        poison.append((item, Failure(seq, r.field, r.message)))
    ids = list(dict.fromkeys(e.record_id for e in events))
    done: list[Writes] = []

    def step() -> None:
        done[:] = [
            sink.update_states(  # type: ignore[attr-defined]
                art, ids, lambda stored: apply_events(art, events, stored, clock())
            )
        ]

    outcome = attempt(step, retry, context) if events else None
    if outcome is not None:
        for e in events:
            _, seq, _ = decoded[e.index]
            result.failures.append(Failure(seq, "<write>", outcome[1], RETRY))
    elif done:
        writes = done[0]
        result.written += len(writes.applied)
        for r in writes.rejected:
            item, seq, _ = decoded[r.index]
            poison.append((item, Failure(seq, r.field, r.message)))
    result.failures.extend(
        _dead_letter(rt.name, _in_order(poison, records), dead_letter, retry, context)
    )
    if len(result.failures) > 1:
        result.failures.sort(key=_failure_order(records))
    for failure in result.failures:
        log(
            {
                "level": "error",
                "group": rt.name,
                "sequenceNumber": failure.sequence_number,
                "field": failure.field,
                "message": failure.message,
                "kind": failure.kind,
                "deadLettered": failure.dead_lettered,
            }
        )
    return result


def _configuration_failure(
    runtime: GroupRuntime, records: list[object], exc: ConfigurationError
) -> StreamResult:
    """The handler cannot work (no pseudonymization key, Secrets Manager unreachable): no
    record is at fault, so none is dead-lettered and none is written; every record of the
    batch goes back in ``batchItemFailures`` and Lambda retries it once the configuration
    is fixed."""
    message = f"configuration error, the batch is retried: {exc}"
    result = StreamResult(group=runtime.name, read=len(records))
    result.failures = [
        Failure(
            sequence_number(item, position) if isinstance(item, Mapping) else str(position),
            "<configuration>",
            message,
            RETRY,
        )
        for position, item in enumerate(records, start=1)
    ]
    log({"level": "error", "group": runtime.name, "kind": "configuration", "message": message})
    return result


def _write(
    runtime: GroupRuntime, block: BlockResult, sink: Sink, retry: RetryPolicy, context: object
) -> list[tuple[str, str] | None]:
    """One outcome per accepted row: None (written) or (kind, message)."""
    n = len(block.rows)
    outcomes: list[tuple[str, str] | None] = [None] * n
    pos = 0
    while pos < n:
        partial = False

        def step() -> None:
            nonlocal pos, partial
            partial = False
            try:
                sink.write(runtime, sink.prepare(runtime, block_rows(block, pos, n)))
            except PartialWrite as exc:
                pos, partial = pos + exc.written, True
                raise exc.error from None
            pos = n

        outcome = attempt(step, retry, context)
        if outcome is None:
            break
        if partial:  # that record failed; the ones after it were not tried yet
            outcomes[pos] = outcome
            pos += 1
            continue
        if outcome[0] == REJECTED and n - pos > 1:
            for i in range(pos, n):
                outcomes[i] = attempt(
                    functools.partial(_write_one, runtime, block, sink, i), retry, context
                )
            break
        outcomes[pos:] = [outcome] * (n - pos)
        break
    return outcomes


def _write_one(runtime: GroupRuntime, block: BlockResult, sink: Sink, i: int) -> None:
    try:
        sink.write(runtime, sink.prepare(runtime, block_rows(block, i, i + 1)))
    except PartialWrite as exc:
        raise exc.error from None


def _in_order(
    poison: list[tuple[object, Failure]], records: list[object]
) -> list[tuple[object, Failure]]:
    """Poison records in the batch's order, whichever step (decoding, validation, the write,
    lateness) found them, so the dead-letter destination holds them as the stream did and a
    redrive sends them in that order (an aggregation's lateness depends on it)."""
    if len(poison) < 2:
        return poison
    position = {id(item): i for i, item in enumerate(records)}
    return sorted(poison, key=lambda p: position.get(id(p[0]), -1))


def _failure_order(records: list[object]) -> Callable[[Failure], int]:
    """Sort key of failures: their record's place in the batch."""
    order = {
        sequence_number(r, i) if isinstance(r, Mapping) else str(i): i
        for i, r in enumerate(records, start=1)
    }
    return lambda f: order.get(f.sequence_number, 0)


def _dead_letter(
    group: str,
    poison: list[tuple[object, Failure]],
    dead_letter: DeadLetter | None,
    retry: RetryPolicy,
    context: object,
) -> list[Failure]:
    """Send poison records to the dead-letter destination; if there is none, or it fails, they
    stay reported for retry, so nothing is lost."""
    if not poison:
        return []
    failures = [f for _, f in poison]
    if dead_letter is None:
        return failures
    entries = [dead_letter_entry(group, item, f) for item, f in poison]
    outcome = attempt(lambda: dead_letter.send(entries), retry, context)
    if outcome is not None:
        note = f" (dead-letter destination failed: {outcome[1]})"
        return [Failure(f.sequence_number, f.field, f.message + note, RETRY) for f in failures]
    return [Failure(f.sequence_number, f.field, f.message, POISON, True) for f in failures]


__all__ = [
    "DEFAULT_RETRY",
    "POISON",
    "REJECTED",
    "RETRY",
    "DeadLetter",
    "DecodeError",
    "Failure",
    "RecordRejected",
    "RetryPolicy",
    "StreamResult",
    "attempt",
    "classify",
    "dead_letter_entry",
    "decode_record",
    "log",
    "process_aggregation_event",
    "process_event",
    "sequence_number",
    "stored_records",
]
