"""Least-privilege IAM policy documents, one per role that runs fsgen's generated code.

=====================  =======================================================================
role                   may
=====================  =======================================================================
``batch_ingestion``    PutRecord / DescribeFeatureGroup on every group; read its s3:// batch
                       sources; use the online store's KMS key to write
``stream_handler``     read the groups' Kinesis streams; PutRecord on the groups they feed
                       (BatchGetRecord too on aggregation groups: it loads their states);
                       write its own Lambda log groups
``inference``          GetRecord / BatchGetRecord on the groups the feature sets read; decrypt
                       with the online store's KMS key
``dataset_building``   Athena queries in the configured workgroup over the groups' Glue tables;
                       read the offline store's S3 prefixes (and write Athena's result prefix)
=====================  =======================================================================

Every resource is the exact ARN fsgen knows from the definitions and ``[tool.fsgen.aws]``:
``arn:aws:sagemaker:REGION:ACCOUNT:feature-group/NAME`` (the account comes from ``role_arn``),
the offline store's ``s3://bucket/prefix``, ``arn:aws:glue:...:table/DB/TABLE``, the Athena
workgroup, the KMS keys. No action is a wildcard. The only ``*`` characters in resources are
where the name is made at run time and only its prefix is known, each listed in
:data:`RUN_TIME_SUFFIXES` (objects under an S3 prefix, the creation-time suffix SageMaker
appends to a Glue table name, the log streams of a Lambda log group). A test holds every
generated policy to that.

Without ``role_arn`` the account is unknown and no policy can be exact, so none is generated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fsgen.config import ProjectConfig
from fsgen.errors import FsgenError
from fsgen.sagemaker import offline_s3_uri
from fsgen.spec import GroupSpec, ProjectSpec

if TYPE_CHECKING:
    from fsgen.codegen.artifacts import Artifact, BuildContext

ROLES: tuple[str, ...] = ("batch_ingestion", "stream_handler", "inference", "dataset_building")
POLICY_VERSION = "2012-10-17"

#: Resource suffixes that stand for names made at run time (see the module docstring).
RUN_TIME_SUFFIXES: tuple[str, ...] = ("/*", "_" + "?" * 10, ":*")

#: SageMaker's creation-time suffix of a Glue table (``<table>_<10-digit epoch>``) and of an
#: offline store folder (``<group>-<epoch>``): exactly ten characters, so the pattern of group
#: ``customer_features`` cannot match group ``customer_features_pii``'s table or folder.
EPOCH = "?" * 10

Statement = dict[str, object]


class IamError(FsgenError):
    """The configuration cannot be turned into an exact policy."""


@dataclass(frozen=True)
class Scope:
    """Partition, region and account every ARN is built from."""

    region: str
    account: str
    partition: str = "aws"

    @classmethod
    def of(cls, config: ProjectConfig) -> Scope | None:
        arn = config.aws.role_arn
        if not arn:
            return None
        parts = arn.split(":")
        if len(parts) < 6 or parts[0] != "arn" or parts[2] != "iam" or not parts[4].isdigit():
            raise IamError(
                f"[tool.fsgen.aws] role_arn {arn!r} is not an IAM role ARN "
                "(arn:aws:iam::ACCOUNT:role/NAME)"
            )
        return cls(region=config.aws.region, account=parts[4], partition=parts[1])

    def arn(self, service: str, resource: str, *, region: str | None = None) -> str:
        return f"arn:{self.partition}:{service}:{region or self.region}:{self.account}:{resource}"

    def feature_group(self, name: str) -> str:
        return self.arn("sagemaker", f"feature-group/{name}")

    def kms_key(self, key: str) -> str:
        if key.startswith("arn:"):
            return key
        if key.startswith("alias/"):
            return self.arn("kms", key)
        return self.arn("kms", f"key/{key}")


def s3_parts(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b/`` -> (``bucket``, ``a/b``)."""
    if not uri.startswith("s3://"):
        raise IamError(f"{uri!r} is not an s3:// URI")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix.strip("/")


def s3_object_arns(scope: Scope, uri: str) -> list[str]:
    bucket, prefix = s3_parts(uri)
    return [
        f"arn:{scope.partition}:s3:::{bucket}/{prefix}/*"
        if prefix
        else f"arn:{scope.partition}:s3:::{bucket}/*"
    ]


def offline_data_prefix(scope: Scope, group: GroupSpec, config: ProjectConfig) -> str:
    """``s3://bucket/prefix/<account>/sagemaker/<region>/offline-store/<group>-<epoch>``:
    where SageMaker puts this group's offline files (and no other group's), as an S3 URI
    whose last part is a pattern."""
    uri = offline_uri(group, config).rstrip("/")
    return f"{uri}/{scope.account}/sagemaker/{scope.region}/offline-store/{group.name}-{EPOCH}"


def s3_list(scope: Scope, uris: list[str], sid: str) -> list[Statement]:
    """ListBucket per bucket, limited to the prefixes by condition."""
    by_bucket: dict[str, list[str]] = {}
    for uri in uris:
        bucket, prefix = s3_parts(uri)
        by_bucket.setdefault(bucket, []).append(f"{prefix}/*" if prefix else "*")
    out: list[Statement] = []
    for n, bucket in enumerate(sorted(by_bucket)):
        out.append(
            {
                "Sid": f"{sid}{n + 1}" if len(by_bucket) > 1 else sid,
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
                "Resource": [f"arn:{scope.partition}:s3:::{bucket}"],
                "Condition": {"StringLike": {"s3:prefix": sorted(set(by_bucket[bucket]))}},
            }
        )
    return out


def offline_uri(group: GroupSpec, config: ProjectConfig) -> str:
    """The S3 URI apply sends for ``group`` (the same translation as its CreateFeatureGroup)."""
    return offline_s3_uri(group, config)


def _statement(sid: str, actions: list[str], resources: list[str]) -> Statement:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(set(actions)),
        "Resource": sorted(set(resources)),
    }


def _online_keys(config: ProjectConfig, groups: list[GroupSpec], scope: Scope) -> list[str]:
    key = config.aws.online_kms_key_id
    return [scope.kms_key(key)] if key and any(g.online.enabled for g in groups) else []


def _offline_keys(config: ProjectConfig, groups: list[GroupSpec], scope: Scope) -> list[str]:
    keys = {g.offline.kms_key or config.aws.kms_key_id for g in groups if g.offline.enabled}
    return sorted(scope.kms_key(k) for k in keys if k)


# ------------------------------------------------------------------------------ the roles


def batch_ingestion(spec: ProjectSpec, config: ProjectConfig, scope: Scope) -> list[Statement]:
    groups = list(spec.groups)
    out = [
        _statement(
            "PutRecords",
            ["sagemaker:DescribeFeatureGroup", "sagemaker:PutRecord"],
            [scope.feature_group(g.name) for g in groups],
        )
    ]
    sources = sorted(
        {
            s.path
            for g in groups
            for s in g.sources
            if s.kind == "batch" and s.path and s.path.startswith("s3://")
        }
    )
    if sources:
        out.append(
            _statement(
                "ReadBatchSources",
                ["s3:GetObject"],
                [a for uri in sources for a in _s3_source_arns(scope, uri)],
            )
        )
    keys = _online_keys(config, groups, scope)
    if keys:
        out.append(
            _statement(
                "UseOnlineStoreKey",
                ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"],
                keys,
            )
        )
    return out


def _s3_source_arns(scope: Scope, uri: str) -> list[str]:
    bucket, key = s3_parts(uri)
    if uri.endswith("/"):
        return s3_object_arns(scope, uri)
    return [f"arn:{scope.partition}:s3:::{bucket}/{key}"]


def lambda_function_name(group: GroupSpec) -> str:
    """The Lambda function name a group's stream handler is deployed as (its log group is
    ``/aws/lambda/<name>``)."""
    return f"fsgen-{group.name}"


def dead_letter_statements(config: ProjectConfig, scope: Scope) -> list[Statement]:
    """SendMessage on the dead-letter queue, or PutObject under the dead-letter S3 prefix."""
    target = config.aws.dead_letter
    if not target:
        return []
    if target.startswith("s3://"):
        return [_statement("WriteDeadLetters", ["s3:PutObject"], s3_object_arns(scope, target))]
    match = re.match(
        r"^https://sqs\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/(\d{12})/([\w-]+)$", target
    )
    if match is None:
        raise IamError(
            f"[tool.fsgen.aws] dead_letter {target!r} is neither an SQS queue URL "
            "(https://sqs.REGION.amazonaws.com/ACCOUNT/NAME) nor an s3:// URI"
        )
    region, account, name = match.groups()
    queue = f"arn:{scope.partition}:sqs:{region}:{account}:{name}"
    return [_statement("WriteDeadLetters", ["sqs:SendMessage"], [queue])]


def stream_handler(spec: ProjectSpec, config: ProjectConfig, scope: Scope) -> list[Statement]:
    streamed = [g for g in spec.groups if any(s.kind == "stream" for s in g.sources)]
    if not streamed:
        return []
    streams = []
    for g in streamed:
        for s in g.sources:
            if s.kind == "stream" and s.stream:
                streams.append(
                    s.stream
                    if s.stream.startswith("arn:")
                    else scope.arn("kinesis", f"stream/{s.stream}", region=s.region)
                )
    logs = [
        scope.arn("logs", f"log-group:/aws/lambda/{lambda_function_name(g)}:*") for g in streamed
    ]
    return [
        _statement(
            "ReadStreams",
            [
                "kinesis:DescribeStream",
                "kinesis:DescribeStreamSummary",
                "kinesis:GetRecords",
                "kinesis:GetShardIterator",
                "kinesis:ListShards",
            ],
            streams,
        ),
        _statement(
            "PutRecords", ["sagemaker:PutRecord"], [scope.feature_group(g.name) for g in streamed]
        ),
        *(
            [
                _statement(  # the handler loads the states it updates
                    "ReadAggregationStates",
                    ["sagemaker:BatchGetRecord"],
                    [scope.feature_group(g.name) for g in aggregated],
                )
            ]
            if (aggregated := [g for g in streamed if g.aggregations])
            else []
        ),
        _statement(
            "WriteLogs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], logs
        ),
        *(
            [
                _statement(
                    "UseOnlineStoreKey",
                    ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"],
                    keys,
                )
            ]
            if (keys := _online_keys(config, streamed, scope))
            else []
        ),
        *dead_letter_statements(config, scope),
    ]


def _served_groups(spec: ProjectSpec) -> list[GroupSpec]:
    names = {g for fs in spec.feature_sets for g in fs.groups}
    return [g for g in spec.groups if g.name in names and g.online.enabled]


def inference(spec: ProjectSpec, config: ProjectConfig, scope: Scope) -> list[Statement]:
    groups = _served_groups(spec)
    if not groups:
        return []
    out = [
        _statement(
            "GetRecords",
            ["sagemaker:BatchGetRecord", "sagemaker:GetRecord"],
            [scope.feature_group(g.name) for g in groups],
        )
    ]
    keys = _online_keys(config, groups, scope)
    if keys:
        out.append(_statement("UseOnlineStoreKey", ["kms:Decrypt", "kms:DescribeKey"], keys))
    return out


def dataset_building(spec: ProjectSpec, config: ProjectConfig, scope: Scope) -> list[Statement]:
    from fsgen.codegen.sql import glue_table_name

    groups = [g for g in spec.groups if g.offline.enabled]
    if not groups:
        return []
    db = config.aws.glue_database
    tables = [
        scope.arn("glue", f"table/{db}/{glue_table_name(g)}{suffix}")
        for g in groups
        for suffix in ("", "_" + EPOCH)
    ]
    uris = sorted({offline_data_prefix(scope, g, config) for g in groups})
    out = [
        _statement(
            "DescribeGroups",
            ["sagemaker:DescribeFeatureGroup"],
            [scope.feature_group(g.name) for g in groups],
        ),
        _statement(
            "RunAthenaQueries",
            [
                "athena:GetQueryExecution",
                "athena:GetQueryResults",
                "athena:GetWorkGroup",
                "athena:StartQueryExecution",
                "athena:StopQueryExecution",
            ],
            [scope.arn("athena", f"workgroup/{config.aws.athena_workgroup}")],
        ),
        _statement(
            "ReadGlueTables",
            ["glue:GetDatabase", "glue:GetPartition", "glue:GetPartitions", "glue:GetTable"],
            [scope.arn("glue", "catalog"), scope.arn("glue", f"database/{db}"), *tables],
        ),
        _statement(
            "ReadOfflineStore",
            ["s3:GetObject"],
            [a for uri in uris for a in s3_object_arns(scope, uri)],
        ),
        *s3_list(scope, uris, "ListOfflineStore"),
    ]
    results = config.aws.athena_output_s3_uri
    if results:
        out.append(
            _statement(
                "WriteQueryResults",
                ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
                s3_object_arns(scope, results),
            )
        )
        out.extend(s3_list(scope, [results], "ListQueryResults"))
    keys = _offline_keys(config, groups, scope)
    if keys:
        out.append(
            _statement(
                "DecryptOfflineStore",
                ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"],
                keys,
            )
        )
    return out


_BUILDERS = {
    "batch_ingestion": batch_ingestion,
    "stream_handler": stream_handler,
    "inference": inference,
    "dataset_building": dataset_building,
}


def policies(spec: ProjectSpec, config: ProjectConfig) -> dict[str, dict[str, object]]:
    """Role -> IAM policy document; roles with nothing to do (no stream sources, no feature
    sets) are left out, as is everything when ``role_arn`` is not configured."""
    scope = Scope.of(config)
    if scope is None:
        return {}
    out: dict[str, dict[str, object]] = {}
    for role in ROLES:
        statements = _BUILDERS[role](spec, config, scope)
        if statements:
            out[role] = {
                "Version": POLICY_VERSION,
                "Id": f"fsgen-{config.project}-{role.replace('_', '-')}",
                "Statement": statements,
            }
    return out


def iam_artifacts(ctx: BuildContext) -> Iterator[Artifact]:
    """``iam/<role>.json`` per role: registered in :data:`fsgen.codegen.artifacts.BUILDERS`."""
    from fsgen.codegen.env import to_json
    from fsgen.codegen.views import Header, project_hash

    documents = policies(ctx.spec, ctx.config)
    if not documents:
        return
    paths = (
        {g.location.path for g in ctx.spec.groups}
        | {f.location.path for f in ctx.spec.feature_sets}
        | {"pyproject.toml ([tool.fsgen.aws])"}
    )
    header = Header(sources=tuple(sorted(paths)), spec_hash=project_hash(ctx.spec))
    for role, document in documents.items():
        yield ctx.artifact(
            f"iam/{role}.json", kind="iam_policy", header=header, body=to_json(document) + "\n"
        )
