"""The I/O edges of generated jobs: s3:// sources (moto server over HTTP), PutRecord requests
(botocore Stubber validates them against the service model), malformed CSV rows, and the
batch/stream parity of one transformation."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from codegen_helpers import import_generated
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsgen.runtime.sinks import PutRecordSink, RecordSink
from fsgen.runtime.sources import SourceError, read_source


def test_batch_job_reads_an_s3_source(example, moto_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    env = {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="raw-data")
    body = (
        "customer_id,last_updated_time,birth_date,total_spend,tenure_months,membership_tier\n"
        "C1,2024-01-01T00:00:00Z,1990-05-01,1200.5,12,prime\n"
        "C2,2024-01-01T00:00:00Z,1990-05-01,x,12,prime\n"
    )
    s3.put_object(Bucket="raw-data", Key="in/customers.csv", Body=body.encode())
    job = import_generated("groups.customer_features.batch_job")
    rejects: list[object] = []
    result = job.run("s3://raw-data/in/customers.csv", None, rejects=rejects)
    assert (result.read, result.valid, result.rejected) == (2, 1, 1)
    assert (
        rejects == result.samples and result.samples[0].source == "s3://raw-data/in/customers.csv"
    )
    with pytest.raises(SourceError, match="not an s3://bucket/key"):
        list(read_source("s3://raw-data", fmt="csv"))


def test_csv_rows_with_the_wrong_number_of_values_are_rejected(tmp_path: Path) -> None:
    source = tmp_path / "x.csv"
    source.write_text("a,b\n1,2\n1,2,3\n1\n4,5\n", encoding="utf-8")
    (chunk,) = list(read_source(source))
    assert [(r.row, r.reason) for r in chunk.rejected] == [
        (2, "row has 3 values but the header has 2 columns"),
        (3, "row has 1 values but the header has 2 columns"),
    ]
    assert chunk.rows == 2 and [chunk.row_number(i) for i in range(2)] == [1, 4]
    assert chunk.columns == {"a": ["1", "4"], "b": ["2", "5"]}
    with pytest.raises(SourceError, match="no such file"):
        list(read_source(tmp_path / "missing.csv"))


def _runtime_client() -> object:
    return boto3.client(
        "sagemaker-featurestore-runtime",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def test_put_record_writer_sends_valid_put_record_requests(rides) -> None:  # type: ignore[no-untyped-def]
    handler = import_generated("groups.driver_city_stats.stream_handler")
    client = _runtime_client()
    writer = PutRecordSink({"driver-city-stats": handler.RUNTIME}, client=client)
    raw = {
        "city": "Lyon",
        "driver_id": 7,
        "ts": 1700000000.25,
        "accepted": 1,
        "offered": 2,
        "completed": 5,
        "route_vector": [0.5, 1, 2, 3],
        "zones": ["n1"],
    }
    expected_record = [
        {"FeatureName": "driver_city_key", "ValueAsString": "4:Lyon;1:7;"},
        {"FeatureName": "city", "ValueAsString": "Lyon"},
        {"FeatureName": "driver_id", "ValueAsString": "7"},
        {"FeatureName": "ts", "ValueAsString": "1700000000.25"},
        {"FeatureName": "trips_today", "ValueAsString": "5"},
        {"FeatureName": "acceptance_rate", "ValueAsString": "0.5"},
        {"FeatureName": "route_embedding", "ValueAsStringList": ["0.5", "1.0", "2.0", "3.0"]},
        {"FeatureName": "zones_today", "ValueAsStringList": ["N1"]},
    ]
    with Stubber(client) as stub:  # type: ignore[arg-type]
        stub.add_response(
            "put_record", {}, {"FeatureGroupName": "driver-city-stats", "Record": expected_record}
        )
        event = {
            "Records": [
                {
                    "kinesis": {
                        "sequenceNumber": "1",
                        "data": base64.b64encode(json.dumps(raw).encode()).decode(),
                    }
                }
            ]
        }
        result = handler.process_event(event, writer)
        stub.assert_no_pending_responses()
    assert result.written == 1 and result.failures == []


def test_failed_put_record_is_reported_for_retry(rides) -> None:  # type: ignore[no-untyped-def]
    handler = import_generated("groups.rider_profile.stream_handler")
    client = _runtime_client()
    writer = PutRecordSink({"rider-profile": handler.RUNTIME}, client=client)
    raw = {
        "rider_id": "R1",
        "updated": "2024-01-01T00:00:00Z",
        "rating_sum": 4.0,
        "rating_count": 1,
        "rides": 10,
    }
    event = {
        "Records": [
            {
                "kinesis": {
                    "sequenceNumber": "77",
                    "data": base64.b64encode(json.dumps(raw).encode()).decode(),
                }
            }
        ]
    }
    with Stubber(client) as stub:  # type: ignore[arg-type]
        stub.add_client_error(
            "put_record", service_error_code="ThrottlingException", http_status_code=400
        )
        response = handler.process_event(event, writer).response()
    assert response == {"batchItemFailures": [{"itemIdentifier": "77"}]}


class Collect(RecordSink):
    def __init__(self) -> None:
        self.records: list[dict[str, object]] = []

    def put_records(self, group: str, records: list[dict[str, object]]) -> int:
        self.records.extend(records)
        return len(records)


raw_customers = st.lists(
    st.fixed_dictionaries(
        {
            "customer_id": st.text(min_size=1, max_size=8).filter(lambda s: s.strip() == s and s),
            "last_updated_time": st.sampled_from(
                [
                    "2024-01-01T00:00:00Z",
                    "2024-02-29T23:59:59.999Z",
                    "2023-06-01T12:00:00+02:00",
                    "not a time",
                ]
            ),
            "birth_date": st.sampled_from(["1990-01-01", "2000-02-29", "1985-13-01", ""]),
            "total_spend": st.one_of(
                st.floats(allow_nan=False, allow_infinity=False),
                st.sampled_from(["12.5", "oops", None]),
            ),
            "tenure_months": st.one_of(st.integers(-3, 500), st.sampled_from(["7", "x"])),
            "membership_tier": st.sampled_from(["prime", "basic", "PRIME_PLUS "]),
        }
    ),
    max_size=8,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=raw_customers)
def test_stream_and_batch_write_identical_records(example, rows) -> None:  # type: ignore[no-untyped-def]
    """DESIGN semantics 1: the same raw records give the same stored records and the same
    rejected positions on the batch and the stream path."""
    batch = import_generated("groups.customer_features.batch_job")
    stream = import_generated("groups.customer_features.stream_handler")
    records, rejects = batch.process_rows(rows)
    collected = Collect()
    event = {
        "Records": [
            {
                "kinesis": {
                    "sequenceNumber": str(i + 1),
                    "data": base64.b64encode(json.dumps(r).encode()).decode(),
                }
            }
            for i, r in enumerate(rows)
        ]
    }
    result = stream.process_event(event, collected)
    assert collected.records == records
    assert [f.sequence_number for f in result.failures] == [str(r.row) for r in rejects]
    assert [f.field for f in result.failures] == [r.field for r in rejects]
