"""``fsgen dataset --engine athena``: the boto3 runner against a moto server over HTTP (Glue
table lookup, label upload, DDL, StartQueryExecution, polling, results, cleanup), and
GetQueryResults paging with botocore's Stubber."""

from __future__ import annotations

import json
import urllib.request

import boto3
import pandas as pd
import pytest
from botocore.stub import Stubber
from pithelpers import Row, iso, write_offline

from fsgen.config import AwsProfile
from fsgen.pit import PitError, build_dataset
from fsgen.pit.athena import AthenaRunner

T0 = 1_710_028_800 * 1_000_000
MIN = 60 * 1_000_000


def seed_results(url: str, rows: list[list[str | None]], types: list[tuple[str, str]]) -> None:
    """Queue the answers of one run on moto (its documented static-results API), which hands
    them out in StartQueryExecution order: CREATE TABLE (nothing), the query, DROP TABLE."""
    empty: dict[str, object] = {"rows": [], "column_info": []}
    result = {
        "rows": [{"Data": [{"VarCharValue": n} for n, _ in types]}]
        + [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in rows],
        "column_info": [
            {"Name": n, "Label": n, "Type": t, "Nullable": "NULLABLE"} for n, t in types
        ],
    }
    body = {"results": [empty, result, empty], "account_id": "123456789012", "region": "us-east-1"}
    request = urllib.request.Request(
        f"{url}/moto-api/static/athena/query-results",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).read()


def test_athena_engine_round_trip_on_moto(pit_project, tmp_path, moto_url, monkeypatch) -> None:
    config, spec = pit_project
    for name, value in {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    config = config.model_copy(
        update={
            "store_dir": str(tmp_path / "store"),
            "aws": AwsProfile(
                region="us-east-1",
                endpoint_url=moto_url,
                athena_output_s3_uri="s3://pit-athena/results",
            ),
        }
    )
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="pit-athena")
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    sagemaker.create_feature_group(
        FeatureGroupName="accounts",
        RecordIdentifierFeatureName="acct_id",
        EventTimeFeatureName="ts",
        FeatureDefinitions=[
            {"FeatureName": "acct_id", "FeatureType": "String"},
            {"FeatureName": "ts", "FeatureType": "String"},
        ],
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://pit-athena/offline"}},
        RoleArn="arn:aws:iam::123456789012:role/fsgen",
    )
    table = sagemaker.describe_feature_group(FeatureGroupName="accounts")["OfflineStoreConfig"][
        "DataCatalogConfig"
    ]["TableName"]

    write_offline(
        config.store_path,
        spec.group("accounts"),
        [
            Row(
                values={"acct_id": "a", "ts": iso(T0), "level": 4, "label": "x", "hist": [1]},
                event_us=T0,
                write_us=T0,
                api_us=T0,
            )
        ],
        "b0",
    )
    labels = pd.DataFrame(
        {"acct_id": ["a", "a", "b"], "ts_label": [iso(T0), iso(T0 - MIN), iso(T0)]}
    )
    local = build_dataset(config, spec, "pit-strict", labels.iloc[:1])
    seed_results(
        moto_url,
        [["0", "4"], ["1", None], ["2", None]],
        [("fsgen_row", "bigint"), ("level", "bigint")],
    )
    with pytest.raises(PitError, match=r"label row 2: .*'level' has no value"):
        build_dataset(config, spec, "pit-strict", labels, engine="athena")

    seed_results(moto_url, [["0", "4"]], [("fsgen_row", "bigint"), ("level", "bigint")])
    remote = build_dataset(config, spec, "pit-strict", labels.iloc[:1], engine="athena")
    pd.testing.assert_frame_equal(remote, local)

    athena = boto3.client("athena", region_name="us-east-1")
    queries = [
        athena.get_query_execution(QueryExecutionId=q)["QueryExecution"]["Query"]
        for q in athena.list_query_executions()["QueryExecutionIds"]
    ]
    assert (
        sum(
            q.startswith("CREATE EXTERNAL TABLE `sagemaker_featurestore`.`fsgen_labels_")
            for q in queries
        )
        == 2
    )
    assert sum(q.startswith("DROP TABLE IF EXISTS") for q in queries) == 2
    pit = [q for q in queries if "max_by" in q]
    assert len(pit) == 2 and f'"sagemaker_featurestore"."{table}"' in pit[0]
    left = boto3.client("s3", region_name="us-east-1").list_objects_v2(
        Bucket="pit-athena", Prefix="results/fsgen-labels/"
    )
    assert left.get("KeyCount", 0) == 0  # uploaded labels are removed


def test_results_are_paged_and_typed() -> None:
    client = boto3.client(
        "athena", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    meta = {
        "ColumnInfo": [
            {"Name": "fsgen_row", "Type": "bigint"},
            {"Name": "v", "Type": "double"},
            {"Name": "h", "Type": "json"},
        ]
    }

    def page(rows: list[list[str | None]], token: str | None) -> dict[str, object]:
        out: dict[str, object] = {
            "ResultSet": {
                "ResultSetMetadata": meta,
                "Rows": [
                    {"Data": [{} if v is None else {"VarCharValue": v} for v in r]} for r in rows
                ],
            }
        }
        if token:
            out["NextToken"] = token
        return out

    with Stubber(client) as stub:
        stub.add_response(
            "get_query_results",
            page([["fsgen_row", "v", "h"], ["0", "1.5", "[1,2]"]], "t1"),
            {"QueryExecutionId": "q", "MaxResults": 1000},
        )
        stub.add_response(
            "get_query_results",
            page([["1", None, None]], None),
            {"QueryExecutionId": "q", "MaxResults": 1000, "NextToken": "t1"},
        )
        rows = AthenaRunner(client, "s3://o/", "primary").results("q")
        stub.assert_no_pending_responses()
    assert rows == [{"fsgen_row": 0, "v": 1.5, "h": [1, 2]}, {"fsgen_row": 1, "v": None, "h": None}]
