"""Where replay and consume write: the local store (column blocks, one transaction per
Kinesis batch) or a PutRecord endpoint (``fsgen serve``, SageMaker)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fsgen.errors import StoreError
from fsgen.runtime.bulk import BlockResult
from fsgen.runtime.kinesis import RecordRejected
from fsgen.runtime.pipeline import GroupRuntime
from fsgen.runtime.writers import PutRecordWriter

if TYPE_CHECKING:
    from fsgen.store import LocalStore


class LocalStoreWriter:
    """The local store as a stream handler's writer: a batch's accepted records are committed
    in one chunk (offline Parquet + online upsert, atomically; see fsgen.store.local).

    Records the store refuses (an event time outside years 1..9999) raise
    :class:`RecordRejected`, so the handler dead-letters them instead of retrying forever."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store

    def put_records(self, group: str, records: list[dict[str, object]]) -> int:
        try:
            return self.store.put_records(group, records)
        except StoreError as exc:
            raise RecordRejected(str(exc)) from exc

    def put_block(self, runtime: GroupRuntime, block: BlockResult) -> None:
        """The block's columns straight into the store (``LocalStore.put_block``: one atomic
        chunk, no per-record dicts)."""
        try:
            self.store.put_block(runtime, block)
        except StoreError as exc:
            raise RecordRejected(str(exc)) from exc


def endpoint_writer(
    runtime: GroupRuntime, endpoint_url: str | None, region: str = "us-east-1"
) -> PutRecordWriter:
    """PutRecord against ``endpoint_url`` (``fsgen serve``) or, when None, AWS."""
    import boto3
    from botocore.config import Config

    from fsgen.runtime.local_aws import local_client_kwargs

    kwargs: dict[str, Any] = {
        "config": Config(retries={"mode": "standard", "max_attempts": 3}),
        **local_client_kwargs(endpoint_url, region),
    }
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    client = boto3.client("sagemaker-featurestore-runtime", **kwargs)
    return PutRecordWriter({runtime.name: runtime}, client=client)
