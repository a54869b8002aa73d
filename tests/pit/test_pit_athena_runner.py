"""``fsgen dataset --engine athena``: the boto3 runner against a moto server over HTTP (Glue
table lookup, label upload, DDL, StartQueryExecution, polling, results, cleanup), with the very
statements it sends executed on DuckDB and PostgreSQL, and GetQueryResults paging with
botocore's Stubber.

moto runs no SQL: each run's answer is what DuckDB or PostgreSQL returned for the runner's
query, rendered as Athena's GetQueryResults text and queued on moto before the run; after the
run the test requires that the statements moto received are exactly the ones executed.
"""

from __future__ import annotations

import json
import math
import struct
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import boto3
import pandas as pd
import pytest
from botocore.stub import Stubber
from pithelpers import Row, iso, write_offline
from sqlengines import Table, athena_text, athena_type, execute, group_tables, validate_trino

from fsgen.config import AwsProfile
from fsgen.pit import PitError, build_dataset, finish, plan_for
from fsgen.pit.athena_runner import (
    AthenaRunner,
    athena_job,
    athena_stored_values,
    cell_value,
    label_table,
    offline_table,
    to_arrow,
)
from fsgen.pit.labels import read_labels
from fsgen.ttl_history import TtlChange
from fsgen.types import Fractional, Integral, List

T0 = 1_710_028_800 * 1_000_000
MIN = 60 * 1_000_000
GROUPS = {
    "accounts": ("acct_id", "ts", "String"),
    "pairs": ("pair_key", "at", "Fractional"),
    "duals": ("dual_key", "et", "String"),
}


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


@pytest.fixture
def aws(pit_project, tmp_path, moto_url, monkeypatch) -> Iterator[tuple[object, object]]:
    """The project pointed at moto for Athena, S3 and Glue, and at ``fsgen serve`` for
    SageMaker (moto's ListTags knows no feature groups; the runner reads each group's TTL
    history tag with it), with the three groups created there."""
    from fsgen.server import serve_in_thread

    config, spec = pit_project
    served = serve_in_thread(
        config.model_copy(update={"store_dir": str(tmp_path / "serve")}), spec, port=0
    )
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
                endpoint_url=served.url,
                athena_output_s3_uri="s3://pit-athena/results",
            ),
        }
    )
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="pit-athena")
    sagemaker = boto3.client("sagemaker", region_name="us-east-1", endpoint_url=served.url)
    for group, (identifier, event, kind) in GROUPS.items():
        sagemaker.create_feature_group(
            FeatureGroupName=group,
            RecordIdentifierFeatureName=identifier,
            EventTimeFeatureName=event,
            FeatureDefinitions=[
                {"FeatureName": identifier, "FeatureType": "String"},
                {"FeatureName": event, "FeatureType": kind},
            ],
            OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://pit-athena/offline"}},
            RoleArn="arn:aws:iam::123456789012:role/fsgen",
        )
    try:
        yield config, spec
    finally:
        served.shutdown()
        served.server_close()
        served.runtime.store.close()


def sent_queries() -> list[str]:
    athena = boto3.client("athena", region_name="us-east-1")
    return [
        athena.get_query_execution(QueryExecutionId=q)["QueryExecution"]["Query"]
        for q in athena.list_query_executions()["QueryExecutionIds"]
    ]


def run_through_engine(
    config: object,
    spec: object,
    frame: pd.DataFrame,
    engine: str,
    postgres: object,
    run_id: str,
    moto_url: str,
    knowledge_time: bool = False,
    ttl_history: dict[str, tuple[TtlChange, ...]] | None = None,
) -> pd.DataFrame:
    """The runner's statements built as the runner builds them, checked by the Trino
    validator, the query executed on ``engine``, its answer queued on moto, then the runner
    run for real; returns its dataset after checking moto received exactly those statements."""
    plan = plan_for(spec, "pit-set", ttl_history)  # type: ignore[arg-type]
    rows = read_labels(frame, plan)
    sagemaker = boto3.client(
        "sagemaker",
        region_name="us-east-1",
        endpoint_url=config.aws.endpoint_url,  # type: ignore[attr-defined]
    )
    tables = {j.group.name: offline_table(sagemaker, j.group.name) for j in plan.joins}
    job = athena_job(
        spec,  # type: ignore[arg-type]
        plan,
        rows,
        tables,
        database="sagemaker_featurestore",
        location=f"s3://pit-athena/results/fsgen-labels/{run_id}/",
        run_id=run_id,
        knowledge_time=knowledge_time,
    )
    validate_trino(job.query)
    validate_trino(job.ddl, "hive")
    validate_trino(job.drop, "hive")
    answer = execute(
        engine,  # type: ignore[arg-type]
        postgres,  # type: ignore[arg-type]
        job.query,
        [
            Table("sagemaker_featurestore", job.labels_table, label_table(plan, rows)),
            *group_tables(spec, plan, config.store_path, {g: t for g, (_, t) in tables.items()}),  # type: ignore[attr-defined]
        ],
    )
    seed_results(
        moto_url,
        [[athena_text(v) for v in row.values()] for row in answer.to_pylist()],
        [(f.name, athena_type(f)) for f in answer.schema],
    )
    stored = athena_stored_values(
        config,
        spec,
        plan,
        rows,
        knowledge_time,
        poll_seconds=0.01,
        run_id=run_id,  # type: ignore[arg-type]
    )
    assert [q for q in sent_queries() if run_id in q] == list(job.statements)
    return finish(plan, rows, stored)


def bits(values: object) -> list[object]:
    """Values with each double as its IEEE bits, so -0.0 and 0.0 differ."""
    out: list[object] = []
    for v in values:  # type: ignore[attr-defined]
        if isinstance(v, float):
            out.append(struct.pack(">d", v))
        elif isinstance(v, list):
            out.append(bits(v))
        elif v is None or v is pd.NA:
            out.append(None)
        else:
            out.append(v)
    return out


def test_runner_statements_run_on_both_engines(aws, sql_engine, moto_url) -> None:
    """Sub-millisecond label times at a TTL edge, collections through the result conversion,
    signed zeros, lowercase t/z and datetimes with mixed offsets, label order."""
    config, spec = aws
    engine, postgres = sql_engine
    e = T0 + 10 * MIN + 7000  # 00:10:00.007Z
    ttl = 3600 * 1_000_000
    write_offline(
        config.store_path,
        spec.group("accounts"),
        [
            Row({"acct_id": "a", "ts": iso(e), "level": 4, "label": "x", "hist": [1, -2]}, e, e, e),
            Row({"acct_id": "b", "ts": iso(e), "level": 5, "label": "y", "hist": []}, e, e, e),
        ],
        "b0",
    )
    write_offline(
        config.store_path,
        spec.group("pairs"),
        [Row({"pair_key": "1x", "p": 1, "q": "x", "at": T0 / 1e6, "x": -0.0}, T0, T0, T0)],
        "b0",
    )
    edge = datetime(2024, 3, 10, 1, 10, 0, 7000, tzinfo=UTC)  # e + TTL exactly
    frame = pd.DataFrame(
        {
            "acct_id": ["a", "a", "b", "a", "zz"],
            "p": [1, 1, 1, 1, 1],
            "q": ["x"] * 5,
            "lu": ["u"] * 5,
            "lv": ["v"] * 5,
            "ts_label": [
                "2024-03-10T01:10:00.007000Z",  # exactly TTL old: counts
                "2024-03-10T01:10:00.007001Z",  # 1 µs older than the TTL: gone
                "2024-03-10t01:10:00.007z",
                edge.astimezone(timezone(timedelta(hours=5, minutes=30))),
                edge - timedelta(microseconds=1),
            ],
            "amount": [1.0, 2.0, 3.0, 4.0, 5.0],
            "target": [0, 1, 0, 1, 0],
        }
    )
    frame["ts_label"] = frame["ts_label"].astype(object)
    local = build_dataset(config, spec, "pit-set", frame)
    assert [None if pd.isna(v) else int(v) for v in local["level"]] == [4, None, 5, 4, None]
    assert local["hist"].tolist()[:3] == [[1, -2], None, []]
    assert [struct.pack(">d", v) for v in local["x"]] == [struct.pack(">d", -0.0)] * 5
    remote = run_through_engine(config, spec, frame, engine, postgres, f"r{engine}", moto_url)
    pd.testing.assert_frame_equal(remote, local)
    for column in ("x", "hist", "combo"):
        assert bits(remote[column]) == bits(local[column]), column
    assert e + ttl == int(edge.timestamp()) * 1_000_000 + 7000


def test_runner_knowledge_time_keeps_signed_zero(aws, sql_engine, moto_url) -> None:
    config, spec = aws
    engine, postgres = sql_engine
    write_offline(
        config.store_path,
        spec.group("pairs"),
        [
            Row({"pair_key": "1x", "p": 1, "q": "x", "at": T0 / 1e6, "x": -0.0}, T0, T0, T0),
            Row(
                {"pair_key": "1x", "p": 1, "q": "x", "at": T0 / 1e6 + 1, "x": 2.5},
                T0 + 10**6,
                T0 + 9 * MIN,
                T0 + 9 * MIN,
            ),
        ],
        "b0",
    )
    frame = pd.DataFrame(
        {
            "acct_id": "a",
            "p": 1,
            "q": "x",
            "lu": "u",
            "lv": "v",
            "amount": 1.0,
            "target": 0,
            "ts_label": [iso(T0 + MIN), iso(T0 + 10 * MIN)],
        }
    )
    local = build_dataset(config, spec, "pit-set", frame, knowledge_time=True)
    assert bits(local["x"]) == bits([-0.0, 2.5])
    remote = run_through_engine(
        config, spec, frame, engine, postgres, f"k{engine}", moto_url, knowledge_time=True
    )
    assert bits(remote["x"]) == bits([-0.0, 2.5])
    pd.testing.assert_frame_equal(remote, local)


def test_runner_reads_the_ttl_history_tag(aws, moto_url) -> None:
    """The runner reads each group's ``fsgen:ttl-history`` tag (ListTags) and its query judges
    a record by the TTL in force at its write: written under 2h, it is live 90 minutes on
    although the group's TTL is 1h now; one written after the change is not."""
    from fsgen.ttl_history import TAG

    config, spec = aws
    change = TtlChange(T0 + MIN, 7200, 3600)
    sagemaker = boto3.client(
        "sagemaker", region_name="us-east-1", endpoint_url=config.aws.endpoint_url
    )
    arn = sagemaker.describe_feature_group(FeatureGroupName="accounts")["FeatureGroupArn"]
    value = f"{change.at_micros}=7200:3600"
    sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": TAG, "Value": value}])
    rows = [  # api_invocation_time before / after the change
        Row({"acct_id": "a", "ts": iso(T0), "level": 4, "label": "x", "hist": [1]}, T0, T0, T0),
        Row(
            {"acct_id": "b", "ts": iso(T0), "level": 5, "label": "y", "hist": []},
            T0,
            T0 + 2 * MIN,
            T0 + 2 * MIN,
        ),
    ]
    write_offline(config.store_path, spec.group("accounts"), rows, "b0")
    frame = pd.DataFrame(
        {
            "acct_id": ["a", "b"],
            "p": [None, None],
            "q": [None, None],
            "lu": [None, None],
            "lv": [None, None],
            "ts_label": [iso(T0 + 90 * MIN)] * 2,
            "amount": [1.0, 1.0],
            "target": [1, 0],
        }
    )
    remote = run_through_engine(
        config, spec, frame, "duckdb", None, "ttl", moto_url, ttl_history={"accounts": (change,)}
    )
    assert remote["level"].tolist()[0] == 4 and pd.isna(remote["level"].tolist()[1])


def test_missing_values_and_null_label_times_through_moto(aws, moto_url) -> None:
    config, spec = aws
    e = T0
    write_offline(
        config.store_path,
        spec.group("accounts"),
        [Row({"acct_id": "a", "ts": iso(e), "level": 4, "label": "x", "hist": [1]}, e, e, e)],
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

    queries = sent_queries()
    pit = [q for q in queries if "row_number()" in q]
    sagemaker = boto3.client(
        "sagemaker", region_name="us-east-1", endpoint_url=config.aws.endpoint_url
    )
    table = offline_table(sagemaker, "accounts")[1]
    assert f'"sagemaker_featurestore"."{table}"' in pit[-1]
    assert "offline store table>" not in pit[-1]
    # a null label time is refused before anything is sent, as the local engine refuses it
    before = len(queries)
    nulls = labels.assign(ts_label=[iso(T0), None, iso(T0)])
    for engine in ("local", "athena"):
        with pytest.raises(PitError, match=r"label row 2: label time 'ts_label' is empty"):
            build_dataset(config, spec, "pit-strict", nulls, engine=engine)  # type: ignore[arg-type]
    assert len(sent_queries()) == before
    left = boto3.client("s3", region_name="us-east-1").list_objects_v2(
        Bucket="pit-athena", Prefix="results/fsgen-labels/"
    )
    assert left.get("KeyCount", 0) == 0  # uploaded labels are removed


def test_results_are_paged_and_converted_by_declared_type() -> None:
    client = boto3.client(
        "athena", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    meta = {
        "ColumnInfo": [
            {"Name": "fsgen_row", "Type": "bigint"},
            {"Name": "v", "Type": "double"},
            {"Name": "h", "Type": "varchar"},  # json_format output, as Athena types it
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
            page([["fsgen_row", "v", "h"], ["0", "-0.0", "[1,2]"]], "t1"),
            {"QueryExecutionId": "q", "MaxResults": 1000},
        )
        stub.add_response(
            "get_query_results",
            page([["1", None, None]], None),
            {"QueryExecutionId": "q", "MaxResults": 1000, "NextToken": "t1"},
        )
        rows = AthenaRunner(client, "s3://o/", "primary").results("q")
        stub.assert_no_pending_responses()
    assert rows == [
        {"fsgen_row": "0", "v": "-0.0", "h": "[1,2]"},
        {"fsgen_row": "1", "v": None, "h": None},
    ]
    assert cell_value(List(Integral), "[1,2]") == [1, 2]
    doubles = cell_value(List(Fractional), "[-0,1.5,NaN]")
    assert struct.pack(">d", doubles[0]) == struct.pack(">d", -0.0)  # type: ignore[index]
    assert math.isnan(doubles[2])  # type: ignore[index]


def test_result_conversion_checks_row_order(pit_project) -> None:
    _, spec = pit_project
    plan = plan_for(spec, "pit-strict")
    table = to_arrow(plan, 2, [{"fsgen_row": "0", "level": "3"}, {"fsgen_row": "1", "level": None}])
    assert table.column("level").to_pylist() == [3, None]
    with pytest.raises(PitError, match="not in label order"):
        to_arrow(plan, 2, [{"fsgen_row": "1", "level": "3"}, {"fsgen_row": "0", "level": None}])


def _without_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_local_endpoints_need_no_credentials(aws, moto_url, monkeypatch, tmp_path) -> None:
    """SageMaker at ``fsgen serve`` (endpoint_url) and Athena / S3 at a loopback endpoint
    (AWS_ENDPOINT_URL): the runner's clients get the local dummy credentials, as every other
    fsgen client of a loopback endpoint does."""
    config, spec = aws
    _without_credentials(monkeypatch, tmp_path)
    e = T0
    write_offline(
        config.store_path,
        spec.group("accounts"),
        [Row({"acct_id": "a", "ts": iso(e), "level": 4, "label": "x", "hist": [1]}, e, e, e)],
        "b0",
    )
    labels = pd.DataFrame({"acct_id": ["a"], "ts_label": [iso(T0)]})
    seed_results(moto_url, [["0", "4"]], [("fsgen_row", "bigint"), ("level", "bigint")])
    remote = build_dataset(config, spec, "pit-strict", labels, engine="athena")
    pd.testing.assert_frame_equal(remote, build_dataset(config, spec, "pit-strict", labels))


def test_athena_without_credentials_says_endpoint_url_is_sagemakers_only(
    aws, monkeypatch, tmp_path
) -> None:
    """endpoint_url names ``fsgen serve``, which has no Athena: without credentials the error
    says Athena and S3 need them, not to set the endpoint_url that is already set."""
    config, spec = aws
    _without_credentials(monkeypatch, tmp_path)
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    labels = pd.DataFrame({"acct_id": ["a"], "ts_label": [iso(T0)]})
    with pytest.raises(PitError) as info:
        build_dataset(config, spec, "pit-strict", labels, engine="athena")
    message = str(info.value)
    assert "Athena" in message and "credentials" in message
    assert config.aws.endpoint_url in message and "SageMaker" in message
