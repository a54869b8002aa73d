"""The AWS backend: SageMaker Feature Store through boto3; its control plane
(:class:`AwsBackend`: sagemaker) and its data plane (:class:`AwsDataPlane`:
sagemaker-featurestore-runtime).

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

from fsgen.backends.base import BackendError, ControlPlaneBackend, DeleteOutcome
from fsgen.config import ProjectConfig
from fsgen.plan.model import GroupState
from fsgen.runtime.sinks import PartialWrite as PartialWriteError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from fsgen.runtime.endpoint import RecordSource
    from fsgen.runtime.ingest import IngestResult
    from fsgen.runtime.pipeline import GroupRuntime
    from fsgen.runtime.sinks import Sink
    from fsgen.spec import ProjectSpec

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


def client_error(exc: BaseException, operation: str) -> tuple[str, str]:
    """(code, message) of a botocore ClientError. An endpoint that is no AWS service for the
    operation (a moto server without featurestore-runtime, a proxy, a wrong ``endpoint_url``)
    answers with an HTML page, which botocore puts in the message whole: said so instead."""
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    error = response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    message = str(error.get("Message", exc))
    if re.match(r"\s*<(!doctype|html)", message, re.IGNORECASE):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", code)
        title = re.search(r"<title>(.*?)</title>", message, re.IGNORECASE | re.DOTALL)
        page = f" ({title.group(1).strip()})" if title else ""
        return (
            f"HTTP {status}",
            f"the endpoint answered with a web page{page}, not an AWS error: it does not "
            f"serve {operation} (check endpoint_url in [tool.fsgen.aws])",
        )
    return code, message


def _invoke(client: Any, operation: str, request: dict[str, Any]) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = getattr(client, _snake(operation))(**request)
    except ClientError as exc:
        raise BackendError(operation, *client_error(exc, operation)) from None
    except BotoCoreError as exc:
        raise BackendError(operation, type(exc).__name__, str(exc)) from None
    response.pop("ResponseMetadata", None)
    return dict(response)


class AwsDataPlane:
    """SageMaker Feature Store's data plane: PutRecord (the batch pipeline's and the stream
    handler's sink), GetRecord, DeleteRecord, BatchGetRecord, through the featurestore-runtime
    client of :func:`clients` (botocore's standard retries, set explicitly). Runs are audited
    in the local audit trail with backend ``aws``."""

    name = "aws"

    def __init__(self, config: ProjectConfig, spec: ProjectSpec, client: Any) -> None:
        self.config = config
        self.spec = spec
        self.client = client
        self._runtimes: dict[str, GroupRuntime] = {}
        self._expired: dict[tuple[str, str], float] = {}
        """(group, record id) -> ExpiresAt of a record GetRecord returned but ``now`` judged
        expired (see :meth:`missing_reason`)"""

    @classmethod
    def open(
        cls, config: ProjectConfig, spec: ProjectSpec, endpoint_url: str | None = None
    ) -> AwsDataPlane:
        aws = config.aws
        url = endpoint_url or aws.runtime_endpoint_url or aws.endpoint_url
        _, runtime = clients(aws.region, url, url)
        return cls(config, spec, runtime)

    def runtime(self, group: str) -> GroupRuntime:
        if group not in self._runtimes:
            from fsgen.bind import group_runtime

            self._runtimes[group] = group_runtime(self.spec.group(group))
        return self._runtimes[group]

    def sink(self, group: str) -> Sink:
        from fsgen.runtime.sinks import PutRecordSink

        return PutRecordSink({group: self.runtime(group)}, client=self.client)

    def ingest(
        self,
        group: str,
        source: object,
        rejects: Path | None = None,
        *,
        runtime: GroupRuntime | None = None,
        fmt: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        run_id: str | None = None,
        duplicates: str = "refuse",
    ) -> IngestResult:
        from fsgen.errors import IngestError
        from fsgen.runtime.ingest import run
        from fsgen.runtime.sources import SourceError

        rt = runtime or self.runtime(group)
        spec = self.spec.group(group)
        aggregations = None
        if spec.aggregations:
            from fsgen.runtime.aggwrite import AggregationRuntime

            aggregations = AggregationRuntime(rt, tuple(a.runtime() for a in spec.aggregations))
        try:
            return run(
                rt,
                source,
                self.sink(group),
                rejects=rejects,
                fmt=fmt,
                workers=0,
                progress=progress,
                on_finish=self.finish,
                run_id=run_id,
                aggregations=aggregations,
                duplicates=duplicates,  # PutRecord cannot read the history back: not checked
            )
        except SourceError as exc:
            raise IngestError(str(exc)) from None
        except PartialWriteError as exc:
            code, message = (
                client_error(exc.error, "PutRecord")
                if hasattr(exc.error, "response")
                else (type(exc.error).__name__, str(exc.error))
            )
            written = f"{exc.written:,} record(s) of this run were written before it"
            raise BackendError("PutRecord", code, f"{message} ({written}; none after)") from None

    def finish(self, result: IngestResult, error: str | None) -> None:
        from fsgen import audit

        audit.record_ingest(self.config.store_path, result, backend="aws", error=error)

    def record_counts(self, **counts: Any) -> None:
        from fsgen import audit

        audit.record_counts(self.config.store_path, **counts)

    def hidden_states(self, group: str, since: float) -> list[tuple[str, str]]:
        return []  # GetRecord returns nothing for a soft-deleted record, and says nothing

    def default_rejects(self, group: str) -> Path:
        from fsgen.backends.base import default_rejects_path

        return default_rejects_path(self.config.store_path, group)

    def get_record(
        self,
        group: str,
        record_id: str,
        feature_names: Sequence[str] | None = None,
        *,
        now: float | None = None,
    ) -> dict[str, object] | None:
        """GetRecord; with ``now``, a record expired at that instant is missing too."""
        request: dict[str, Any] = {
            "FeatureGroupName": group,
            "RecordIdentifierValueAsString": record_id,
        }
        if feature_names:
            request["FeatureNames"] = list(feature_names)
        rt = self.runtime(group)
        self._expired.pop((group, record_id), None)
        found = _invoke(self.client, "GetRecord", request).get("Record")
        if not found:
            return None
        record = rt.from_sagemaker(found)
        if now is not None and rt.ttl_seconds is not None and rt.event_time in record:
            # SageMaker judged expiry at its own clock; ``now`` judges it again (as the
            # local store does): ExpiresAt = EventTime + TTL
            if rt.event_seconds(record) + rt.ttl_seconds < now:
                self._expired[(group, record_id)] = rt.event_seconds(record) + rt.ttl_seconds
                return None
        return record

    def missing_reason(self, group: str, record_id: str, *, now: float | None = None) -> str:
        """A record :meth:`get_record` judged expired at ``now`` says when; for a record
        GetRecord did not return, SageMaker gives no reason, and this says so."""
        from fsgen.runtime.encoding import format_event_time

        expires = self._expired.get((group, record_id))
        if expires is not None and now is not None:
            return (
                f"its TTL expired at {format_event_time('String', expires)} (before --as-of "
                f"{format_event_time('String', now)}): event time + the group's TTL"
            )
        return (
            "SageMaker's GetRecord returned no record and gives no reason: a record never "
            "written, one whose TTL expired and a deleted one (soft or hard) look the same "
            "there; the offline store keeps the history (`fsgen dataset`, Athena)"
        )

    def delete_record(
        self, group: str, record_id: str, event_time: str, hard: bool = False
    ) -> DeleteOutcome:
        """DeleteRecord with the event time in SageMaker's canonical form (an ISO-8601 offset
        or date is normalised, as ingestion normalises records). DeleteRecord does not say
        whether the online record went: the record's event time is read first, and a
        SoftDelete older than it (which SageMaker leaves the record alone for) reports
        ``online_applied=False``."""
        from fsgen.runtime.encoding import encode_scalar
        from fsgen.store.local import event_time_value

        spec = self.spec.group(group)  # an unknown group is an error before any call
        rt = self.runtime(group)
        canonical, seconds = event_time_value(rt, event_time)
        stored: float | None = None
        if spec.online.enabled:
            found = _invoke(
                self.client,
                "GetRecord",
                {
                    "FeatureGroupName": group,
                    "RecordIdentifierValueAsString": record_id,
                    "FeatureNames": [rt.event_time],
                },
            ).get("Record")
            if found:
                stored = rt.event_seconds(rt.from_sagemaker(found))
        _invoke(
            self.client,
            "DeleteRecord",
            {
                "FeatureGroupName": group,
                "RecordIdentifierValueAsString": record_id,
                "EventTime": encode_scalar(rt.event_time_kind, canonical),
                "DeletionMode": "HardDelete" if hard else "SoftDelete",
            },
        )
        applied = stored is None or seconds >= stored
        return DeleteOutcome(group, record_id, canonical, hard, online_applied=applied)

    def record_source(self, clock: Callable[[], float] | None = None) -> RecordSource:
        source: RecordSource = self.client
        return source

    def rebuild_states(
        self, group: str, ids: Sequence[str] | None = None
    ) -> tuple[int, list[tuple[str, str]]]:
        from fsgen.errors import ConfigError

        raise ConfigError(
            f"'fsgen backfill {group}' reads the offline event history, which the "
            "featurestore-runtime API cannot read back; on AWS run the generated batch job over "
            "the group's whole event history instead"
        )

    def local_store(self, command: str) -> Path:
        from fsgen.errors import ConfigError

        raise ConfigError(f"'fsgen {command}' reads the local store; use the local backend")

    def close(self) -> None:
        return None
