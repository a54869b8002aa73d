"""Writers that hand stored records to SageMaker Feature Store (PutRecord).

Standard library only: the boto3 client is passed in, or created on first use (boto3 is in
every AWS Lambda runtime). Endpoint overrides follow boto3's own environment variables
(``AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME``), so ``fsgen serve`` or moto work too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fsgen.runtime.pipeline import GroupRuntime


class PutRecordWriter:
    """``put_records(group, records)`` as one PutRecord call per record, in order.

    A failing call raises; records before it are written (PutRecord is idempotent for the
    online store: the same event time replaces the same value).
    """

    def __init__(
        self,
        runtimes: Mapping[str, GroupRuntime],
        client: Any = None,
        target_stores: list[str] | None = None,
    ) -> None:
        self.runtimes = dict(runtimes)
        self._client = client
        self.target_stores = target_stores

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3  # available in every Lambda runtime

            self._client = boto3.client("sagemaker-featurestore-runtime")
        return self._client

    def put_records(self, group: str, records: list[dict[str, object]]) -> int:
        for record in records:
            self.put_record(group, record)
        return len(records)

    def put_record(self, group: str, record: dict[str, object]) -> None:
        """One PutRecord call (the stream handler writes, retries and dead-letters record by
        record through this)."""
        request: dict[str, object] = {
            "FeatureGroupName": group,
            "Record": self.runtimes[group].to_sagemaker(record),
        }
        if self.target_stores:
            request["TargetStores"] = list(self.target_stores)
        self.client.put_record(**request)
