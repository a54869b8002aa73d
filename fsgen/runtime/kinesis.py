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
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import random
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from fsgen.runtime.aggwrite import (
    AggregationRuntime,
    Writes,
    apply_events,
    events_of,
    kinesis_sequence,
)
from fsgen.runtime.bulk import BlockResult, process_many
from fsgen.runtime.errors import ConfigurationError
from fsgen.runtime.ingest import check_years
from fsgen.runtime.pipeline import GroupRuntime
from fsgen.runtime.sinks import PartialWrite, RecordRejected, Sink, block_rows, stored_records


class DeadLetter(Protocol):
    """A dead-letter destination; ``send`` stores every entry durably or raises."""

    def send(self, entries: list[dict[str, object]]) -> None: ...


class DecodeError(ValueError):
    """A Kinesis record whose data is not base64-encoded JSON of one object."""


# ------------------------------------------------------------------------------ outcomes

POISON = "poison"
RETRY = "retry"


@dataclass(frozen=True)
class Failure:
    """A record that was not written: ``kind`` is POISON (never retried) or RETRY."""

    sequence_number: str
    field: str
    message: str
    kind: str = POISON
    dead_lettered: bool = False


@dataclass
class StreamResult:
    group: str
    read: int = 0
    written: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def dead_lettered(self) -> int:
        return sum(f.dead_lettered for f in self.failures)

    @property
    def failed(self) -> int:
        """Records Lambda must retry (``batchItemFailures``)."""
        return sum(not f.dead_lettered for f in self.failures)

    def response(self) -> dict[str, list[dict[str, str]]]:
        """The Lambda response that retries exactly the records that were neither written nor
        dead-lettered."""
        return {
            "batchItemFailures": [
                {"itemIdentifier": f.sequence_number} for f in self.failures if not f.dead_lettered
            ]
        }

    def to_json(self) -> dict[str, object]:
        return {
            "group": self.group,
            "read": self.read,
            "written": self.written,
            "dead_lettered": self.dead_lettered,
            "failed": self.failed,
        }


# ------------------------------------------------------------------------------ retries

THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
REJECTED_CODES = frozenset({"ValidationError", "ValidationException"})
TRANSIENT_ERRORS = frozenset(
    {
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ReadTimeoutError",
        "ConnectTimeoutError",
        "ConnectionError",
        "TimeoutError",
        "HTTPClientError",
    }
)
TRANSIENT = "transient"
REJECTED = "rejected"
ERROR = "error"


def classify(exc: BaseException) -> str:
    """TRANSIENT (retry with back-off), REJECTED (the store refuses this record: poison) or
    ERROR (anything else: report for Lambda's retry, do not spin on it here)."""
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):  # botocore ClientError, duck-typed
        error = response.get("Error") or {}
        code = str(error.get("Code", "")) if isinstance(error, Mapping) else ""
        meta = response.get("ResponseMetadata") or {}
        status = meta.get("HTTPStatusCode", 0) if isinstance(meta, Mapping) else 0
        if code in THROTTLING_CODES or status == 429 or (isinstance(status, int) and status >= 500):
            return TRANSIENT
        return REJECTED if code in REJECTED_CODES else ERROR
    if isinstance(exc, RecordRejected):
        return REJECTED
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & TRANSIENT_ERRORS:
        return TRANSIENT
    if "OperationalError" in names and ("locked" in str(exc) or "busy" in str(exc)):
        return TRANSIENT  # sqlite: another writer holds the database
    return ERROR


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off with full jitter for TRANSIENT write errors.

    At most ``attempts`` tries per write; no retry starts when less than ``reserve_ms`` of the
    Lambda's time would remain after the wait."""

    attempts: int = 6
    base: float = 0.05
    cap: float = 2.0
    reserve_ms: int = 3000
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap, self.base * 2**attempt))


DEFAULT_RETRY = RetryPolicy()


def _remaining_ms(context: object) -> float | None:
    get = getattr(context, "get_remaining_time_in_millis", None)
    return float(get()) if callable(get) else None


def attempt(
    fn: Callable[[], object], policy: RetryPolicy, context: object = None
) -> tuple[str, str] | None:
    """Run ``fn``, retrying TRANSIENT errors; None on success, else (kind, message)."""
    for n in range(policy.attempts):
        try:
            fn()
        except Exception as exc:
            kind = classify(exc)
            message = f"{type(exc).__name__}: {exc}"
            if kind != TRANSIENT or n + 1 == policy.attempts:
                return kind, message
            wait = policy.delay(n)
            remaining = _remaining_ms(context)
            if remaining is not None and remaining - wait * 1000 < policy.reserve_ms:
                return kind, message + " (no time left to retry)"
            policy.sleep(wait)
        else:
            return None
    return ERROR, "no attempt made"  # attempts < 1


# ------------------------------------------------------------------------------ decoding


def decode_record(record: Mapping[str, object]) -> dict[str, object]:
    """The raw record inside one Kinesis event record."""
    kinesis = record.get("kinesis")
    if not isinstance(kinesis, Mapping) or not isinstance(kinesis.get("data"), str):
        raise DecodeError("event record has no kinesis.data")
    try:
        payload = base64.b64decode(str(kinesis["data"]), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"data is not valid base64: {exc}") from None
    try:
        value = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DecodeError(f"data is not UTF-8 text: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise DecodeError(f"data is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise DecodeError(f"expected a JSON object, got {type(value).__name__}")
    return value


def sequence_number(record: Mapping[str, object], position: int) -> str:
    kinesis = record.get("kinesis")
    if isinstance(kinesis, Mapping) and isinstance(kinesis.get("sequenceNumber"), str):
        return str(kinesis["sequenceNumber"])
    return str(position)


def dead_letter_entry(group: str, item: object, failure: Failure) -> dict[str, object]:
    """What a dead-letter destination keeps: why, where in the stream, and the raw payload
    exactly as received (base64), so the record can be fixed and replayed."""
    kinesis = item.get("kinesis") if isinstance(item, Mapping) else None
    kinesis = kinesis if isinstance(kinesis, Mapping) else {}
    event_id = item.get("eventID") if isinstance(item, Mapping) else None
    shard = str(event_id).partition(":")[0] if event_id else None
    return {
        "group": group,
        "reason": failure.message,
        "field": failure.field,
        "sequenceNumber": failure.sequence_number,
        "partitionKey": kinesis.get("partitionKey"),
        "shardId": shard,
        "eventSourceARN": item.get("eventSourceARN") if isinstance(item, Mapping) else None,
        "approximateArrivalTimestamp": kinesis.get("approximateArrivalTimestamp"),
        "data": kinesis.get("data"),
    }


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
        block = check_years(runtime, process_many(runtime, raws))
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
    result.failures.extend(_dead_letter(runtime.name, poison, dead_letter, retry, context))
    if len(result.failures) > 1:
        order = {
            sequence_number(r, i) if isinstance(r, Mapping) else str(i): i
            for i, r in enumerate(records, start=1)
        }
        result.failures.sort(key=lambda f: order.get(f.sequence_number, 0))
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
    written. A write that fails after the back-off reports every applied record for retry."""
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
        block = check_years(art.values, process_many(art.values, raws))
    except ConfigurationError as exc:
        return _configuration_failure(rt, records, exc)
    for index, error in block.errors:
        item, seq, _ = decoded[index]
        poison.append((item, Failure(seq, error.field, error.message)))
    events, bad = events_of(art, block, [decoded[i][2] for i in block.rows])
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
    result.failures.extend(_dead_letter(rt.name, poison, dead_letter, retry, context))
    order = {seq: i for i, (_, seq, _) in enumerate(decoded)}
    result.failures.sort(key=lambda f: order.get(f.sequence_number, -1))
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


def log(entry: Mapping[str, object]) -> None:
    """One JSON line per event, the shape CloudWatch Logs Insights queries well."""
    print(json.dumps(dict(entry), sort_keys=True), file=sys.stderr)


__all__ = [
    "DEFAULT_RETRY",
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
    "process_event",
    "stored_records",
]
