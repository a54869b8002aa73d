"""The AWS backend and plain boto3 against ``fsgen serve`` over HTTP: plan, apply, records,
errors, destroy. Real botocore clients serialize and parse every call."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from fsgen.backends.aws import AwsBackend
from fsgen.backends.local import LocalBackend
from fsgen.config import ProjectConfig
from fsgen.plan.apply import apply_plan, compute_plan
from fsgen.plan.render import EMPTY, render_plan
from fsgen.server import FeatureStoreServer
from fsgen.spec import ProjectSpec

Example = tuple[ProjectConfig, ProjectSpec]


def boto(served: FeatureStoreServer, service: str) -> object:
    return boto3.client(service, region_name="us-east-1", endpoint_url=served.url)


def deploy(example: Example, aws: AwsBackend) -> None:
    config, spec = example
    plan = compute_plan(config, spec, aws, artifacts=False)
    assert [c.action for c in plan.changes] == ["create", "create", "create"]
    apply_plan(config, spec, aws, plan, regenerate=False)


def test_plan_apply_replan_is_empty(example: Example, aws: AwsBackend) -> None:
    config, spec = example
    deploy(example, aws)
    again = compute_plan(config, spec, aws, artifacts=False)
    assert render_plan(again) == EMPTY + "\n"
    # the same registry read in process by the local backend: identical deployed state
    assert LocalBackend(config).deployed() == aws.deployed()


def test_groups_carry_fsgen_tags_and_feature_parameters(
    example: Example, aws: AwsBackend, served: FeatureStoreServer
) -> None:
    deploy(example, aws)
    sm = boto(served, "sagemaker")
    desc = sm.describe_feature_group(FeatureGroupName="customer-features")  # type: ignore[attr-defined]
    assert desc["FeatureGroupStatus"] == "Created"
    assert desc["OnlineStoreConfig"]["TtlDuration"] == {"Unit": "Days", "Value": 30}
    tags = {
        t["Key"]: t["Value"]
        for t in sm.list_tags(  # type: ignore[attr-defined]
            ResourceArn=desc["FeatureGroupArn"]
        )["Tags"]
    }
    spec = example[1]
    group = spec.group("customer-features")
    assert tags["fsgen:schema-hash"] == group.schema_hash
    assert tags["fsgen:logic-hash"] == group.logic_hash
    meta = sm.describe_feature_metadata(  # type: ignore[attr-defined]
        FeatureGroupName="customer-features", FeatureName="age"
    )
    params = {p["Key"]: p["Value"] for p in meta["Parameters"]}
    assert params["fsgen:logic-hash"] == group.feature("age").logic_hash
    assert meta["Description"] == group.feature("age").description
    names = [
        s["FeatureGroupName"]
        for s in sm.list_feature_groups(  # type: ignore[attr-defined]
            SortBy="Name"
        )["FeatureGroupSummaries"]
    ]
    assert names == ["customer-features", "merchant-features", "purchases"]


def test_record_lifecycle_through_boto3(
    example: Example, aws: AwsBackend, served: FeatureStoreServer
) -> None:
    deploy(example, aws)
    rt = boto(served, "sagemaker-featurestore-runtime")
    record = [
        {"FeatureName": "customer_id", "ValueAsString": "c-1"},
        {"FeatureName": "last_updated_time", "ValueAsString": "2099-01-02T03:04:05Z"},
        {"FeatureName": "age", "ValueAsString": "41"},
        {"FeatureName": "avg_monthly_spend", "ValueAsString": "0.1"},
        {"FeatureName": "is_prime_member", "ValueAsString": "1"},
    ]
    rt.put_record(FeatureGroupName="customer-features", Record=record)  # type: ignore[attr-defined]
    got = rt.get_record(
        FeatureGroupName="customer-features",  # type: ignore[attr-defined]
        RecordIdentifierValueAsString="c-1",
        ExpirationTimeResponse="Enabled",
    )
    by_name = {f["FeatureName"]: f["ValueAsString"] for f in got["Record"]}
    assert by_name == {f["FeatureName"]: f["ValueAsString"] for f in record}
    assert got["ExpiresAt"].startswith("2099-02-01T03:04:05")
    some = rt.get_record(
        FeatureGroupName="customer-features",  # type: ignore[attr-defined]
        RecordIdentifierValueAsString="c-1",
        FeatureNames=["age"],
    )
    assert some["Record"] == [{"FeatureName": "age", "ValueAsString": "41"}]
    batch = rt.batch_get_record(
        Identifiers=[
            {  # type: ignore[attr-defined]
                "FeatureGroupName": "customer-features",
                "RecordIdentifiersValueAsString": ["c-1", "nobody"],
            }
        ]
    )
    assert [r["RecordIdentifierValueAsString"] for r in batch["Records"]] == ["c-1"]
    assert batch["Errors"] == [] and batch["UnprocessedIdentifiers"] == []
    # the AWS backend's data plane uses the same endpoint
    from fsgen.backends.aws import AwsDataPlane

    plane = AwsDataPlane(example[0], example[1], aws.runtime)
    assert plane.get_record("customer-features", "c-1", ["is_prime_member"]) == {
        "is_prime_member": 1
    }
    rt.delete_record(
        FeatureGroupName="customer-features",  # type: ignore[attr-defined]
        RecordIdentifierValueAsString="c-1",
        EventTime="2099-01-02T03:04:06Z",
    )
    gone = rt.get_record(
        FeatureGroupName="customer-features",  # type: ignore[attr-defined]
        RecordIdentifierValueAsString="c-1",
    )
    assert "Record" not in gone


def test_batch_write_record(example: Example, aws: AwsBackend, served: FeatureStoreServer) -> None:
    deploy(example, aws)
    rt = boto(served, "sagemaker-featurestore-runtime")
    good = {
        "FeatureGroupName": "merchant-features",
        "Record": [
            {"FeatureName": "merchant_id", "ValueAsString": "m-1"},
            {"FeatureName": "updated_at", "ValueAsString": "4070908800.0"},
            {"FeatureName": "category", "ValueAsString": "grocery"},
        ],
    }
    bad = {
        "FeatureGroupName": "merchant-features",
        "Record": [{"FeatureName": "merchant_id", "ValueAsString": "m-2"}],
    }
    out = rt.batch_write_record(Entries=[good, bad])  # type: ignore[attr-defined]
    assert [e["ErrorCode"] for e in out["Errors"]] == ["ValidationError"]
    from fsgen.backends.aws import AwsDataPlane

    got = AwsDataPlane(example[0], example[1], aws.runtime).get_record("merchant-features", "m-1")
    assert got is not None and got["category"] == "grocery"


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda sm, rt: sm.describe_feature_group(FeatureGroupName="nope"), "ResourceNotFound"),
        (lambda sm, rt: sm.delete_feature_group(FeatureGroupName="nope"), "ResourceNotFound"),
        (
            lambda sm, rt: sm.create_feature_group(
                FeatureGroupName="customer-features",
                RecordIdentifierFeatureName="id",
                EventTimeFeatureName="t",
                FeatureDefinitions=[
                    {"FeatureName": "id", "FeatureType": "String"},
                    {"FeatureName": "t", "FeatureType": "String"},
                ],
                OnlineStoreConfig={"EnableOnlineStore": True},
            ),
            "ResourceInUse",
        ),
        (
            lambda sm, rt: sm.create_feature_group(
                FeatureGroupName="fresh",
                RecordIdentifierFeatureName="id",
                EventTimeFeatureName="t",
                FeatureDefinitions=[
                    {"FeatureName": "id", "FeatureType": "String"},
                    {"FeatureName": "t", "FeatureType": "Integral"},
                ],
                OnlineStoreConfig={"EnableOnlineStore": True},
            ),
            "ValidationException",
        ),
        (
            lambda sm, rt: rt.get_record(
                FeatureGroupName="nope", RecordIdentifierValueAsString="x"
            ),
            "ResourceNotFound",
        ),
        (
            lambda sm, rt: rt.put_record(
                FeatureGroupName="customer-features",
                Record=[
                    {"FeatureName": "customer_id", "ValueAsString": "c"},
                    {"FeatureName": "last_updated_time", "ValueAsString": "2024-01-01T00:00:00Z"},
                    {"FeatureName": "no_such_feature", "ValueAsString": "1"},
                ],
            ),
            "ValidationError",
        ),
        (
            lambda sm, rt: rt.put_record(
                FeatureGroupName="customer-features",
                Record=[
                    {"FeatureName": "customer_id", "ValueAsString": "c"},
                    {"FeatureName": "last_updated_time", "ValueAsString": "not a time"},
                ],
            ),
            "ValidationError",
        ),
    ],
)
def test_errors_have_aws_codes(
    example: Example, aws: AwsBackend, served: FeatureStoreServer, call: object, code: str
) -> None:
    deploy(example, aws)
    sm, rt = boto(served, "sagemaker"), boto(served, "sagemaker-featurestore-runtime")
    with pytest.raises(ClientError) as info:
        call(sm, rt)  # type: ignore[operator]
    assert info.value.response["Error"]["Code"] == code


def test_destroy_drops_online_data(
    example: Example, aws: AwsBackend, served: FeatureStoreServer
) -> None:
    config, spec = example
    deploy(example, aws)
    aws.runtime.put_record(
        FeatureGroupName="merchant-features",
        Record=[
            {"FeatureName": "merchant_id", "ValueAsString": "m-1"},
            {"FeatureName": "updated_at", "ValueAsString": "4070908800.0"},
        ],
    )
    plan = compute_plan(config, spec, aws, destroy=True)
    assert [c.action for c in plan.changes] == ["destroy", "destroy", "destroy"]
    apply_plan(config, spec, aws, plan, allow_destructive=True, regenerate=False)
    assert aws.deployed() == {}
    offline = config.store_path / "offline" / "merchant-features"
    assert not offline.exists()
    assert list((config.store_path / "archive" / "merchant-features").iterdir())
    deploy(example, aws)  # recreated: starts empty
    from fsgen.backends.aws import AwsDataPlane

    assert AwsDataPlane(config, spec, aws.runtime).get_record("merchant-features", "m-1") is None


def test_creating_status_is_waited_for(example: Example, make_backend: Any) -> None:
    from fsgen.server import serve_in_thread

    config, spec = example
    server = serve_in_thread(config, spec, port=0, creating_polls=3)
    try:
        backend = make_backend(server.url, config)
        seen: list[str] = []
        plan = compute_plan(config, spec, backend, artifacts=False)
        apply_plan(config, spec, backend, plan, regenerate=False, progress=seen.append)
        assert "customer-features: Creating" in seen
        assert "customer-features: Created" in seen
    finally:
        server.shutdown()
        server.server_close()
        server.runtime.store.close()


def test_a_destroy_on_aws_says_where_the_offline_data_stays(
    example: Example, aws: AwsBackend
) -> None:
    """The plan's data-loss line names what the backend does with offline data: SageMaker
    leaves the S3 objects and the Glue table (it said "archived", the local store's move)."""
    config, spec = example
    deploy(example, aws)
    empty = spec.model_copy(update={"groups": (), "feature_sets": (), "on_demand": ()})
    plan = compute_plan(config, empty, aws, artifacts=False)
    losses = {c.group: c.data_loss for c in plan.changes}
    assert set(losses) == {"customer-features", "merchant-features", "purchases"}
    for loss in losses.values():
        assert loss is not None and "archived" not in loss
        assert "no longer read (SageMaker leaves its S3 objects and Glue table)" in loss
    assert "archived" in str(compute_plan(config, empty, LocalBackend(config), artifacts=False))
