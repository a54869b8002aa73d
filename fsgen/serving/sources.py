"""Record sources for the endpoint handler: the local online store in-process, or boto3's
sagemaker-featurestore-runtime client (AWS, or any compatible endpoint such as ``fsgen serve``).

Both answer ``batch_get_record(**params)`` in BatchGetRecord's response shape, so the generated
handler runs the same code on either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fsgen.config import ProjectConfig
from fsgen.runtime.endpoint import RecordSource
from fsgen.spec import ProjectSpec

if TYPE_CHECKING:
    from fsgen.store import LocalStore


class LocalRecordSource:
    """BatchGetRecord over :class:`fsgen.store.LocalStore`, in process.

    Values are encoded with each group's GroupRuntime exactly as ``fsgen serve`` encodes them
    on the wire. ``clock`` is the instant expiry is judged at (default: the store's clock).
    """

    def __init__(self, store: LocalStore, clock: Callable[[], float] | None = None) -> None:
        self.store = store
        self.clock = clock or store.clock

    def batch_get_record(self, **params: Any) -> dict[str, Any]:
        records: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        enabled = params.get("ExpirationTimeResponse") == "Enabled"
        now = self.clock()
        for ident in params.get("Identifiers") or []:
            group = str(ident.get("FeatureGroupName", ""))
            ids = [str(i) for i in ident.get("RecordIdentifiersValueAsString") or []]
            names = ident.get("FeatureNames") or None
            if group not in {g.name for g in self.store.spec.groups}:
                errors.extend(
                    {
                        "FeatureGroupName": group,
                        "RecordIdentifierValueAsString": i,
                        "ErrorCode": "ResourceNotFound",
                        "ErrorMessage": f"FeatureGroup {group} not found",
                    }
                    for i in ids
                )
                continue
            rt = self.store.runtime(group)
            found = self.store.batch_get(group, ids, now=now)
            # each record's own ExpiresAt, as stored at its write (SageMaker keeps it across
            # a TTL change), never EventTime + the TTL of the current definition
            expiry = self.store.expiry(group, ids) if enabled else [None] * len(ids)
            for record_id, record, expires in zip(ids, found, expiry, strict=True):
                if record is None:
                    continue
                row: dict[str, Any] = {
                    "FeatureGroupName": group,
                    "RecordIdentifierValueAsString": record_id,
                    "Record": rt.to_sagemaker(
                        {k: v for k, v in record.items() if names is None or k in names}
                    ),
                }
                if enabled and expires is not None:
                    # epoch seconds, not a datetime: exact, so a record exactly TTL old at
                    # ``now`` still counts here as in the store and in datasets
                    row["ExpiresAt"] = expires
                records.append(row)
        return {"Records": records, "Errors": errors, "UnprocessedIdentifiers": []}


def aws_record_source(config: ProjectConfig, endpoint_url: str | None = None) -> RecordSource:
    """boto3's featurestore-runtime client for the project's aws profile (region, endpoint)."""
    from fsgen.backends.aws import clients

    aws = config.aws
    url = endpoint_url or aws.runtime_endpoint_url or aws.endpoint_url
    _, runtime = clients(aws.region, url, url)
    source: RecordSource = runtime
    return source


def local_record_source(
    config: ProjectConfig, spec: ProjectSpec, clock: Callable[[], float] | None = None
) -> LocalRecordSource:
    """A source reading the project's local online store (opened here)."""
    from fsgen.store import LocalStore

    return LocalRecordSource(LocalStore.open(config, spec), clock)


__all__ = ["LocalRecordSource", "aws_record_source", "local_record_source"]
