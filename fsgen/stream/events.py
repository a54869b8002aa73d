"""Kinesis event records as Lambda delivers them, and the stream handler to feed them to.

The handler is the generated module (``generated/groups/<group>/stream_handler.py``) when it
exists and matches the definitions, so a replay runs exactly the code a Lambda runs; otherwise
the same runtime function with the group's runtime bound from the definitions, with a note.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from fsgen.config import ProjectConfig
from fsgen.generated_imports import (
    STALE_IMPORT,
    generated_module_name,
    import_generated,
    missing,
)
from fsgen.runtime import kinesis
from fsgen.runtime.aggwrite import AggregationRuntime
from fsgen.runtime.kinesis import DEFAULT_RETRY, DeadLetter, RetryPolicy, StreamResult
from fsgen.runtime.pipeline import GroupRuntime
from fsgen.runtime.sinks import Sink
from fsgen.spec import ProjectSpec

REGION = "us-east-1"
ACCOUNT = "123456789012"
SHARD = "shardId-000000000000"


def stream_arn(stream: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:kinesis:{region}:{account}:stream/{stream}"


def event_record(
    data: bytes,
    sequence_number: str,
    partition_key: str,
    *,
    shard: str = SHARD,
    source_arn: str = "",
    arrival: float = 0.0,
) -> dict[str, object]:
    """One element of a Kinesis event's ``Records``, in Lambda's exact shape."""
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": sequence_number,
            "data": base64.b64encode(data).decode("ascii"),
            "approximateArrivalTimestamp": arrival,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard}:{sequence_number}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/fsgen-stream-handler",
        "awsRegion": REGION,
        "eventSourceARN": source_arn,
    }


def from_get_records(
    records: list[Mapping[str, object]], shard: str, source_arn: str
) -> dict[str, object]:
    """The Lambda event for a GetRecords response's ``Records``."""
    out = []
    for r in records:
        arrival = r.get("ApproximateArrivalTimestamp")
        out.append(
            event_record(
                bytes(r["Data"]),  # type: ignore[call-overload]
                str(r["SequenceNumber"]),
                str(r.get("PartitionKey", "")),
                shard=shard,
                source_arn=source_arn,
                arrival=arrival.timestamp() if isinstance(arrival, datetime) else 0.0,
            )
        )
    return {"Records": out}


Process = Callable[..., StreamResult]


@dataclass(frozen=True)
class Handler:
    """What replay and consume invoke: ``process(event, sink, dead_letter)``."""

    group: str
    runtime: GroupRuntime
    note: str
    _process: Process
    aggregations: bool = False
    """an aggregation group: its events need sequence numbers that increase across replays"""

    def process(
        self,
        event: Mapping[str, object],
        sink: Sink,
        dead_letter: DeadLetter | None,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> StreamResult:
        return self._process(event, sink, dead_letter, retry=retry)


def load_handler(config: ProjectConfig, spec: ProjectSpec, group: str) -> Handler:
    """The generated stream handler of ``group`` if it is current, else the runtime's."""
    from fsgen.bind import aggregation_runtime, group_runtime

    gspec = spec.group(group)
    bound = group_runtime(gspec)
    job = aggregation_runtime(gspec) if gspec.aggregations else bound
    agg = bool(gspec.aggregations)

    def fallback(
        event: Mapping[str, object],
        sink: Sink,
        dead_letter: DeadLetter | None,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> StreamResult:
        return kinesis.process_event(job, event, sink, dead_letter, retry=retry)

    snake = re.sub(r"[^0-9a-zA-Z_]", "_", group).lower()
    snake = f"_{snake}" if snake[:1].isdigit() else snake
    name = generated_module_name(config, f"groups.{snake}.stream_handler")
    try:
        module = import_generated(config, f"groups.{snake}.stream_handler")
    except STALE_IMPORT as exc:  # not generated yet, or it names a function renamed since
        found = not (isinstance(exc, ImportError) and missing(exc, name))
        return Handler(
            group,
            bound,
            f"{name} is stale (run 'fsgen generate'); using the definitions directly"
            if found
            else "generated stream handler not found; using the definitions directly",
            fallback,
            agg,
        )
    runtime = getattr(module, "RUNTIME", None)
    # an aggregation's hop, windows, lateness or function live in AGGREGATIONS, not RUNTIME
    declared = job.definitions if isinstance(job, AggregationRuntime) else None
    generated = getattr(getattr(module, "AGGREGATIONS", None), "definitions", None)
    if (
        not isinstance(runtime, GroupRuntime)
        or _shape(runtime) != _shape(bound)
        or generated != declared
        or not callable(getattr(module, "process_event", None))
    ):
        return Handler(
            group,
            bound,
            f"{name} is stale (run 'fsgen generate'); using the definitions directly",
            fallback,
            agg,
        )
    path = f"{config.generated_dir}/groups/{snake}/stream_handler.py"
    note = f"running {name} ({path}, up to date with the definitions)"
    return Handler(group, runtime, note, module.process_event, agg)


def _shape(rt: GroupRuntime) -> object:
    """A runtime with each function replaced by its name and code: equal when the generated
    module and the definitions agree, even if the definitions module was imported twice."""
    import dataclasses

    def fn_key(fn: Callable[..., object]) -> tuple[str, str, bytes]:
        code = getattr(fn, "__code__", None)
        return (
            getattr(fn, "__module__", ""),
            getattr(fn, "__qualname__", ""),
            code.co_code if code is not None else b"",
        )

    features = tuple(
        dataclasses.replace(f, fn=fn_key(f.fn))  # type: ignore[arg-type]
        for f in rt.features
    )
    return dataclasses.replace(rt, features=features)
