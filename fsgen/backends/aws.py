"""The AWS backend: SageMaker Feature Store through boto3.

The live account is the source of truth: ``deployed`` reads ListFeatureGroups,
DescribeFeatureGroup, ListTags and DescribeFeatureMetadata every time, and fsgen marks the
groups it manages with tags (``fsgen:managed-by``, ``fsgen:project``) carrying the definition's
schema, logic and metadata hashes; each feature's logic hash is a feature parameter
(``fsgen:logic-hash``). Groups without fsgen's tags are never destroyed or changed.

Throttling and transient errors are retried by botocore's ``standard`` retry mode (exponential
back-off with jitter, ``max_attempts`` from ``[tool.fsgen.aws]`` or 8). ``endpoint_url`` points
both clients at another endpoint, such as ``fsgen serve``. Apply history and the apply lock of
this backend are kept on the machine running fsgen, in ``<store>/aws/``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fsgen.backends.base import BackendError, ControlPlaneBackend
from fsgen.config import ProjectConfig
from fsgen.plan.model import GroupState

if TYPE_CHECKING:
    from pathlib import Path

MAX_ATTEMPTS = 8


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def clients(
    region: str,
    endpoint_url: str | None = None,
    runtime_endpoint_url: str | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> tuple[Any, Any]:
    """(sagemaker, sagemaker-featurestore-runtime) boto3 clients with retrying on throttling."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=5,
        read_timeout=60,
    )
    from fsgen.runtime.local_aws import local_client_kwargs

    session = boto3.session.Session(region_name=region)
    control = session.client(
        "sagemaker",
        endpoint_url=endpoint_url,
        config=config,
        **local_client_kwargs(endpoint_url, region),
    )
    runtime = session.client(
        "sagemaker-featurestore-runtime",
        endpoint_url=runtime_endpoint_url or endpoint_url,
        config=config,
        **local_client_kwargs(runtime_endpoint_url or endpoint_url, region),
    )
    return control, runtime


class AwsBackend(ControlPlaneBackend):
    name = "aws"
    poll_interval = 1.0
    max_poll_interval = 10.0

    def __init__(
        self,
        control: Any,
        runtime: Any,
        state_dir: Path,
        *,
        s3: Any = None,
        glue: Any = None,
        glue_database: str = "sagemaker_featurestore",
    ) -> None:
        self.control = control
        self.runtime = runtime
        self.state_dir = state_dir
        self.s3 = s3
        self.glue = glue
        self.glue_database = glue_database

    @classmethod
    def from_config(cls, config: ProjectConfig) -> AwsBackend:
        aws = config.aws
        control, runtime = clients(aws.region, aws.endpoint_url, aws.runtime_endpoint_url)
        s3 = glue = None
        if not aws.endpoint_url:  # a stand-in endpoint (fsgen serve) has no S3 or Glue
            import boto3

            session = boto3.session.Session(region_name=aws.region)
            s3, glue = session.client("s3"), session.client("glue")
        backend = cls(
            control,
            runtime,
            config.store_path / "aws",
            s3=s3,
            glue=glue,
            glue_database=aws.glue_database,
        )
        if aws.endpoint_url:  # a local endpoint answers at once; poll it briskly
            backend.poll_interval, backend.max_poll_interval = 0.02, 0.5
        return backend

    def preflight(self, desired: Sequence[GroupState]) -> list[str]:
        """Warnings about what CreateFeatureGroup needs outside SageMaker: the offline store's
        S3 bucket, and the Glue database its table goes into."""
        notes: list[str] = []
        buckets = sorted(
            {
                urlsplit(s.offline_s3_uri).netloc
                for s in desired
                if s.offline_enabled and s.offline_s3_uri
            }
        )
        if self.s3 is not None:
            for bucket in buckets:
                try:
                    _invoke(self.s3, "HeadBucket", {"Bucket": bucket})
                except BackendError as exc:
                    notes.append(
                        f"offline store bucket s3://{bucket} is not reachable "
                        f"({exc.code}); CreateFeatureGroup will fail until it exists"
                    )
        wants_glue = any(
            s.offline_enabled and not s.offline_disable_glue_table_creation for s in desired
        )
        if self.glue is not None and wants_glue:
            try:
                _invoke(self.glue, "GetDatabase", {"Name": self.glue_database})
            except BackendError as exc:
                notes.append(
                    f"Glue database {self.glue_database!r} is not reachable "
                    f"({exc.code}); offline store tables are registered there"
                )
        return notes

    def call(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        return _invoke(self.control, operation, request)

    # -- runtime: ingestion and serving ----------------------------------------------------
    def put_record(
        self,
        group: str,
        record: Sequence[dict[str, Any]],
        target_stores: Sequence[str] | None = None,
    ) -> None:
        request: dict[str, Any] = {"FeatureGroupName": group, "Record": list(record)}
        if target_stores:
            request["TargetStores"] = list(target_stores)
        _invoke(self.runtime, "PutRecord", request)

    def batch_write_record(self, entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """BatchWriteRecord; returns the entries that failed, with their error codes."""
        response = _invoke(self.runtime, "BatchWriteRecord", {"Entries": list(entries)})
        return [*response.get("Errors", []), *response.get("UnprocessedEntries", [])]

    def get_record(
        self, group: str, record_id: str, feature_names: Sequence[str] | None = None
    ) -> list[dict[str, Any]] | None:
        request: dict[str, Any] = {
            "FeatureGroupName": group,
            "RecordIdentifierValueAsString": record_id,
        }
        if feature_names:
            request["FeatureNames"] = list(feature_names)
        response = _invoke(self.runtime, "GetRecord", request)
        return response.get("Record") or None

    def batch_get_record(self, identifiers: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return _invoke(self.runtime, "BatchGetRecord", {"Identifiers": list(identifiers)})

    def delete_record(
        self, group: str, record_id: str, event_time: str, hard: bool = False
    ) -> None:
        _invoke(
            self.runtime,
            "DeleteRecord",
            {
                "FeatureGroupName": group,
                "RecordIdentifierValueAsString": record_id,
                "EventTime": event_time,
                "DeletionMode": "HardDelete" if hard else "SoftDelete",
            },
        )


def _invoke(client: Any, operation: str, request: dict[str, Any]) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = getattr(client, _snake(operation))(**request)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise BackendError(
            operation, str(error.get("Code", "Unknown")), str(error.get("Message", exc))
        ) from None
    except BotoCoreError as exc:
        raise BackendError(operation, type(exc).__name__, str(exc)) from None
    response.pop("ResponseMetadata", None)
    return dict(response)
