"""A Kinesis event's records and what becomes of each: decoding (base64 JSON of one object),
the outcome types (:class:`Failure`, :class:`StreamResult` with its Lambda
``batchItemFailures`` response), the dead-letter protocol and entry, and the handler's log
line. Standard library only."""

from __future__ import annotations

import base64
import binascii
import json
import json.scanner
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol


class DeadLetter(Protocol):
    """A dead-letter destination; ``send`` stores every entry durably or raises."""

    def send(self, entries: list[dict[str, object]]) -> None: ...


class DecodeError(ValueError):
    """A Kinesis record whose data is not base64-encoded JSON of one object."""


class RepeatedKey(ValueError):
    """A JSON object that gives a key more than once: ``json`` keeps the last value without a
    word, so which one the producer meant cannot be told, and the record is refused."""


def _unique_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object's pairs as a dict; raises RepeatedKey when a key repeats."""
    value = dict(pairs)
    if len(value) == len(pairs):
        return value
    counts: dict[str, int] = {}
    for key, _ in pairs:
        counts[key] = counts.get(key, 0) + 1
    repeated = ", ".join(f"{k!r} {n} times" for k, n in counts.items() if n > 1)
    raise RepeatedKey(
        f"repeated key in one JSON object: {repeated} (which value is meant cannot be told)"
    )


#: the JSON decoder of raw records, batch (JSON lines) and stream alike: ``json.loads``'s,
#: refusing an object with a repeated key (:class:`RepeatedKey`)
DECODER = json.JSONDecoder(object_pairs_hook=_unique_object)


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


#: json.loads' own scanner, called directly on a record's text: one JSON value with nothing
#: around it is the common case, and loads' per-call Python steps cost as much as the scan
_SCAN = json.scanner.make_scanner(DECODER)  # type: ignore[arg-type]  # typeshed


def decode_record(record: Mapping[str, object]) -> dict[str, object]:
    """The raw record inside one Kinesis event record."""
    kinesis = record.get("kinesis")
    data = kinesis.get("data") if isinstance(kinesis, Mapping) else None
    if type(data) is str:
        # the common case at C speed: strict base64 of UTF-8 text that is one JSON object
        # with nothing around it; anything else goes the general way below, which gives
        # the same value or the error
        try:
            text = binascii.a2b_base64(data, strict_mode=True).decode("utf-8")
            value, end = _SCAN(text, 0)
        except (ValueError, StopIteration, RecursionError):
            pass
        else:
            if end == len(text) and type(value) is dict:
                return value
    return _decode_record(kinesis)


def _decode_record(kinesis: object) -> dict[str, object]:
    if not isinstance(kinesis, Mapping) or not isinstance(kinesis.get("data"), str):
        raise DecodeError("event record has no kinesis.data")
    try:
        payload = base64.b64decode(str(kinesis["data"]), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"data is not valid base64: {exc}") from None
    try:
        value = DECODER.decode(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DecodeError(f"data is not UTF-8 text: {exc}") from None
    except RepeatedKey as exc:
        raise DecodeError(str(exc)) from None
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


_LOG_SINK: ContextVar[Callable[[str], None] | None] = ContextVar("fsgen_stream_log", default=None)


@contextmanager
def logs_to(sink: Callable[[str], None] | None) -> Iterator[None]:
    """Send the handler's log lines to ``sink`` (one JSON string per call) instead of stderr
    while the block runs: ``fsgen stream replay`` lists the failures itself and keeps these
    lines for ``--handler-log``."""
    token = _LOG_SINK.set(sink)
    try:
        yield
    finally:
        _LOG_SINK.reset(token)


def log(entry: Mapping[str, object]) -> None:
    """One JSON line per event, the shape CloudWatch Logs Insights queries well: on stderr, as
    Lambda sends it to CloudWatch, or to the sink of an enclosing :func:`logs_to`."""
    line = json.dumps(dict(entry), sort_keys=True)
    sink = _LOG_SINK.get()
    if sink is None:
        print(line, file=sys.stderr)
    else:
        sink(line)


__all__ = [
    "POISON",
    "RETRY",
    "DeadLetter",
    "DecodeError",
    "Failure",
    "StreamResult",
    "dead_letter_entry",
    "decode_record",
    "log",
    "logs_to",
    "sequence_number",
]
