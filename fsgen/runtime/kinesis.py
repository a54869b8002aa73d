"""The Kinesis -> Lambda path of generated stream handlers.

Each Kinesis record carries one raw record as base64-encoded JSON. It is decoded, validated
and transformed by the group's :class:`GroupRuntime` (the same code as batch ingestion) and
written on its own, so one bad record never blocks the others. Failures are logged as one JSON
line each and returned as ``batchItemFailures`` (Lambda's ReportBatchItemFailures contract),
so only failed records are retried. Standard library only: no pandas, no duckdb.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from fsgen.runtime.pipeline import GroupRuntime, RecordError, TransformError


class Writer(Protocol):
    def put_records(self, group: str, records: list[dict[str, object]]) -> object: ...


class DecodeError(ValueError):
    """A Kinesis record whose data is not base64-encoded JSON of one object."""


@dataclass(frozen=True)
class Failure:
    sequence_number: str
    field: str
    message: str


@dataclass
class StreamResult:
    group: str
    written: int = 0
    failures: list[Failure] = field(default_factory=list)

    def response(self) -> dict[str, list[dict[str, str]]]:
        """The Lambda response that retries exactly the failed records."""
        return {"batchItemFailures": [{"itemIdentifier": f.sequence_number}
                                      for f in self.failures]}


def decode_record(record: Mapping[str, object]) -> dict[str, object]:
    """The raw record inside one Kinesis event record."""
    kinesis = record.get("kinesis")
    if not isinstance(kinesis, Mapping) or not isinstance(kinesis.get("data"), str):
        raise DecodeError("event record has no kinesis.data")
    try:
        payload = base64.b64decode(str(kinesis["data"]), validate=True)
        value = json.loads(payload.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise DecodeError(f"data is not base64-encoded UTF-8: {exc}") from None
    except ValueError as exc:
        raise DecodeError(f"data is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise DecodeError(f"expected a JSON object, got {type(value).__name__}")
    return value


def sequence_number(record: Mapping[str, object], position: int) -> str:
    kinesis = record.get("kinesis")
    if isinstance(kinesis, Mapping) and isinstance(kinesis.get("sequenceNumber"), str):
        return str(kinesis["sequenceNumber"])
    return str(position)


def process_event(runtime: GroupRuntime, event: Mapping[str, object],
                  writer: Writer) -> StreamResult:
    """Decode, validate, transform and write each record of a Kinesis event."""
    result = StreamResult(group=runtime.name)
    records = event.get("Records")
    if not isinstance(records, list):
        raise DecodeError("event has no Records list")
    for position, item in enumerate(records, start=1):
        seq = sequence_number(item, position) if isinstance(item, Mapping) else str(position)
        try:
            if not isinstance(item, Mapping):
                raise DecodeError("event record is not an object")
            stored = runtime.process(decode_record(item))
            writer.put_records(runtime.name, [stored])
        except (RecordError, TransformError) as exc:
            result.failures.append(Failure(seq, exc.field, exc.message))
        except DecodeError as exc:
            result.failures.append(Failure(seq, "<record>", str(exc)))
        except Exception as exc:
            result.failures.append(Failure(seq, "<write>", f"{type(exc).__name__}: {exc}"))
        else:
            result.written += 1
    for failure in result.failures:
        log({"level": "error", "group": runtime.name, "sequenceNumber": failure.sequence_number,
             "field": failure.field, "message": failure.message})
    return result


def log(entry: Mapping[str, object]) -> None:
    """One JSON line per event, the shape CloudWatch Logs Insights queries well."""
    print(json.dumps(dict(entry), sort_keys=True), file=sys.stderr)
