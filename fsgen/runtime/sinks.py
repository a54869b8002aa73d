"""The sink protocol: where stored records go, for the batch pipeline and the stream handler.

A sink takes the accepted records of a processed column block in two steps:

- ``prepare(runtime, block)`` lays them out in the sink's own form (Arrow tables for the
  local store, SageMaker records for PutRecord, JSON lines for a file). It is pure, so the
  batch pipeline runs it in its worker processes;
- ``write(runtime, prepared)`` stores them, in order. It stores all of them or raises; a sink
  that writes record by record raises :class:`PartialWrite` saying how many it stored first.

``close()`` finishes (waits for background commits, re-raises their failure). Each backend
provides one (``fsgen.backends``: the local store's, PutRecord for AWS); this module holds the
ones the runtime itself needs: JSON lines (``--output``), PutRecord (what a Lambda writes
with), and :class:`RecordSink`, the base for a sink that takes record dicts.

Standard library only; boto3 is created on first use (it is in every Lambda runtime).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fsgen.runtime.bulk import BlockResult
from fsgen.runtime.pipeline import GroupRuntime

if TYPE_CHECKING:
    from fsgen.runtime.aggwrite import AggregationRuntime, History, Stored, Writes

Record = dict[str, object]

MAX_ATTEMPTS = 8
"""botocore attempts per PutRecord (standard retry mode: throttling and 5xx, with back-off)"""


class Sink(Protocol):
    """Where stored records go (see the module docstring)."""

    def prepare(self, runtime: GroupRuntime, block: BlockResult) -> Any: ...

    def write(self, runtime: GroupRuntime, prepared: Any) -> None: ...

    def close(self) -> None: ...


class RecordRejected(ValueError):
    """A sink refuses these records for what they are (never retried: dead-lettered)."""


MAX_VALUE_CHARS = 358_400
"""the longest ValueAsString (and ValueAsStringList element) SageMaker's PutRecord takes"""


def check_value_sizes(runtime: GroupRuntime, columns: Mapping[str, Sequence[object]]) -> None:
    """Raise RecordRejected when a String value of ``columns`` is longer than SageMaker's
    PutRecord takes, so the record is a reject of its own (found by the pipeline row by row)
    rather than a failed PutRecord that stops the run part-way, or a local record that
    could never be written to SageMaker."""
    for name, kind, collection, _ in runtime.columns:
        values = columns.get(name)
        if kind != "String" or not values:
            continue
        # a String column holds str (a collection: lists of str) or None
        present: Iterable[Any] = filter(None, values)
        items: Iterable[Any] = chain.from_iterable(present) if collection else present
        try:
            longest = max(map(len, filter(None, items)), default=0)
        except TypeError:  # a value of another kind: not this check's to judge
            flat = chain.from_iterable(v for v in values if isinstance(v, list | tuple))
            longest = max(
                (len(v) for v in (flat if collection else values) if isinstance(v, str)), default=0
            )
        if longest > MAX_VALUE_CHARS:
            raise RecordRejected(
                f"{runtime.name}: feature {name} holds a value of {longest:,} characters; "
                f"SageMaker's PutRecord takes at most {MAX_VALUE_CHARS:,} per value"
            )


class PartialWrite(Exception):
    """``write`` stored the first ``written`` records, then record ``written`` failed with
    ``error`` (the rest were not tried). The batch pipeline raises it again with ``written``
    the run's total, every earlier block's records included."""

    def __init__(self, written: int, error: BaseException) -> None:
        super().__init__(f"{written} record(s) written, then {type(error).__name__}: {error}")
        self.written = written
        self.error = error


def stored_records(runtime: GroupRuntime, block: BlockResult) -> list[Record]:
    """The accepted rows of a block as stored-record dicts (what ``GroupRuntime.process``
    returns for each)."""
    names = [c[0] for c in runtime.columns]
    columns = [block.columns[n] for n in names]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def block_rows(block: BlockResult, start: int, stop: int) -> BlockResult:
    """Accepted rows ``start:stop`` of a block as a block of their own."""
    return BlockResult(
        {n: v[start:stop] for n, v in block.columns.items()},
        block.rows[start:stop],
        block.seconds[start:stop],
    )


class RecordSink:
    """Base of a sink that takes stored records as dicts: subclasses implement
    ``put_records(group, records)`` (all of them, or raise)."""

    def prepare(self, runtime: GroupRuntime, block: BlockResult) -> list[Record]:
        return stored_records(runtime, block)

    def write(self, runtime: GroupRuntime, prepared: list[Record]) -> None:
        self.put_records(runtime.name, prepared)

    def put_records(self, group: str, records: list[Record]) -> object:
        raise NotImplementedError

    def close(self) -> None:
        return None


class JsonlSink:
    """Stored records as JSON lines (keys sorted) in one file (``--output``); the file is
    created empty when the sink is opened."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("", encoding="utf-8")

    def prepare(self, runtime: GroupRuntime, block: BlockResult) -> str:
        return "".join(
            json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n"
            for r in stored_records(runtime, block)
        )

    def write(self, runtime: GroupRuntime, prepared: str) -> None:
        with self.path.open("a", encoding="utf-8", newline="\n") as fh:
            fh.write(prepared)

    # aggregation groups: event rows, then the states rebuilt from the run's events

    def write_events(self, art: AggregationRuntime, events: BlockResult) -> None:
        self.write(art.group, self.prepare(art.group, events))

    def rebuild_states(
        self,
        art: AggregationRuntime,
        ids: Sequence[str],
        step: Callable[[History | None], BlockResult],
    ) -> int:
        states = step(None)
        self.write(art.group, self.prepare(art.group, states))
        return len(states.rows)

    def close(self) -> None:
        return None


def featurestore_client(
    endpoint_url: str | None = None,
    region: str | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> Any:
    """A sagemaker-featurestore-runtime client with botocore's retries set explicitly
    (standard mode: throttling, 5xx and connection errors, exponential back-off with jitter).
    Without ``endpoint_url`` boto3's own configuration applies
    (``AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME`` included)."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=5,
        read_timeout=60,
    )
    from fsgen.runtime.local_aws import local_client_kwargs

    kwargs: dict[str, Any] = {
        "config": config,
        **local_client_kwargs(endpoint_url, region, service="sagemaker-featurestore-runtime"),
    }
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    return boto3.client("sagemaker-featurestore-runtime", **kwargs)


class PutRecordSink:
    """SageMaker's PutRecord, one call per record in order (records of one block are
    prepared -- encoded as ``Record`` lists -- in a batch, where the pipeline's workers run).

    A failing call raises :class:`PartialWrite` naming how many records of the block were
    stored before it; retrying them is harmless (PutRecord of the same record and event time
    changes nothing visible)."""

    def __init__(
        self,
        runtimes: Mapping[str, GroupRuntime] | None = None,
        client: Any = None,
        target_stores: Sequence[str] | None = None,
    ) -> None:
        self.runtimes = dict(runtimes or {})
        self._client = client
        self.target_stores = list(target_stores) if target_stores else None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = featurestore_client()
        return self._client

    def prepare(self, runtime: GroupRuntime, block: BlockResult) -> list[list[dict[str, object]]]:
        check_value_sizes(runtime, block.columns)
        records = [runtime.to_sagemaker(r) for r in stored_records(runtime, block)]
        for record in records:
            try:
                json.dumps(record, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError as exc:  # a lone surrogate: no request can carry it
                raise RecordRejected(f"{runtime.name}: a value is not valid text: {exc}") from None
        return records

    def write(self, runtime: GroupRuntime, prepared: list[list[dict[str, object]]]) -> None:
        for i, record in enumerate(prepared):
            request: dict[str, object] = {"FeatureGroupName": runtime.name, "Record": record}
            if self.target_stores:
                request["TargetStores"] = list(self.target_stores)
            try:
                self.client.put_record(**request)
            except Exception as exc:
                raise PartialWrite(i, exc) from exc

    # ------------------------------------------------------------ aggregation groups
    # (fsgen.runtime.aggwrite.AggregationSink): event rows go to the offline store only, state
    # records to the online store only (PutRecord TargetStores)

    def update_states(
        self, art: AggregationRuntime, ids: Sequence[str], step: Callable[[Stored], Writes]
    ) -> Writes:
        """BatchGetRecord the states of ``ids``, run ``step``, PutRecord its event rows
        (OfflineStore) then its states (OnlineStore). A retry after a failure part-way is
        harmless: event rows are written again identically, applied events are replays."""
        writes = step(self.load_states(art, ids))
        self.write_events(art, writes.events)
        self._put(art.group, writes.states, ["OnlineStore"])
        return writes

    def write_events(self, art: AggregationRuntime, events: BlockResult) -> None:
        self._put(art.group, events, ["OfflineStore"])

    def rebuild_states(
        self,
        art: AggregationRuntime,
        ids: Sequence[str],
        step: Callable[[History | None], BlockResult],
    ) -> int:
        """The offline history is not readable through PutRecord's API: ``step`` rebuilds
        from the run's own events."""
        states = step(None)
        self._put(art.group, states, ["OnlineStore"])
        return len(states.rows)

    def load_states(self, art: AggregationRuntime, ids: Sequence[str]) -> dict[str, Record]:
        rt = art.group
        names = [rt.event_time, *art.state_columns]
        out: dict[str, Record] = {}
        for start in range(0, len(ids), 100):
            pending = list(ids[start : start + 100])
            while pending:
                response = self.client.batch_get_record(
                    Identifiers=[
                        {
                            "FeatureGroupName": rt.name,
                            "RecordIdentifiersValueAsString": pending,
                            "FeatureNames": names,
                        }
                    ]
                )
                for found in response.get("Records", []):
                    out[str(found["RecordIdentifierValueAsString"])] = rt.from_sagemaker(
                        found["Record"]
                    )
                errors = response.get("Errors") or []
                if errors:
                    first = errors[0]
                    raise RuntimeError(
                        f"BatchGetRecord {rt.name}: {first.get('ErrorCode')}: "
                        f"{first.get('ErrorMessage')}"
                    )
                pending = [
                    str(i)
                    for u in response.get("UnprocessedIdentifiers") or []
                    for i in u.get("RecordIdentifiersValueAsString", [])
                ]
        return out

    def _put(self, rt: GroupRuntime, block: BlockResult, stores: list[str]) -> None:
        if not block.rows:
            return
        saved, self.target_stores = self.target_stores, stores
        try:
            self.write(rt, self.prepare(rt, block))
        finally:
            self.target_stores = saved

    def put_records(self, group: str, records: list[Record]) -> int:
        """Stored record dicts of a group this sink knows (``runtimes``)."""
        runtime = self.runtimes[group]
        self.write(runtime, [runtime.to_sagemaker(r) for r in records])
        return len(records)

    def close(self) -> None:
        return None


__all__ = [
    "MAX_VALUE_CHARS",
    "JsonlSink",
    "PartialWrite",
    "PutRecordSink",
    "Record",
    "RecordRejected",
    "RecordSink",
    "Sink",
    "block_rows",
    "check_value_sizes",
    "featurestore_client",
    "stored_records",
]
