"""The brief's SageMaker Python SDK v2 walkthrough, unchanged but for where it runs: against the
``fsgen serve`` process, and the same script against a moto server for the calls moto
implements (CreateFeatureGroup, DescribeFeatureGroup, tags).

The SDK is pointed at the endpoint the way any SDK user would point it: the standard
``AWS_ENDPOINT_URL`` variable (the ingestion worker threads build their own clients from the
environment), a region and any credentials. Not in the brief's text because they need AWS
itself: ``get_execution_role()`` (a role ARN is given) and ``default_bucket()`` (a bucket name is
given).
"""

from __future__ import annotations

import time
from typing import Any

import boto3
import pandas as pd
import pytest
from serverlib import Example, ServeProcess, checked

ROLE = "arn:aws:iam::123456789012:role/fsgen-feature-store"
BUCKET = "walkthrough-bucket"
ALL_STEPS = ("ingest", "metadata", "tags", "records", "delete")
COLUMNS = ["customer_id", "age", "avg_monthly_spend", "is_prime_member", "last_updated_time"]


def customer_frame(rows: int = 30) -> pd.DataFrame:
    now = int(time.time())
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    frame = pd.DataFrame(
        {
            "customer_id": [f"c-{i}" for i in range(rows)],
            "age": [20 + i for i in range(rows)],
            "avg_monthly_spend": [10.5 + i for i in range(rows)],
            "is_prime_member": [i % 2 for i in range(rows)],
            "last_updated_time": [stamp] * rows,
        }
    )
    # the SDK maps pandas' string dtype (not object) to String
    return frame.astype({"customer_id": "string", "last_updated_time": "string"})


def walkthrough(steps: tuple[str, ...]) -> dict[str, Any]:
    """The brief, step by step (sections 4.1 to 6)."""
    import sagemaker
    from sagemaker.feature_store.feature_group import FeatureGroup

    sagemaker_session = sagemaker.Session()
    role = ROLE  # sagemaker.get_execution_role() outside SageMaker

    feature_group_name = "customer-features"
    feature_group = FeatureGroup(name=feature_group_name, sagemaker_session=sagemaker_session)
    customer_df = customer_frame()
    feature_group.load_feature_definitions(data_frame=customer_df)
    feature_group.create(
        s3_uri=f"s3://{BUCKET}/{feature_group_name}",  # sagemaker_session.default_bucket()
        record_identifier_name="customer_id",
        event_time_feature_name="last_updated_time",
        role_arn=role,
        enable_online_store=True,
    )
    status = feature_group.describe()["FeatureGroupStatus"]
    for _ in range(100):
        if status != "Creating":
            break
        time.sleep(0.05)
        status = feature_group.describe()["FeatureGroupStatus"]
    seen: dict[str, Any] = {"status": status}

    if "ingest" in steps:
        feature_group.ingest(data_frame=customer_df, max_workers=3, wait=True)
    seen["describe"] = feature_group.describe()
    if "metadata" in steps:
        feature_group.update_feature_metadata(feature_name="age", description="age in years")
        seen["metadata"] = feature_group.describe_feature_metadata(feature_name="age")
    if "tags" in steps:
        seen["tags"] = feature_group.list_tags()

    if "records" in steps:
        sagemaker_featurestore_runtime = checked(boto3.client("sagemaker-featurestore-runtime"))
        seen["get"] = sagemaker_featurestore_runtime.get_record(
            FeatureGroupName="customer-features", RecordIdentifierValueAsString="c-7"
        )
        seen["batch"] = sagemaker_featurestore_runtime.batch_get_record(
            Identifiers=[
                {
                    "FeatureGroupName": "customer-features",
                    "RecordIdentifiersValueAsString": ["c-1", "c-2", "missing"],
                }
            ]
        )
        event_time = customer_df["last_updated_time"][3]
        sagemaker_featurestore_runtime.delete_record(
            FeatureGroupName="customer-features",
            RecordIdentifierValueAsString="c-3",
            EventTime=event_time,
        )
        seen["deleted"] = sagemaker_featurestore_runtime.get_record(
            FeatureGroupName="customer-features", RecordIdentifierValueAsString="c-3"
        )
    if "delete" in steps:
        feature_group.delete()
    return seen


def _point_sdk_at(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)


def test_walkthrough_against_fsgen_serve(
    example: Example, serve_process: ServeProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point_sdk_at(monkeypatch, serve_process.url)
    seen = walkthrough(ALL_STEPS)
    assert seen["status"] == "Created"
    names = [d["FeatureName"] for d in seen["describe"]["FeatureDefinitions"]]
    assert names == COLUMNS
    assert seen["describe"]["FeatureGroupArn"] == (
        "arn:aws:sagemaker:us-east-1:123456789012:feature-group/customer-features"
    )
    assert seen["metadata"]["Description"] == "age in years"
    assert seen["tags"] == []
    record = {f["FeatureName"]: f["ValueAsString"] for f in seen["get"]["Record"]}
    assert record["customer_id"] == "c-7"
    assert record["age"] == "27" and record["avg_monthly_spend"] == "17.5"
    found = sorted(r["RecordIdentifierValueAsString"] for r in seen["batch"]["Records"])
    assert found == ["c-1", "c-2"]
    assert "Record" not in seen["deleted"]
    # deleted: gone from the registry, the name is free again
    sm = boto3.client("sagemaker")
    assert sm.list_feature_groups()["FeatureGroupSummaries"] == []


def test_walkthrough_offline_store_is_queryable(
    example: Example, serve_process: ServeProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ingested records land offline too: every row, readable with the store's DuckDB
    reader, and the state survives a restart of ``fsgen serve``."""
    _point_sdk_at(monkeypatch, serve_process.url)
    walkthrough(("ingest",))
    serve_process.stop()
    serve_process.start()
    rt = checked(boto3.client("sagemaker-featurestore-runtime"))
    got = rt.get_record(FeatureGroupName="customer-features", RecordIdentifierValueAsString="c-9")
    assert {f["FeatureName"]: f["ValueAsString"] for f in got["Record"]}["age"] == "29"
    serve_process.stop()

    from fsgen.backends.registry import Registry
    from fsgen.server.runtime import deployed_runtime
    from fsgen.store import LocalStore

    config, spec = example
    desc = Registry(config.store_path).snapshot()["groups"]["customer-features"]["description"]
    with LocalStore.open(config, spec) as store:
        store.adopt(deployed_runtime(desc, None))
        frame = store.read_offline("customer-features")
    assert sorted(frame["customer_id"]) == sorted(f"c-{i}" for i in range(30))
    assert frame.set_index("customer_id")["avg_monthly_spend"]["c-4"] == 14.5


def test_walkthrough_against_moto(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto implements CreateFeatureGroup and DescribeFeatureGroup of the walkthrough (no
    runtime, ingest, metadata or delete; its ListTags fails on feature-group ARNs): the same
    script runs those against it and sees the same definitions."""
    _point_sdk_at(monkeypatch, moto_url)
    seen = walkthrough(())
    assert seen["status"] == "Created"
    names = [d["FeatureName"] for d in seen["describe"]["FeatureDefinitions"]]
    assert names == COLUMNS
