"""Least-privilege IAM: every generated policy is valid IAM, names real API actions, and is
scoped to exact resources (no wildcard action; '*' only where a name is made at run time)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import botocore.session
import pytest

from fsgen import iam
from fsgen.config import load_config
from fsgen.loader import load

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"

#: IAM actions that are permissions, not API operations of the same name.
NON_API_ACTIONS = {"s3:ListBucket"}
#: IAM service prefix -> botocore service models holding its operations.
SERVICES = {
    "sagemaker": ["sagemaker", "sagemaker-featurestore-runtime"],
    "s3": ["s3"],
    "kms": ["kms"],
    "kinesis": ["kinesis"],
    "logs": ["logs"],
    "athena": ["athena"],
    "glue": ["glue"],
    "sqs": ["sqs"],
}


def _example() -> dict[str, dict[str, object]]:
    config = load_config(REPO)
    return iam.policies(load(REPO), config)


def _statements(policy: dict[str, object]) -> list[dict[str, object]]:
    return policy["Statement"]  # type: ignore[return-value]


def _pairs(policy: dict[str, object]) -> set[tuple[str, str]]:
    return {
        (a, r)
        for s in _statements(policy)
        for a in s["Action"]  # type: ignore[attr-defined]
        for r in s["Resource"]
    }  # type: ignore[attr-defined]


def assert_least_privilege(policy: dict[str, object], account: str) -> None:
    assert set(policy) == {"Version", "Id", "Statement"}
    assert policy["Version"] == "2012-10-17"
    sids = [s["Sid"] for s in _statements(policy)]
    assert len(sids) == len(set(sids)) and all(re.fullmatch(r"[A-Za-z0-9]+", str(s)) for s in sids)
    for s in _statements(policy):
        assert s["Effect"] == "Allow"
        assert set(s) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        actions, resources = s["Action"], s["Resource"]
        assert isinstance(actions, list) and actions and isinstance(resources, list) and resources
        for action in actions:
            assert "*" not in action, f"wildcard action {action}"
            assert re.fullmatch(r"[a-z0-9-]+:[A-Z][A-Za-z]+", action), action
        for resource in resources:
            assert resource != "*" and resource.startswith("arn:aws:"), resource
            if "*" in resource:
                assert resource.count("*") == 1 and resource.endswith(iam.RUN_TIME_SUFFIXES), (
                    f"wildcard in {resource}"
                )
            if not resource.startswith("arn:aws:s3:::"):
                assert f":{account}:" in resource, resource


def test_example_policies_are_least_privilege() -> None:
    policies = _example()
    assert list(policies) == list(iam.ROLES)
    for policy in policies.values():
        assert_least_privilege(policy, ACCOUNT)


def test_actions_are_real_api_operations() -> None:
    session = botocore.session.get_session()
    operations = {
        prefix: {op for name in names for op in session.get_service_model(name).operation_names}
        for prefix, names in SERVICES.items()
    }
    for policy in _example().values():
        for s in _statements(policy):
            for action in s["Action"]:  # type: ignore[attr-defined]
                prefix, op = action.split(":")
                assert action in NON_API_ACTIONS or op in operations[prefix], action


FG = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:feature-group/"


def test_batch_ingestion_writes_every_group_and_reads_nothing() -> None:
    policy = _example()["batch_ingestion"]
    assert _pairs(policy) == {
        (a, FG + g)
        for a in ("sagemaker:DescribeFeatureGroup", "sagemaker:PutRecord")
        for g in ("customer-features", "merchant-features", "purchases")
    }


def test_stream_handler_reads_its_stream_and_writes_only_its_group() -> None:
    pairs = _pairs(_example()["stream_handler"])
    stream = f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/customer-profile-updates"
    assert ("kinesis:GetRecords", stream) in pairs
    assert ("sagemaker:PutRecord", FG + "customer-features") in pairs
    assert not any(r == FG + "merchant-features" for _, r in pairs)  # merchants: no stream
    assert (
        "logs:PutLogEvents",
        f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/fsgen-customer-features:*",
    ) in pairs
    assert {a.split(":")[0] for a, _ in pairs} == {"kinesis", "sagemaker", "logs", "sqs"}
    # poison records go to the configured dead-letter queue, and nowhere else
    assert [p for p in pairs if p[0].startswith("sqs:")] == [
        ("sqs:SendMessage", f"arn:aws:sqs:us-east-1:{ACCOUNT}:fsgen-example-dead-letters")
    ]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (
            "https://sqs.eu-west-1.amazonaws.com/123456789012/poison",
            ("sqs:SendMessage", "arn:aws:sqs:eu-west-1:123456789012:poison"),
        ),
        ("s3://dlq-bucket/stream/", ("s3:PutObject", "arn:aws:s3:::dlq-bucket/stream/*")),
        (None, None),
    ],
)
def test_dead_letter_destination_is_the_only_extra_grant(
    target: str | None, expected: tuple[str, str] | None
) -> None:
    config = load_config(REPO)
    config = config.model_copy(
        update={"aws": config.aws.model_copy(update={"dead_letter": target})}
    )
    policy = iam.policies(load(REPO), config)["stream_handler"]
    assert_least_privilege(policy, ACCOUNT)
    extra = {p for p in _pairs(policy) if p[0].split(":")[0] in ("sqs", "s3")}
    assert extra == ({expected} if expected else set())


def test_a_malformed_dead_letter_is_a_clear_error() -> None:
    config = load_config(REPO)
    config = config.model_copy(
        update={"aws": config.aws.model_copy(update={"dead_letter": "my-queue"})}
    )
    with pytest.raises(iam.IamError, match="neither an SQS queue URL"):
        iam.policies(load(REPO), config)


def test_inference_only_reads_the_online_store() -> None:
    pairs = _pairs(_example()["inference"])
    assert pairs == {
        (a, FG + g)
        for a in ("sagemaker:GetRecord", "sagemaker:BatchGetRecord")
        for g in ("customer-features", "merchant-features", "purchases")
    }


def test_dataset_building_reads_offline_store_through_athena() -> None:
    policy = _example()["dataset_building"]
    pairs = _pairs(policy)
    assert not any(a in ("sagemaker:PutRecord", "sagemaker:GetRecord") for a, _ in pairs)
    assert (
        "athena:StartQueryExecution",
        f"arn:aws:athena:us-east-1:{ACCOUNT}:workgroup/primary",
    ) in pairs
    assert (
        "glue:GetTable",
        f"arn:aws:glue:us-east-1:{ACCOUNT}:table/sagemaker_featurestore/customer_features",
    ) in pairs
    assert (
        "s3:GetObject",
        "arn:aws:s3:::fsgen-example-offline-store/features/"
        f"{ACCOUNT}/sagemaker/us-east-1/offline-store/customer-features-??????????/*",
    ) in pairs
    listing = next(s for s in _statements(policy) if s["Sid"] == "ListOfflineStore")
    under = f"features/{ACCOUNT}/sagemaker/us-east-1/offline-store"
    assert listing["Condition"] == {
        "StringLike": {
            "s3:prefix": [
                f"{under}/customer-features-??????????/*",
                f"{under}/merchant-features-??????????/*",
                f"{under}/purchases-??????????/*",
            ]
        }
    }


SCOPED_PYPROJECT = """\
[project]
name = "scoped"
version = "0"

[tool.fsgen]
definitions = "featuredefs"

[tool.fsgen.aws]
region = "eu-west-1"
role_arn = "arn:aws:iam::210987654321:role/fs"
offline_s3_uri = "s3://offline-bucket/fs/"
kms_key_id = "alias/offline"
online_kms_key_id = "arn:aws:kms:eu-west-1:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab"
athena_workgroup = "features"
athena_output_s3_uri = "s3://athena-results/fsgen"
glue_database = "fs_db"
"""

SCOPED_DEFS = """\
from fsgen import Entity, FeatureGroup, FeatureSet, Integral, Offline, Source, String

user = Entity("user_id", String, description="u")
clicks = FeatureGroup("clicks", entity=user, event_time="ts", owner="o", description="d",
                      sources=[Source.batch("s3://raw-bucket/clicks/2024.parquet"),
                               Source.kinesis("clicks-stream", region="eu-central-1")])
orders = FeatureGroup("orders", entity=user, event_time="ts", owner="o", description="d",
                      online=False, offline=Offline(kms_key="key-for-orders"))


@clicks.feature(Integral, description="n")
def n_clicks(n: int) -> int:
    return n


@orders.feature(Integral, description="n")
def n_orders(n: int) -> int:
    return n


model = FeatureSet("m", [n_clicks], description="m", owner="o", label_time="ts")
"""


def _scoped(make_project: Callable[..., Path]) -> dict[str, dict[str, object]]:
    root = make_project({"featuredefs/defs.py": SCOPED_DEFS})
    (root / "pyproject.toml").write_text(SCOPED_PYPROJECT)
    return iam.policies(load(root), load_config(root))


def test_configured_keys_buckets_and_workgroup_are_exact(make_project: Callable[..., Path]) -> None:
    policies = _scoped(make_project)
    account = "210987654321"
    for policy in policies.values():
        assert_least_privilege(policy, account)
    online_key = "arn:aws:kms:eu-west-1:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    batch = _pairs(policies["batch_ingestion"])
    assert ("s3:GetObject", "arn:aws:s3:::raw-bucket/clicks/2024.parquet") in batch
    assert ("kms:GenerateDataKey", online_key) in batch
    stream = _pairs(policies["stream_handler"])
    assert (
        "kinesis:GetRecords",
        f"arn:aws:kinesis:eu-central-1:{account}:stream/clicks-stream",
    ) in stream
    inference = _pairs(policies["inference"])
    assert {r for _, r in inference} == {
        f"arn:aws:sagemaker:eu-west-1:{account}:feature-group/clicks",
        online_key,
    }
    assert ("kms:Encrypt", online_key) not in inference
    dataset = _pairs(policies["dataset_building"])
    assert (
        "athena:StartQueryExecution",
        f"arn:aws:athena:eu-west-1:{account}:workgroup/features",
    ) in dataset
    assert ("s3:PutObject", "arn:aws:s3:::athena-results/fsgen/*") in dataset
    assert (
        "s3:GetObject",
        f"arn:aws:s3:::offline-bucket/fs/{account}/sagemaker/eu-west-1/offline-store/clicks-??????????/*",
    ) in dataset
    assert ("glue:GetTable", f"arn:aws:glue:eu-west-1:{account}:table/fs_db/orders") in dataset
    keys = {r for a, r in dataset if a == "kms:Decrypt"}
    assert keys == {
        f"arn:aws:kms:eu-west-1:{account}:alias/offline",
        f"arn:aws:kms:eu-west-1:{account}:key/key-for-orders",
    }


def test_without_role_arn_no_policy_is_generated(make_project: Callable[..., Path]) -> None:
    root = make_project({"featuredefs/defs.py": SCOPED_DEFS})
    assert iam.policies(load(root), load_config(root)) == {}


def test_bad_role_arn_is_refused(make_project: Callable[..., Path]) -> None:
    root = make_project({"featuredefs/defs.py": SCOPED_DEFS})
    (root / "pyproject.toml").write_text(
        SCOPED_PYPROJECT.replace("arn:aws:iam::210987654321:role/fs", "my-role")
    )
    with pytest.raises(iam.IamError, match="role_arn 'my-role' is not an IAM role ARN"):
        iam.policies(load(root), load_config(root))


def test_generated_iam_files_match_the_policies() -> None:
    policies = _example()
    for role, policy in policies.items():
        path = REPO / "generated" / "iam" / f"{role}.json"
        assert json.loads(path.read_text()) == policy


def test_iam_accepts_every_policy(aws_env: str, make_project: Callable[..., Path]) -> None:
    """moto's IAM validates policy documents like IAM does (syntax, elements, ARNs)."""
    import boto3

    client = boto3.client("iam", region_name="us-east-1")
    documents = {
        **{f"ex-{k}": v for k, v in _example().items()},
        **{f"sc-{k}": v for k, v in _scoped(make_project).items()},
    }
    for name, document in documents.items():
        created = client.create_policy(
            PolicyName=f"fsgen-{name}", PolicyDocument=json.dumps(document)
        )
        assert created["Policy"]["Arn"].endswith(f"policy/fsgen-{name}")


def test_bad_role_arn_is_a_clean_cli_error(make_project: Callable[..., Path]) -> None:
    from click.testing import CliRunner

    from fsgen.cli import main

    root = make_project({"featuredefs/defs.py": SCOPED_DEFS})
    (root / "pyproject.toml").write_text(
        SCOPED_PYPROJECT.replace("arn:aws:iam::210987654321:role/fs", "my-role")
    )
    result = CliRunner().invoke(main, ["--project", str(root), "generate"])
    assert result.exit_code == 1
    assert "error: [tool.fsgen.aws] role_arn 'my-role' is not an IAM role ARN" in result.stderr
