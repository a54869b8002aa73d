"""The Spark job of each feature group and what AWS Glue needs to run it.

Per group (aggregation groups excepted: their ingestion is not built yet, and ``fsgen ingest``
refuses them the same way), ``fsgen generate`` writes

- ``groups/<g>/spark_job.py``: the job (:mod:`fsgen.runtime.sparkjob` over the group's
  ``RUNTIME``), Glue's script;
- ``groups/<g>/glue_job.cloudformation.json``: an ``AWS::Glue::Job`` (Glue 5.0: Spark 3.5,
  Python 3.11) whose ``--extra-py-files`` is the zip ``fsgen package glue`` builds, and its
  IAM role with a least-privilege inline policy (:func:`glue_job_statements`, built from
  :mod:`fsgen.iam`'s exact ARNs).

The job writes the online store by PutRecord and the offline store's S3 folder directly (the
folder SageMaker made for the group, ``<offline uri>/<account>/sagemaker/<region>/
offline-store/<group>-<epoch>``), so the role may PutRecord and DescribeFeatureGroup on the
group, read its s3:// sources and the job's artifacts, write under the offline folder and the
rejects prefix, write Glue's own log groups, and use the configured KMS keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from fsgen import iam
from fsgen.codegen import views
from fsgen.codegen.views import snake
from fsgen.config import ProjectConfig
from fsgen.spec import GroupSpec

if TYPE_CHECKING:
    from fsgen.codegen.artifacts import Artifact, BuildContext

GLUE_VERSION = "5.0"
WORKER_TYPE = "G.1X"
WORKERS = 10


def spark_groups(ctx: BuildContext) -> list[GroupSpec]:
    return [g for g in ctx.spec.groups if not g.aggregations]


def logical_name(group: GroupSpec) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^0-9a-zA-Z]+", group.name))


def glue_job_name(group: GroupSpec) -> str:
    return f"fsgen-{group.name}-ingest"


def glue_job_statements(
    group: GroupSpec, config: ProjectConfig, scope: iam.Scope
) -> list[dict[str, object]]:
    """The job role's policy, with the CloudFormation parameters ``ArtifactsS3Uri``'s
    bucket/prefix and ``RejectsS3Uri``'s as ``Fn::Sub`` resources."""
    sources = sorted(
        {s.path for s in group.sources if s.kind == "batch" and s.path and s.path.startswith("s3:")}
    )
    out: list[dict[str, object]] = [
        iam._statement(
            "PutRecords",
            ["sagemaker:DescribeFeatureGroup", "sagemaker:PutRecord"],
            [scope.feature_group(group.name)],
        ),
        {
            "Sid": "ReadJobArtifacts",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [
                {
                    "Fn::Sub": f"arn:{scope.partition}:s3:::"
                    + "${ArtifactsBucket}/${ArtifactsPrefix}/*"
                }
            ],
        },
        {
            "Sid": "WriteRejects",
            "Effect": "Allow",
            "Action": [
                "s3:AbortMultipartUpload",
                "s3:DeleteObject",
                "s3:GetObject",
                "s3:PutObject",
            ],
            "Resource": [
                {"Fn::Sub": f"arn:{scope.partition}:s3:::${{RejectsBucket}}/${{RejectsPrefix}}/*"}
            ],
        },
        {
            "Sid": "ListRejects",
            "Effect": "Allow",
            "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
            "Resource": [{"Fn::Sub": f"arn:{scope.partition}:s3:::${{RejectsBucket}}"}],
            "Condition": {"StringLike": {"s3:prefix": [{"Fn::Sub": "${RejectsPrefix}/*"}]}},
        },
    ]
    if sources:
        out.append(
            iam._statement(
                "ReadBatchSources",
                ["s3:GetObject"],
                [a for uri in sources for a in iam._s3_source_arns(scope, uri)],
            )
        )
        out.extend(iam.s3_list(scope, [u for u in sources if u.endswith("/")], "ListBatchSources"))
    if group.offline.enabled:
        folder = iam.offline_data_prefix(scope, group, config)
        out.append(
            iam._statement(
                "WriteOfflineStore",
                ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
                iam.s3_object_arns(scope, folder),
            )
        )
        out.extend(iam.s3_list(scope, [folder], "ListOfflineStore"))
    out.append(
        iam._statement(
            "WriteLogs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            [
                scope.arn("logs", f"log-group:/aws-glue/jobs/{suffix}:*")
                for suffix in ("error", "output", "logs-v2")
            ],
        )
    )
    keys = sorted(
        set(iam._online_keys(config, [group], scope))
        | set(iam._offline_keys(config, [group], scope))
    )
    if keys:
        out.append(
            iam._statement(
                "UseStoreKeys",
                ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"],
                keys,
            )
        )
    return out


def glue_job_template(
    group: GroupSpec, config: ProjectConfig, header: views.Header, package: str
) -> dict[str, object] | None:
    """The stack: the Glue job and its role (None without ``role_arn``: no exact account)."""
    scope = iam.Scope.of(config)
    if scope is None:
        return None
    logical = logical_name(group)
    module = f"{package}.groups.{snake(group.name)}.spark_job"
    zip_name = f"fsgen-glue-{group.name}.zip"
    artifacts = "s3://${ArtifactsBucket}/${ArtifactsPrefix}"
    arguments: dict[str, object] = {
        "--job-language": "python",
        "--extra-py-files": {"Fn::Sub": f"{artifacts}/{zip_name}"},
        "--source": {"Ref": "SourceS3Uris"},
        "--rejects": {"Fn::Sub": "s3://${RejectsBucket}/${RejectsPrefix}"},
        "--region": {"Ref": "AWS::Region"},
        "--enable-metrics": "true",
        "--enable-continuous-cloudwatch-log": "true",
    }
    batch = ",".join(
        s.path for s in group.sources if s.kind == "batch" and s.path and s.path.startswith("s3:")
    )
    string = {"Type": "String"}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Glue Spark ingestion of feature group {group.name} (generated by fsgen)",
        "Metadata": {
            "fsgen": {
                "generated": header.lines()[0],
                "sources": list(header.sources),
                "spec-hash": header.spec_hash,
                "regenerate": "fsgen generate",
                "module": module,
                "package": f"fsgen package glue {group.name}",
            }
        },
        "Parameters": {
            "ArtifactsBucket": {**string, "Description": "bucket of spark_job.py and the zip"},
            "ArtifactsPrefix": {
                **string,
                "Default": f"fsgen/glue/{group.name}",
                "Description": "key prefix (no trailing /) of spark_job.py and " + zip_name,
            },
            "RejectsBucket": {**string, "Description": "bucket the rejects are written to"},
            "RejectsPrefix": {
                **string,
                "Default": f"fsgen/rejects/{group.name}",
                "Description": "key prefix (no trailing /) of the rejects",
            },
            "SourceS3Uris": {
                **string,
                **({"Default": batch} if batch else {}),
                "Description": "comma-separated sources: files, or prefixes ending in /",
            },
            "NumberOfWorkers": {"Type": "Number", "Default": WORKERS, "MinValue": 2},
        },
        "Resources": {
            f"{logical}GlueRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": iam.POLICY_VERSION,
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "glue.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    },
                    "Policies": [
                        {
                            "PolicyName": f"fsgen-{group.name}-glue-ingest",
                            "PolicyDocument": {
                                "Version": iam.POLICY_VERSION,
                                "Statement": glue_job_statements(group, config, scope),
                            },
                        }
                    ],
                },
            },
            f"{logical}GlueJob": {
                "Type": "AWS::Glue::Job",
                "Properties": {
                    "Name": glue_job_name(group),
                    "Description": f"fsgen Spark ingestion of {group.name}",
                    "Role": {"Fn::GetAtt": [f"{logical}GlueRole", "Arn"]},
                    "GlueVersion": GLUE_VERSION,
                    "WorkerType": WORKER_TYPE,
                    "NumberOfWorkers": {"Ref": "NumberOfWorkers"},
                    "MaxRetries": 0,
                    "ExecutionProperty": {"MaxConcurrentRuns": 1},
                    "Command": {
                        "Name": "glueetl",
                        "PythonVersion": "3",
                        "ScriptLocation": {"Fn::Sub": f"{artifacts}/spark_job.py"},
                    },
                    "DefaultArguments": arguments,
                },
            },
        },
        "Outputs": {
            "JobName": {"Value": {"Ref": f"{logical}GlueJob"}},
            "RoleArn": {"Value": {"Fn::GetAtt": [f"{logical}GlueRole", "Arn"]}},
        },
    }


def glue_artifacts(ctx: BuildContext) -> Iterator[Artifact]:
    """``spark_job.py`` and ``glue_job.cloudformation.json`` per group (registered in
    :data:`fsgen.codegen.artifacts.BUILDERS`)."""
    from fsgen.codegen.env import to_json

    for group in spark_groups(ctx):
        base = f"groups/{snake(group.name)}"
        header = views.group_header(group)
        yield ctx.artifact(
            f"{base}/spark_job.py",
            kind="spark_job",
            header=header,
            body=ctx.render(
                "spark_job.py.jinja",
                g=views.group_view(group),
                online=group.online.enabled,
                offline=group.offline.enabled,
            ),
        )
        template = glue_job_template(group, ctx.config, header, ctx.package)
        if template is not None:
            yield ctx.artifact(
                f"{base}/glue_job.cloudformation.json",
                kind="glue_job",
                header=header,
                body=to_json(template) + "\n",
            )
