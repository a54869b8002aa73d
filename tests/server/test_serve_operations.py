"""Every operation ``fsgen serve`` answers, through boto3, with every response checked against
botocore's output shape; and the record rules of groups created through the API: their
deployed definition, TTL (group and per record), TargetStores, FeatureAdditions, SageMaker's
value and event-time checks, name or ARN, region and account."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from serverlib import SEEN, Example, checked, clients

from fsgen.server import FeatureStoreServer
from fsgen.server.model import CONTROL_OPERATIONS, runtime_operations

ROLE = "arn:aws:iam::123456789012:role/fsgen-feature-store"
DEFS = [
    {"FeatureName": "id", "FeatureType": "String"},
    {"FeatureName": "t", "FeatureType": "String"},
    {"FeatureName": "n", "FeatureType": "Integral"},
    {"FeatureName": "x", "FeatureType": "Fractional"},
    {"FeatureName": "tags", "FeatureType": "String", "CollectionType": "List"},
]


def iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def create(sm: Any, name: str, **extra: Any) -> str:
    request = {
        "FeatureGroupName": name,
        "RecordIdentifierFeatureName": "id",
        "EventTimeFeatureName": "t",
        "FeatureDefinitions": DEFS,
        "OnlineStoreConfig": {"EnableOnlineStore": True},
        **extra,
    }
    return str(sm.create_feature_group(**request)["FeatureGroupArn"])


def record(rid: str, t: str, n: str = "1", x: str = "0.5", **more: str) -> list[dict[str, Any]]:
    values = [
        {"FeatureName": "id", "ValueAsString": rid},
        {"FeatureName": "t", "ValueAsString": t},
        {"FeatureName": "n", "ValueAsString": n},
        {"FeatureName": "x", "ValueAsString": x},
        {"FeatureName": "tags", "ValueAsStringList": ["a", "b"]},
    ]
    values.extend({"FeatureName": k, "ValueAsString": v} for k, v in more.items())
    return values


def values(response: dict[str, Any]) -> dict[str, Any]:
    return {
        f["FeatureName"]: f.get("ValueAsString", f.get("ValueAsStringList"))
        for f in response.get("Record", [])
    }


def error(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call()
    err = info.value.response["Error"]
    return str(err["Code"]), str(err["Message"])


def test_every_operation_answers_in_its_output_shape(served: FeatureStoreServer) -> None:
    SEEN.clear()
    sm, rt = clients(served.url)
    now = time.time()
    arn = create(
        sm,
        "orders",
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://bucket/prefix"}},
        RoleArn=ROLE,
        Description="orders by id",
        Tags=[{"Key": "team", "Value": "risk"}],
    )
    create(
        sm,
        "profiles",
        OnlineStoreConfig={"EnableOnlineStore": True, "TtlDuration": {"Unit": "Hours", "Value": 1}},
    )
    assert arn == "arn:aws:sagemaker:us-east-1:123456789012:feature-group/orders"
    desc = sm.describe_feature_group(FeatureGroupName=arn)  # name or ARN
    assert desc["FeatureGroupName"] == "orders"
    assert desc["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"].startswith(
        "s3://bucket/prefix/123456789012/sagemaker/us-east-1/offline-store/orders-"
    )
    sm.update_feature_group(
        FeatureGroupName="orders",
        FeatureAdditions=[{"FeatureName": "extra", "FeatureType": "String"}],
    )
    sm.update_feature_metadata(
        FeatureGroupName=arn,
        FeatureName="n",
        Description="count",
        ParameterAdditions=[{"Key": "unit", "Value": "items"}],
    )
    meta = sm.describe_feature_metadata(FeatureGroupName="orders", FeatureName="n")
    assert meta["Description"] == "count" and meta["Parameters"] == [
        {"Key": "unit", "Value": "items"}
    ]

    listed = sm.list_feature_groups(SortBy="Name", OfflineStoreStatusEquals="Active")
    assert [s["FeatureGroupName"] for s in listed["FeatureGroupSummaries"]] == ["orders"]
    after = sm.list_feature_groups(CreationTimeAfter=now + 3600)["FeatureGroupSummaries"]
    assert after == []
    before = sm.list_feature_groups(CreationTimeBefore=now + 3600, SortBy="CreationTime")
    assert len(before["FeatureGroupSummaries"]) == 2
    page = sm.list_feature_groups(MaxResults=1, SortBy="Name")
    assert page["NextToken"] and page["FeatureGroupSummaries"][0]["FeatureGroupName"] == "orders"
    code, message = error(lambda: sm.list_feature_groups(NextToken="not-a-token"))
    assert code == "ValidationException" and "pagination token" in message

    found = sm.search(
        Resource="FeatureGroup",
        SearchExpression={
            "Filters": [{"Name": "FeatureGroupName", "Operator": "Contains", "Value": "ord"}]
        },
    )
    assert [r["FeatureGroup"]["FeatureGroupName"] for r in found["Results"]] == ["orders"]
    assert found["Results"][0]["FeatureGroup"]["Tags"] == [{"Key": "team", "Value": "risk"}]
    by_tag = sm.search(
        Resource="FeatureGroup",
        SearchExpression={
            "Filters": [{"Name": "Tags.team", "Operator": "Equals", "Value": "risk"}]
        },
    )
    assert len(by_tag["Results"]) == 1
    features = sm.search(
        Resource="FeatureMetadata",
        SearchExpression={
            "Filters": [
                {"Name": "FeatureGroupName", "Operator": "Equals", "Value": "orders"},
                {"Name": "FeatureType", "Operator": "Equals", "Value": "Integral"},
            ],
            "Operator": "And",
        },
    )
    assert [r["FeatureMetadata"]["FeatureName"] for r in features["Results"]] == ["n"]

    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "stage", "Value": "dev"}])
    assert {t["Key"] for t in sm.list_tags(ResourceArn=arn)["Tags"]} == {"team", "stage"}
    sm.delete_tags(ResourceArn=arn, TagKeys=["stage"])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "risk"}]

    t0 = iso(now)
    rt.put_record(FeatureGroupName=arn, Record=record("o-1", t0, extra="added"))
    rt.put_record(
        FeatureGroupName="orders",
        Record=record("o-2", t0),
        TtlDuration={"Unit": "Minutes", "Value": 5},
        TargetStores=["OnlineStore", "OfflineStore"],
    )
    got = rt.get_record(FeatureGroupName=arn, RecordIdentifierValueAsString="o-1")
    assert values(got) == {
        "id": "o-1",
        "t": t0,
        "n": "1",
        "x": "0.5",
        "tags": ["a", "b"],
        "extra": "added",
    }
    with_ttl = rt.get_record(
        FeatureGroupName="orders",
        RecordIdentifierValueAsString="o-2",
        ExpirationTimeResponse="Enabled",
    )
    assert with_ttl["ExpiresAt"].startswith(iso(int(now) + 300)[:16])
    only = rt.get_record(
        FeatureGroupName="orders", RecordIdentifierValueAsString="o-1", FeatureNames=["n"]
    )
    assert values(only) == {"n": "1"}
    batch = rt.batch_get_record(
        Identifiers=[
            {
                "FeatureGroupName": "orders",
                "RecordIdentifiersValueAsString": ["o-1", "o-2", "none"],
            },
            {"FeatureGroupName": "nope", "RecordIdentifiersValueAsString": ["a"]},
        ],
        ExpirationTimeResponse="Enabled",
    )
    assert sorted(r["RecordIdentifierValueAsString"] for r in batch["Records"]) == ["o-1", "o-2"]
    assert [e["ErrorCode"] for e in batch["Errors"]] == ["ResourceNotFound"]
    written = rt.batch_write_record(
        Entries=[
            {"FeatureGroupName": "profiles", "Record": record("p-1", t0)},
            {"FeatureGroupName": "profiles", "Record": record("p-2", t0, n="x")},
        ]
    )
    assert [e["Entry"]["Record"][0]["ValueAsString"] for e in written["Errors"]] == ["p-2"]
    assert written["Errors"][0]["ErrorCode"] == "ValidationError"
    assert rt.list_records(FeatureGroupName="profiles")["RecordIdentifiers"] == ["p-1"]
    rt.update_record(
        FeatureGroupName="orders",
        RecordIdentifierValueAsString="o-1",
        Features=[{"FeatureName": "n", "ValueAsString": "9"}],
    )
    assert (
        values(rt.get_record(FeatureGroupName="orders", RecordIdentifierValueAsString="o-1"))["n"]
        == "9"
    )
    rt.delete_record(FeatureGroupName=arn, RecordIdentifierValueAsString="o-1", EventTime=t0)
    assert "Record" not in rt.get_record(
        FeatureGroupName="orders", RecordIdentifierValueAsString="o-1"
    )
    listed_deleted = rt.list_records(FeatureGroupName="orders", IncludeSoftDeletedRecords=True)
    assert listed_deleted["RecordIdentifiers"] == ["o-1", "o-2"]
    sm.delete_feature_group(FeatureGroupName="orders")  # a name only, as the model says
    code, _ = error(lambda: sm.describe_feature_group(FeatureGroupName="orders"))
    assert code == "ResourceNotFound"

    answered = {op for _, op in SEEN}
    assert set(CONTROL_OPERATIONS) <= answered
    assert set(runtime_operations()) <= answered


def test_records_follow_the_deployed_definition(served: FeatureStoreServer) -> None:
    """A group without TTL has no ExpiresAt; a TTL set by UpdateFeatureGroup applies to later
    writes; an added feature is accepted at once; unknown features are refused."""
    sm, rt = clients(served.url)
    create(sm, "plain")
    t0 = iso(time.time())
    rt.put_record(FeatureGroupName="plain", Record=record("a", t0))
    got = rt.get_record(
        FeatureGroupName="plain",
        RecordIdentifierValueAsString="a",
        ExpirationTimeResponse="Enabled",
    )
    assert "ExpiresAt" not in got
    code, message = error(
        lambda: rt.put_record(FeatureGroupName="plain", Record=record("b", t0, late="v"))
    )
    assert code == "ValidationError" and "late" in message
    sm.update_feature_group(
        FeatureGroupName="plain",
        FeatureAdditions=[{"FeatureName": "late", "FeatureType": "String"}],
    )
    sm.update_feature_group(
        FeatureGroupName="plain", OnlineStoreConfig={"TtlDuration": {"Unit": "Days", "Value": 2}}
    )
    rt.put_record(FeatureGroupName="plain", Record=record("b", t0, late="v"))
    got = rt.get_record(
        FeatureGroupName="plain",
        RecordIdentifierValueAsString="b",
        ExpirationTimeResponse="Enabled",
    )
    assert values(got)["late"] == "v"
    assert got["ExpiresAt"].startswith(iso(time.time() + 2 * 86400)[:13])
    old = rt.get_record(
        FeatureGroupName="plain",
        RecordIdentifierValueAsString="a",
        ExpirationTimeResponse="Enabled",
    )
    assert "ExpiresAt" not in old  # the TTL in force at the write


def test_feature_additions_naming_a_feature_twice_say_so(served: FeatureStoreServer) -> None:
    """A FeatureAdditions list with one name twice is refused as such (it was reported as a
    feature the group already has) and adds nothing."""
    sm, _ = clients(served.url)
    create(sm, "twice")
    code, message = error(
        lambda: sm.update_feature_group(
            FeatureGroupName="twice",
            FeatureAdditions=[
                {"FeatureName": "extra", "FeatureType": "String"},
                {"FeatureName": "extra", "FeatureType": "Integral"},
            ],
        )
    )
    assert code == "ValidationException"
    assert message == "Duplicate FeatureName 'extra' in FeatureAdditions"
    described = sm.describe_feature_group(FeatureGroupName="twice")
    assert [d["FeatureName"] for d in described["FeatureDefinitions"]] == [
        d["FeatureName"] for d in DEFS
    ]
    code, message = error(
        lambda: sm.update_feature_group(
            FeatureGroupName="twice",
            FeatureAdditions=[{"FeatureName": "n", "FeatureType": "String"}],
        )
    )
    assert message == "Feature n already exists in FeatureGroup twice"
    # UpdateFeatureGroup changes one thing a call (API reference); throughput was let through
    code, message = error(
        lambda: sm.update_feature_group(
            FeatureGroupName="twice",
            FeatureAdditions=[{"FeatureName": "extra", "FeatureType": "String"}],
            ThroughputConfig={"ThroughputMode": "OnDemand"},
        )
    )
    assert message == (
        "Use one of FeatureAdditions, OnlineStoreConfig, ThroughputConfig at a time "
        "(got FeatureAdditions and ThroughputConfig)"
    )


def test_throughput_updates_change_what_they_name(served: FeatureStoreServer) -> None:
    """A ThroughputConfig update keeps what it does not name (DescribeFeatureGroup lost the
    required ThroughputMode and the other capacity), a switch to OnDemand drops the units,
    and PROVISIONED is refused with the InMemory online store, as SageMaker documents."""
    sm, _ = clients(served.url)
    provisioned = {
        "ThroughputMode": "Provisioned",
        "ProvisionedReadCapacityUnits": 10,
        "ProvisionedWriteCapacityUnits": 5,
    }
    create(sm, "capacity", ThroughputConfig=provisioned)
    sm.update_feature_group(
        FeatureGroupName="capacity", ThroughputConfig={"ProvisionedReadCapacityUnits": 20}
    )
    described = sm.describe_feature_group(FeatureGroupName="capacity")
    assert described["ThroughputConfig"] == provisioned | {"ProvisionedReadCapacityUnits": 20}
    sm.update_feature_group(
        FeatureGroupName="capacity", ThroughputConfig={"ThroughputMode": "OnDemand"}
    )
    described = sm.describe_feature_group(FeatureGroupName="capacity")
    assert described["ThroughputConfig"] == {"ThroughputMode": "OnDemand"}
    in_memory = {"EnableOnlineStore": True, "StorageType": "InMemory"}
    code, message = error(
        lambda: create(sm, "fast", OnlineStoreConfig=in_memory, ThroughputConfig=provisioned)
    )
    assert code == "ValidationException" and "Standard tier online store" in message
    create(sm, "fast", OnlineStoreConfig=in_memory)
    code, message = error(
        lambda: sm.update_feature_group(FeatureGroupName="fast", ThroughputConfig=provisioned)
    )
    assert code == "ValidationException" and "PROVISIONED throughput mode" in message
    described = sm.describe_feature_group(FeatureGroupName="fast")
    assert described["ThroughputConfig"] == {"ThroughputMode": "OnDemand"}


def test_a_vector_feature_is_fractional_with_a_dimension(served: FeatureStoreServer) -> None:
    """A Vector definition without its dimension, or of another type than Fractional, is
    refused (CreateFeatureGroup and FeatureAdditions): SageMaker's Vector is a fixed-size
    array of Fractional. Such a group took vectors of any length."""
    sm, _ = clients(served.url)
    online = {"EnableOnlineStore": True, "StorageType": "InMemory"}
    no_dim = {"FeatureName": "emb", "FeatureType": "Fractional", "CollectionType": "Vector"}
    typed = no_dim | {
        "FeatureType": "String",
        "CollectionConfig": {"VectorConfig": {"Dimension": 3}},
    }
    code, message = error(
        lambda: create(sm, "vec", FeatureDefinitions=[*DEFS, no_dim], OnlineStoreConfig=online)
    )
    assert code == "ValidationException" and "needs its dimension" in message, message
    code, message = error(
        lambda: create(sm, "vec", FeatureDefinitions=[*DEFS, typed], OnlineStoreConfig=online)
    )
    assert "must have FeatureType Fractional" in message, message
    create(sm, "vec", OnlineStoreConfig=online)
    code, message = error(
        lambda: sm.update_feature_group(FeatureGroupName="vec", FeatureAdditions=[no_dim])
    )
    assert "needs its dimension" in message, message
    good = no_dim | {"CollectionConfig": {"VectorConfig": {"Dimension": 3}}}
    sm.update_feature_group(FeatureGroupName="vec", FeatureAdditions=[good])


def test_a_project_group_created_with_another_definition_follows_it(
    served: FeatureStoreServer, example: Example
) -> None:
    """``customer-features`` is declared with a 30-day TTL; created through the API with other
    features and no TTL, its records follow the API's definition."""
    sm, rt = clients(served.url)
    create(sm, "customer-features")
    t0 = iso(time.time())
    rt.put_record(FeatureGroupName="customer-features", Record=record("c", t0))
    got = rt.get_record(
        FeatureGroupName="customer-features",
        RecordIdentifierValueAsString="c",
        ExpirationTimeResponse="Enabled",
    )
    assert values(got)["x"] == "0.5" and "ExpiresAt" not in got


def test_delete_record_of_a_fractional_event_time_group(served: FeatureStoreServer) -> None:
    """DeleteRecord's EventTime is text, like a record's: epoch seconds for a Fractional event
    time; text that is no number is refused naming it."""
    sm, rt = clients(served.url)
    defs = [
        {"FeatureName": "id", "FeatureType": "Integral"},
        DEFS[1] | {"FeatureType": "Fractional"},
    ]
    create(sm, "epochs", FeatureDefinitions=[*defs, DEFS[2]])
    now = str(float(int(time.time())))
    rt.put_record(
        FeatureGroupName="epochs",
        Record=[
            {"FeatureName": "id", "ValueAsString": "7"},
            {"FeatureName": "t", "ValueAsString": now},
            {"FeatureName": "n", "ValueAsString": "1"},
        ],
    )
    rt.delete_record(FeatureGroupName="epochs", RecordIdentifierValueAsString="7", EventTime=now)
    assert "Record" not in rt.get_record(
        FeatureGroupName="epochs", RecordIdentifierValueAsString="7"
    )
    code, message = error(
        lambda: rt.delete_record(
            FeatureGroupName="epochs", RecordIdentifierValueAsString="7", EventTime="soon"
        )
    )
    assert code == "ValidationError" and "value 'soon' is not a number" in message, message
    # an older HardDelete is refused with the runtime's own error code, named so
    rt.put_record(
        FeatureGroupName="epochs",
        Record=[
            {"FeatureName": "id", "ValueAsString": "8"},
            {"FeatureName": "t", "ValueAsString": now},
        ],
    )
    code, message = error(
        lambda: rt.delete_record(
            FeatureGroupName="epochs",
            RecordIdentifierValueAsString="8",
            EventTime=str(float(now) - 60),
            DeletionMode="HardDelete",
        )
    )
    assert code == "ValidationError" and "ValidationException" not in message, message
    assert message.endswith("nothing deleted (SageMaker refuses it: ValidationError)"), message


def test_an_integral_identifier_is_one_record_however_it_is_spelt(
    served: FeatureStoreServer,
) -> None:
    """A put of Integral identifier ``007`` stores record 7; GetRecord, BatchGetRecord and
    DeleteRecord naming it ``007`` or ``+7`` reach that record, and a HardDelete so named
    removes it online as well as writing its tombstone offline (it used to write the
    tombstone for 7 and leave 7 served)."""
    sm, rt = clients(served.url)
    defs = [{"FeatureName": "id", "FeatureType": "Integral"}, DEFS[1], DEFS[2]]
    create(
        sm,
        "policies",
        FeatureDefinitions=defs,
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://bucket/prefix"}},
        RoleArn=ROLE,
    )
    t = iso(time.time() - 60)
    rt.put_record(
        FeatureGroupName="policies",
        Record=[
            {"FeatureName": "id", "ValueAsString": "007"},
            {"FeatureName": "t", "ValueAsString": t},
            {"FeatureName": "n", "ValueAsString": "3"},
        ],
    )
    for spelt in ("7", "007", "+7"):
        got = rt.get_record(FeatureGroupName="policies", RecordIdentifierValueAsString=spelt)
        assert values(got) == {"id": "7", "t": t, "n": "3"}, spelt
    batch = rt.batch_get_record(
        Identifiers=[{"FeatureGroupName": "policies", "RecordIdentifiersValueAsString": ["007"]}]
    )
    assert [r["RecordIdentifierValueAsString"] for r in batch["Records"]] == ["007"]
    rt.delete_record(
        FeatureGroupName="policies",
        RecordIdentifierValueAsString="007",
        EventTime=iso(time.time()),
        DeletionMode="HardDelete",
    )
    assert "Record" not in rt.get_record(
        FeatureGroupName="policies", RecordIdentifierValueAsString="7"
    )
    assert rt.list_records(FeatureGroupName="policies")["RecordIdentifiers"] == []
    offline = served.runtime.store.read_offline("policies", dedup=False)
    assert offline["id"].tolist() == [7, 7]
    assert offline["is_deleted"].tolist() == [False, True]


def test_expires_at_past_year_9999_is_the_last_instant_of_9999(
    served: FeatureStoreServer,
) -> None:
    """An event time at the end of 9999 plus the TTL: ExpiresAt is no InternalFailure."""
    sm, rt = clients(served.url)
    create(
        sm,
        "late",
        OnlineStoreConfig={"EnableOnlineStore": True, "TtlDuration": {"Unit": "Days", "Value": 2}},
    )
    rt.put_record(FeatureGroupName="late", Record=record("z", "9999-12-31T00:00:00Z"))
    got = rt.get_record(
        FeatureGroupName="late", RecordIdentifierValueAsString="z", ExpirationTimeResponse="Enabled"
    )
    assert got["ExpiresAt"] == "9999-12-31T23:59:59.999Z" and values(got)["id"] == "z"
    batch = rt.batch_get_record(
        Identifiers=[{"FeatureGroupName": "late", "RecordIdentifiersValueAsString": ["z"]}],
        ExpirationTimeResponse="Enabled",
    )
    assert batch["Records"][0]["ExpiresAt"] == "9999-12-31T23:59:59.999Z"


def test_target_stores(served: FeatureStoreServer) -> None:
    sm, rt = clients(served.url)
    create(sm, "both", OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://b/p"}}, RoleArn=ROLE)
    t0 = iso(time.time())
    rt.put_record(FeatureGroupName="both", Record=record("off", t0), TargetStores=["OfflineStore"])
    rt.put_record(FeatureGroupName="both", Record=record("on", t0), TargetStores=["OnlineStore"])
    assert "Record" not in rt.get_record(
        FeatureGroupName="both", RecordIdentifierValueAsString="off"
    )
    assert "Record" in rt.get_record(FeatureGroupName="both", RecordIdentifierValueAsString="on")
    frame = served.runtime.store.read_offline("both")
    assert list(frame["id"]) == ["off"]
    create(sm, "online-only")
    code, message = error(
        lambda: rt.put_record(
            FeatureGroupName="online-only", Record=record("z", t0), TargetStores=["OfflineStore"]
        )
    )
    assert code == "ValidationError" and "no OfflineStore" in message


def test_delete_record_target_stores_choose_where_it_deletes(
    served: FeatureStoreServer,
) -> None:
    """DeleteRecord's TargetStores, as on SageMaker: ``OnlineStore`` alone deletes the online
    record and writes no offline tombstone (training data unchanged), ``OfflineStore`` alone
    writes the tombstone and leaves the online record served. Both stores used to be
    deleted from whatever TargetStores said."""
    sm, rt = clients(served.url)
    create(
        sm,
        "stores",
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://bucket/prefix"}},
        RoleArn=ROLE,
    )
    t = iso(time.time() - 60)
    for rid in ("a", "b"):
        rt.put_record(FeatureGroupName="stores", Record=record(rid, t))
    later = iso(time.time())
    rt.delete_record(
        FeatureGroupName="stores",
        RecordIdentifierValueAsString="a",
        EventTime=later,
        TargetStores=["OnlineStore"],
    )
    rt.delete_record(
        FeatureGroupName="stores",
        RecordIdentifierValueAsString="b",
        EventTime=later,
        TargetStores=["OfflineStore"],
    )
    assert "Record" not in rt.get_record(
        FeatureGroupName="stores", RecordIdentifierValueAsString="a"
    )
    assert (
        values(rt.get_record(FeatureGroupName="stores", RecordIdentifierValueAsString="b"))["t"]
        == t
    )
    offline = served.runtime.store.read_offline("stores", dedup=False)
    rows = sorted(zip(offline["id"], offline["is_deleted"], strict=True))
    assert rows == [("a", False), ("b", False), ("b", True)]


@pytest.mark.parametrize(
    ("feature", "value", "why"),
    [
        ("x", "inf", "finite"),
        ("x", "-Infinity", "finite"),
        ("x", "nan", "finite"),
        ("x", "1e400", "finite"),
        ("x", "abc", "value 'abc' is not a number"),
        ("x", "1,5", "value '1,5' is not a number"),
        ("n", "9223372036854775808", "64-bit"),
        ("n", "-9223372036854775809", "64-bit"),
        ("n", "1.5", "64-bit"),
        ("n", "", "64-bit"),
        ("t", "2026-12-01", "yyyy-MM-dd'T'HH:mm:ssZ"),
        ("t", "2026-12-01T00:00:00+00:00", "yyyy-MM-dd'T'HH:mm:ssZ"),
        ("t", "2026-12-01T00:00:00.1Z", "yyyy-MM-dd'T'HH:mm:ssZ"),
        ("t", "2026-13-01T00:00:00Z", "Event time"),
        ("id", "", "must not be empty"),
        ("id", "H2\udfff", "Unicode"),
    ],
)
def test_values_are_checked_on_write_as_sagemaker_does(
    served: FeatureStoreServer, feature: str, value: str, why: str
) -> None:
    sm, rt = clients(served.url)
    create(sm, "checked")
    rec = [
        dict(f, ValueAsString=value) if f["FeatureName"] == feature else f
        for f in record("r", iso(time.time()))
    ]
    code, message = error(lambda: rt.put_record(FeatureGroupName="checked", Record=rec))
    assert code == "ValidationError" and why in message, message
    assert rt.list_records(FeatureGroupName="checked")["RecordIdentifiers"] == []


def test_one_instant_is_one_event_time(served: FeatureStoreServer) -> None:
    """``...:00Z`` and ``...:00.000Z`` are one instant: stored once (offline dedup), served in
    the canonical form; integers and floats round-trip bit for bit."""
    sm, rt = clients(served.url)
    create(
        sm, "instants", OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://b/p"}}, RoleArn=ROLE
    )
    for stamp in ("2026-01-02T03:04:05Z", "2026-01-02T03:04:05.000Z"):
        rt.put_record(
            FeatureGroupName="instants",
            Record=record("i", stamp, n="-9223372036854775808", x="0.1"),
        )
    got = values(rt.get_record(FeatureGroupName="instants", RecordIdentifierValueAsString="i"))
    assert got["t"] == "2026-01-02T03:04:05Z"
    assert (
        got["n"] == "-9223372036854775808"
        and float(got["x"]) == 0.1
        and not math.isnan(float(got["x"]))
    )
    assert len(served.runtime.store.read_offline("instants")) == 1


def test_region_from_the_credential_scope(served: FeatureStoreServer) -> None:
    sm, rt = clients(served.url, region="eu-west-1")
    arn = create(sm, "regional")
    assert arn == "arn:aws:sagemaker:eu-west-1:123456789012:feature-group/regional"
    rt.put_record(FeatureGroupName=arn, Record=record("r", iso(time.time())))
    assert rt.get_record(FeatureGroupName=arn, RecordIdentifierValueAsString="r")["Record"]
    code, _ = error(
        lambda: rt.get_record(
            FeatureGroupName="arn:aws:sagemaker:us-east-1:123456789012:feature-group/regional",
            RecordIdentifierValueAsString="r",
        )
    )
    assert code == "ResourceNotFound"


def test_concurrent_clients(served: FeatureStoreServer) -> None:
    """8 clients writing and reading their own records at once: every call answered, every
    record stored."""
    sm, _ = clients(served.url)
    create(sm, "busy")
    t0 = iso(time.time())
    failures: list[BaseException] = []

    def work(worker: int) -> None:
        rt = boto3.client(
            "sagemaker-featurestore-runtime", region_name="us-east-1", endpoint_url=served.url
        )
        try:
            for i in range(25):
                rid = f"w{worker}-{i}"
                rt.put_record(FeatureGroupName="busy", Record=record(rid, t0, n=str(i)))
                got = rt.get_record(FeatureGroupName="busy", RecordIdentifierValueAsString=rid)
                assert values(got)["n"] == str(i)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    rt = checked(
        boto3.client(
            "sagemaker-featurestore-runtime", region_name="us-east-1", endpoint_url=served.url
        )
    )
    ids = rt.list_records(FeatureGroupName="busy", MaxResults=100)
    assert len(ids["RecordIdentifiers"]) == 100 and ids["NextToken"]
    rest = rt.list_records(FeatureGroupName="busy", MaxResults=100, NextToken=ids["NextToken"])
    assert len(rest["RecordIdentifiers"]) == 100 and "NextToken" not in rest
