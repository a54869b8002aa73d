"""SageMaker control-plane rules as ``fsgen serve`` enforces them, seen through boto3."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from fsgen.config import ProjectConfig
from fsgen.server import FeatureStoreServer, serve_in_thread
from fsgen.spec import ProjectSpec

Example = tuple[ProjectConfig, ProjectSpec]
DEFS = [
    {"FeatureName": "id", "FeatureType": "String"},
    {"FeatureName": "t", "FeatureType": "Fractional"},
]


def sagemaker(url: str) -> Any:
    return boto3.client("sagemaker", region_name="us-east-1", endpoint_url=url)


def create(sm: Any, name: str, **extra: Any) -> dict[str, Any]:
    request = {
        "FeatureGroupName": name,
        "RecordIdentifierFeatureName": "id",
        "EventTimeFeatureName": "t",
        "FeatureDefinitions": DEFS,
        "OnlineStoreConfig": {"EnableOnlineStore": True},
        **extra,
    }
    return sm.create_feature_group(**request)  # type: ignore[no-any-return]


def code_of(call: Any) -> str:
    with pytest.raises(ClientError) as info:
        call()
    return str(info.value.response["Error"]["Code"])


def test_list_feature_groups_paginates_and_sorts(served: FeatureStoreServer) -> None:
    sm = sagemaker(served.url)
    for name in ("b-group", "a-group", "c-group"):
        create(sm, name)
    seen, token = [], None
    while True:
        page = sm.list_feature_groups(
            SortBy="Name", MaxResults=2, **({"NextToken": token} if token else {})
        )
        seen.extend(s["FeatureGroupName"] for s in page["FeatureGroupSummaries"])
        token = page.get("NextToken")
        if not token:
            break
    assert seen == ["a-group", "b-group", "c-group"]
    desc = sm.list_feature_groups(SortBy="Name", SortOrder="Descending", NameContains="group")
    assert [s["FeatureGroupName"] for s in desc["FeatureGroupSummaries"]] == [
        "c-group",
        "b-group",
        "a-group",
    ]


def test_validation_rules(served: FeatureStoreServer) -> None:
    sm = sagemaker(served.url)
    reserved = [*DEFS, {"FeatureName": "write_time", "FeatureType": "String"}]
    assert code_of(lambda: create(sm, "g", FeatureDefinitions=reserved)) == "ValidationException"
    assert (
        code_of(lambda: create(sm, "g", RecordIdentifierFeatureName="missing"))
        == "ValidationException"
    )
    assert (
        code_of(
            lambda: create(
                sm, "g", OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://bucket/x"}}
            )
        )
        == "ValidationException"
    )  # no RoleArn
    create(sm, "g")
    too_many = [{"FeatureName": f"f{i}", "FeatureType": "Integral"} for i in range(101)]
    assert (
        code_of(lambda: sm.update_feature_group(FeatureGroupName="g", FeatureAdditions=too_many))
        == "ValidationException"
    )
    assert (
        code_of(lambda: sm.update_feature_group(FeatureGroupName="g", FeatureAdditions=[DEFS[0]]))
        == "ValidationException"
    )
    assert (
        code_of(
            lambda: sm.update_feature_metadata(
                FeatureGroupName="g", FeatureName="nope", Description="x"
            )
        )
        == "ResourceNotFound"
    )
    ttl = {"TtlDuration": {"Unit": "Hours", "Value": 2}}
    assert (
        code_of(
            lambda: sm.update_feature_group(  # one parameter at a time
                FeatureGroupName="g", FeatureAdditions=too_many[:1], OnlineStoreConfig=ttl
            )
        )
        == "ValidationException"
    )
    sm.update_feature_group(FeatureGroupName="g", FeatureAdditions=too_many[:100])
    sm.update_feature_group(FeatureGroupName="g", OnlineStoreConfig=ttl)
    desc = sm.describe_feature_group(FeatureGroupName="g")
    assert len(desc["FeatureDefinitions"]) == 102
    assert desc["OnlineStoreConfig"]["TtlDuration"] == {"Unit": "Hours", "Value": 2}
    assert desc["LastUpdateStatus"]["Status"] == "Successful"
    # an empty TtlDuration (Unit and Value null) removes the TTL
    sm.update_feature_group(FeatureGroupName="g", OnlineStoreConfig={"TtlDuration": {}})
    assert "TtlDuration" not in sm.describe_feature_group(FeatureGroupName="g")["OnlineStoreConfig"]


def test_update_while_creating_is_resource_in_use(example: Example) -> None:
    config, spec = example
    server = serve_in_thread(config, spec, port=0, creating_polls=5)
    try:
        sm = sagemaker(server.url)
        create(sm, "slow")
        assert (
            sm.describe_feature_group(FeatureGroupName="slow")["FeatureGroupStatus"] == "Creating"
        )
        assert (
            code_of(
                lambda: sm.update_feature_group(
                    FeatureGroupName="slow",
                    FeatureAdditions=[{"FeatureName": "x", "FeatureType": "String"}],
                )
            )
            == "ResourceInUse"
        )
    finally:
        server.shutdown()
        server.server_close()
        server.runtime.store.close()
