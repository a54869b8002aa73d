"""``fsgen stream consume GROUP --stream NAME``: poll a Kinesis stream with boto3 and invoke the
stream handler on each batch, as a Lambda event source mapping would.

Per shard: GetShardIterator (AFTER_SEQUENCE_NUMBER the shard's checkpoint, else
TRIM_HORIZON), then GetRecords in a loop. A batch is handed to the handler as a Lambda event;
the shard's checkpoint moves to the batch's last sequence number only after the handler has
written or dead-lettered every record of it. When the handler reports ``batchItemFailures``
the checkpoint moves to just before the lowest failed record and the shard is read again from
there after a back-off (Lambda's ReportBatchItemFailures behaviour), so a retryable failure
delays records but never drops them. A kill at any moment repeats at most the batch in flight,
which the handler writes idempotently.

Into the local store (a sink with ``coalesce``) the written records of consecutive batches,
across polls and shards, are committed together, as ``stream replay`` does: once
``commit_rows`` records were handled, ``commit_seconds`` after the first held one, when a poll
finds nothing, and when the consumer stops. The checkpoints those batches earned are saved
right after that commit (one atomic write), never before, so a kill repeats at most the
records since the last commit, which the handler writes idempotently; a failed commit writes
nothing and moves no checkpoint. ``commit_seconds=0`` commits every batch on its own.

Shards are read parent first: a child shard (after a reshard) is read once its parent is
closed and fully handled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fsgen.runtime.kinesis import DeadLetter
from fsgen.runtime.sinks import Sink
from fsgen.stream.checkpoints import Checkpoints
from fsgen.stream.events import Handler, from_get_records

COMMIT_ROWS = 100_000
"""records a consumer into the local store commits together at most (replay's chunk)"""
COMMIT_SECONDS = 1.0
"""how long a handled record waits for its commit at most (cf. Lambda's batching window)"""


@dataclass
class ConsumeResult:
    group: str
    stream: str
    batches: int = 0
    read: int = 0
    written: int = 0
    dead_lettered: int = 0
    retried: int = 0
    """records reported in batchItemFailures and read again"""
    failed: int = 0
    """records still failing when the consumer stopped: not written, not dead-lettered, and
    read again by the next run (the checkpoint stays before them)"""
    stopped: str = ""
    commits: int = 0
    """store commits (with coalescing: one per ``commit_rows`` / ``commit_seconds``)"""

    def to_json(self) -> dict[str, object]:
        return {
            "group": self.group,
            "stream": self.stream,
            "batches": self.batches,
            "read": self.read,
            "written": self.written,
            "dead_lettered": self.dead_lettered,
            "retried": self.retried,
            "failed": self.failed,
            "stopped": self.stopped,
            "commits": self.commits,
        }

    def summary(self) -> str:
        return (
            f"{self.group} <- {self.stream}: read {self.read:,}, written {self.written:,}, "
            f"dead-lettered {self.dead_lettered:,}, retried {self.retried:,}, "
            f"failed {self.failed:,} "
            f"({self.batches:,} {_batches(self.batches)}; stopped: {self.stopped})"
        )


@dataclass
class _Shard:
    shard_id: str
    parent: str | None
    iterator: str | None = None
    closed: bool = False
    failures: int = 0
    not_before: float = 0.0
    failing: int = 0
    """records of the shard's last batch that failed and wait for a retry"""


class Consumer:
    def __init__(
        self,
        handler: Handler,
        client: Any,
        stream: str,
        sink: Sink,
        dead_letter: DeadLetter | None,
        checkpoints: Checkpoints,
        *,
        batch_size: int = 100,
        poll_interval: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_batch: Callable[[ConsumeResult], None] | None = None,
        commit_rows: int = COMMIT_ROWS,
        commit_seconds: float = COMMIT_SECONDS,
        on_records: Callable[[list[Mapping[str, Any]]], None] | None = None,
    ) -> None:
        """``on_records``, when given, sees each batch's GetRecords records once the handler
        has processed them (``fsgen stream consume`` notes the entities an aggregation group's
        batches wrote, to name those whose states a later SoftDelete hides)."""
        if commit_rows < 1 or commit_seconds < 0:
            raise ValueError("commit rows must be at least 1 and commit seconds at least 0")
        self.handler = handler
        self.client = client
        self.stream = stream
        self.sink = sink
        self.dead_letter = dead_letter
        self.checkpoints = checkpoints
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.clock = clock
        self.sleep = sleep
        self.on_batch = on_batch
        self.on_records = on_records
        self.arn = ""
        self.shards: dict[str, _Shard] = {}
        self.commit_rows = commit_rows
        self.commit_seconds = commit_seconds
        self.coalescing = commit_seconds > 0 and hasattr(sink, "coalesce")
        self._pending: dict[str, str] = {}
        """per shard: the checkpoint the batches held since the last commit earned"""
        self._held_rows = 0
        self._held_since = 0.0

    # ---------------------------------------------------------------------- shards

    def _discover(self) -> None:
        summary = self._describe()
        self.arn = summary["StreamDescriptionSummary"]["StreamARN"]
        kwargs: dict[str, Any] = {"StreamName": self.stream}
        while True:
            page = self.client.list_shards(**kwargs)
            for s in page.get("Shards", []):
                sid = s["ShardId"]
                if sid not in self.shards:
                    self.shards[sid] = _Shard(sid, s.get("ParentShardId"))
            token = page.get("NextToken")
            if not token:
                return
            kwargs = {"NextToken": token}

    def _describe(self) -> Any:
        """DescribeStreamSummary; a stream that does not exist is NotFound naming where it was
        looked for (fsgen never creates a stream: ``fsgen apply`` makes feature groups)."""
        from botocore.exceptions import ClientError

        try:
            return self.client.describe_stream_summary(StreamName=self.stream)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
        from fsgen.errors import NotFound

        meta = self.client.meta
        raise NotFound(
            f"Kinesis stream {self.stream!r} does not exist at {meta.endpoint_url} "
            f"(region {meta.region_name}); fsgen reads a stream, it does not create one: "
            "check --stream, --region and --endpoint-url, or create the stream"
        ) from None

    def _ready(self, shard: _Shard) -> bool:
        parent = self.shards.get(shard.parent) if shard.parent else None
        return not shard.closed and (parent is None or parent.closed)

    def _iterator(self, shard: _Shard) -> str:
        if shard.iterator is None:
            seq = self._pending.get(shard.shard_id) or self.checkpoints.get(shard.shard_id)
            kwargs: dict[str, Any] = {"StreamName": self.stream, "ShardId": shard.shard_id}
            if seq is None:
                kwargs["ShardIteratorType"] = "TRIM_HORIZON"
            else:
                kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seq)
            shard.iterator = self.client.get_shard_iterator(**kwargs)["ShardIterator"]
        return shard.iterator

    # ---------------------------------------------------------------------- loop

    def run(
        self, max_records: int | None = None, idle_timeout: float | None = None
    ) -> ConsumeResult:
        """Consume until ``max_records`` records were handled or nothing arrived for
        ``idle_timeout`` seconds (both None: until interrupted)."""
        result = ConsumeResult(self.handler.group, self.stream)
        if self.coalescing:
            self.sink.coalesce = self.commit_rows  # type: ignore[attr-defined]
        try:
            self._run(result, max_records, idle_timeout)
            self._commit(result)
            result.failed = sum(s.failing for s in self.shards.values())
        except BaseException:
            if self.coalescing:  # nothing since the last commit is written or checkpointed
                self.sink.discard()  # type: ignore[attr-defined]
            raise
        finally:
            if self.coalescing:
                self.sink.coalesce = 0  # type: ignore[attr-defined]
        return result

    def _run(
        self, result: ConsumeResult, max_records: int | None, idle_timeout: float | None
    ) -> None:
        self._discover()
        last_data = self.clock()
        while True:
            got = 0
            for shard in list(self.shards.values()):
                if max_records is not None and result.read >= max_records:
                    result.stopped = f"max records ({max_records})"
                    return
                if not self._ready(shard) or self.clock() < shard.not_before:
                    continue
                limit = (
                    self.batch_size
                    if max_records is None
                    else min(self.batch_size, max_records - result.read)
                )
                got += self._poll(shard, limit, result)
            if self._pending and (
                not got
                or self._held_rows >= self.commit_rows
                or self.clock() - self._held_since >= self.commit_seconds
            ):
                self._commit(result)
            if got:
                last_data = self.clock()
            elif idle_timeout is not None and self.clock() - last_data >= idle_timeout:
                result.stopped = f"idle for {idle_timeout:g}s"
                return
            if not got:
                if all(s.closed for s in self.shards.values()):
                    self._discover()  # a reshard adds shards; none left means the end
                    if all(s.closed for s in self.shards.values()):
                        result.stopped = "every shard is closed"
                        return
                self.sleep(self.poll_interval)

    def _handled(self, shard: _Shard, sequence_number: str, records: int) -> None:
        """Every record of ``shard`` up to ``sequence_number`` is written (or held for the
        next commit) or dead-lettered."""
        if not self.coalescing:
            self.checkpoints.save(shard.shard_id, sequence_number)
            return
        if not self._pending:
            self._held_since = self.clock()
        self._pending[shard.shard_id] = sequence_number
        self._held_rows += records

    def _commit(self, result: ConsumeResult) -> None:
        """Commit the held records, then (and only then) save the checkpoints they earned."""
        if not self.coalescing:
            return
        self.sink.flush()  # type: ignore[attr-defined]
        if self._pending:
            self.checkpoints.save_all(self._pending)
            result.commits += 1
        self._pending = {}
        self._held_rows = 0

    def _poll(self, shard: _Shard, limit: int, result: ConsumeResult) -> int:
        response = self.client.get_records(ShardIterator=self._iterator(shard), Limit=limit)
        records = response.get("Records", [])
        next_iterator = response.get("NextShardIterator")
        if not records:
            shard.iterator = next_iterator
            shard.closed = next_iterator is None
            return 0
        event = from_get_records(records, shard.shard_id, self.arn)
        outcome = self.handler.process(event, self.sink, self.dead_letter)
        if self.on_records is not None:
            self.on_records(records)
        failed = {f["itemIdentifier"] for f in outcome.response()["batchItemFailures"]}
        sequence = [str(r["SequenceNumber"]) for r in records]
        result.batches += 1
        if not self.coalescing:
            result.commits += 1
        if not failed:
            self._handled(shard, sequence[-1], len(records))
            shard.iterator = next_iterator
            shard.closed = next_iterator is None
            shard.failures = 0
            shard.failing = 0
            handled = len(records)
        else:
            first = min(sequence.index(s) for s in failed)
            if first > 0:
                self._handled(shard, sequence[first - 1], first)
            shard.iterator = None  # read again from the checkpoint
            shard.failures += 1
            shard.not_before = self.clock() + min(5.0, 0.1 * 2**shard.failures)
            handled = first
            result.retried += len(records) - first
            shard.failing = len(records) - first
        result.read += handled
        handled_set = set(sequence[:handled])
        result.dead_lettered += sum(
            1 for f in outcome.failures if f.dead_lettered and f.sequence_number in handled_set
        )
        result.written += handled - sum(
            1 for f in outcome.failures if f.sequence_number in handled_set
        )
        if self.on_batch is not None:
            self.on_batch(result)
        return len(records)


def kinesis_client(endpoint_url: str | None, region: str | None = None) -> Any:
    import boto3
    from botocore.config import Config

    from fsgen.runtime.local_aws import local_client_kwargs

    kwargs: dict[str, Any] = {
        "config": Config(retries={"mode": "standard", "max_attempts": 5}),
        **local_client_kwargs(endpoint_url, region),
    }
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    return boto3.client("kinesis", **kwargs)


def _batches(n: int) -> str:
    return "batch" if n == 1 else "batches"
