"""Generated modules imported and run: the batch job, the stream handler and the inference
parser of the example and of the ride-sharing scenario."""

from __future__ import annotations

import base64
import json
import struct
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import botocore.session
import pytest
from botocore.validate import validate_parameters
from codegen_helpers import REPO, import_generated
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsgen.bind import group_runtime
from fsgen.codegen.views import snake
from fsgen.runtime.inference import MissingFeatureError, RequestError
from fsgen.runtime.pipeline import composite_identifier
from fsgen.runtime.sinks import RecordSink


class ListWriter(RecordSink):
    def __init__(self, fail_on: str | None = None) -> None:
        self.records: list[tuple[str, dict[str, object]]] = []
        self.fail_on = fail_on

    def put_records(self, group: str, records: list[dict[str, object]]) -> int:
        for record in records:
            if self.fail_on is not None and self.fail_on in record.values():
                raise ConnectionError("throttled")
            self.records.append((group, record))
        return len(records)


def kinesis_event(payloads: list[bytes]) -> dict[str, object]:
    return {
        "Records": [
            {
                "eventSource": "aws:kinesis",
                "eventID": f"shardId-000:{i}",
                "kinesis": {
                    "sequenceNumber": f"4959{i:04d}",
                    "partitionKey": "k",
                    "data": base64.b64encode(p).decode(),
                },
            }
            for i, p in enumerate(payloads)
        ]
    }


def bits(value: object) -> object:
    if isinstance(value, float):
        return struct.pack("<d", value)
    if isinstance(value, list):
        return [bits(v) for v in value]
    return value


# --------------------------------------------------------------------------- runtime literal


def test_batch_job_and_stream_handler_share_the_one_generated_runtime(example) -> None:  # type: ignore[no-untyped-def]
    _, spec = example
    for g in spec.groups:
        runtime = import_generated(f"groups.{snake(g.name)}.runtime").RUNTIME
        for kind in ("batch_job", "stream_handler"):
            assert import_generated(f"groups.{snake(g.name)}.{kind}").RUNTIME is runtime


def test_scenario_modules_import_and_their_runtimes_match(scenario) -> None:  # type: ignore[no-untyped-def]
    _, spec = scenario
    for g in spec.groups:
        module = import_generated(f"groups.{snake(g.name)}.runtime")
        assert module.RUNTIME == group_runtime(g)
    for fs in spec.feature_sets:
        parser = import_generated(f"feature_sets.{snake(fs.name)}.parser")
        assert parser.COLUMNS == fs.columns
        assert list(parser.Features.__annotations__) == list(fs.columns)


# --------------------------------------------------------------------------- batch job


def test_batch_job_writes_good_rows_and_rejects_bad_ones(example, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    job = import_generated("groups.customer_features.batch_job")
    source = tmp_path / "customers.csv"
    source.write_text(
        "customer_id,last_updated_time,birth_date,total_spend,tenure_months,membership_tier\n"
        "C1,2024-01-01T00:00:00Z,1990-05-01,1200.5,12,prime\n"
        "C2,2024-01-02T00:00:00Z,1980-01-01,oops,3,basic\n"
        "C3,2024-01-03T00:00:00.250Z,1970-12-31,10,0,Prime_Plus\n",
        encoding="utf-8",
    )
    writer = ListWriter()
    rejects = tmp_path / "out" / "rejects.jsonl"
    result = job.run(source, writer, rejects=rejects)
    assert (result.read, result.written, result.rejected) == (3, 2, 1)
    assert [r["customer_id"] for _, r in writer.records] == ["C1", "C3"]
    assert writer.records[0] == (
        "customer-features",
        {
            "customer_id": "C1",
            "last_updated_time": "2024-01-01T00:00:00Z",
            "age": 33,
            "avg_monthly_spend": 1200.5 / 12,
            "is_prime_member": 1,
        },
    )
    assert writer.records[1][1]["last_updated_time"] == "2024-01-03T00:00:00.250Z"
    (line,) = rejects.read_text(encoding="utf-8").splitlines()
    reject = json.loads(line)
    assert reject["row"] == 2 and reject["field"] == "total_spend"
    assert "expected a number" in reject["reason"] and reject["source"] == str(source)
    assert reject["record"]["customer_id"] == "C2"


def test_batch_job_reads_jsonl_and_parquet_like_csv(example, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import pyarrow as pa
    import pyarrow.parquet as pq

    job = import_generated("groups.merchant_features.batch_job")
    rows = [json.loads(x) for x in (REPO / "data/merchants.jsonl").read_text().splitlines()[:20]]
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows) + "[1, 2]\n")
    parquet = tmp_path / "m.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    a, b = ListWriter(), ListWriter()
    ra = job.run(jsonl, a)
    rb = job.run(parquet, b)
    assert a.records == b.records and len(a.records) == 20
    assert ra.samples[0].row == 21 and "expected a JSON object" in ra.samples[0].reason
    assert rb.ok


def test_batch_job_runs_with_python_m(tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.jsonl"
    output = tmp_path / "records.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "generated.groups.customer_features.batch_job",
            "data/customers_with_errors.csv",
            "--rejects",
            str(rejects),
            "--output",
            str(output),
            "--json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr  # rejects make the exit status say so
    summary = json.loads(proc.stdout)
    assert summary["rejected"] == len(rejects.read_text().splitlines()) >= 3
    assert summary["written"] == len(output.read_text().splitlines())
    assert "row 1: total_spend" in proc.stderr


def test_composite_key_batch_job(rides, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    job = import_generated("groups.driver_city_stats.batch_job")
    rows = [
        {
            "city": "Lyon",
            "driver_id": "17",
            "ts": "1700000000.5",
            "accepted": 3,
            "offered": 4,
            "completed": 3,
            "route_vector": [0.1, 0.2, 0.3, 0.4],
            "zones": ["a", "b"],
        },
        {
            "city": "Lyon",
            "driver_id": 18,
            "ts": 1700000001,
            "accepted": 1,
            "offered": 0,
            "completed": 0,
            "route_vector": [0.1, 0.2],
            "zones": [],
        },
    ]
    records, rejects = job.process_rows(rows)
    assert records[0]["driver_city_key"] == composite_identifier(["Lyon", 17])
    assert records[0]["route_embedding"] == [0.1, 0.2, 0.3, 0.4]
    assert records[0]["zones_today"] == ["A", "B"]
    (reject,) = rejects
    assert reject.row == 2 and reject.field == "route_embedding"


# --------------------------------------------------------------------------- stream handler


def test_stream_handler_reports_only_failed_records(example) -> None:  # type: ignore[no-untyped-def]
    handler = import_generated("groups.customer_features.stream_handler")
    batch = import_generated("groups.customer_features.batch_job")
    good = {
        "customer_id": "C7",
        "last_updated_time": "2024-03-01T00:01:00Z",
        "birth_date": "1985-06-15",
        "total_spend": 647.83,
        "tenure_months": 47,
        "membership_tier": "standard",
    }
    bad_field = {**good, "customer_id": "C8", "tenure_months": "many"}
    event = kinesis_event([json.dumps(good).encode(), b"{not json", json.dumps(bad_field).encode()])
    writer = ListWriter()
    result = handler.process_event(event, writer)
    assert result.written == 1
    assert [(f.sequence_number, f.field) for f in result.failures] == [
        ("49590001", "<record>"),
        ("49590002", "tenure_months"),
    ]
    assert result.response() == {
        "batchItemFailures": [{"itemIdentifier": "49590001"}, {"itemIdentifier": "49590002"}]
    }
    # one transformation, every path: the stream writes what the batch job writes
    records, _ = batch.process_rows([good])
    assert writer.records == [("customer-features", records[0])]


def test_lambda_handler_entry_point_uses_the_writer(example) -> None:  # type: ignore[no-untyped-def]
    handler = import_generated("groups.merchant_features.stream_handler")
    writer = ListWriter()
    handler._sink = writer
    raw = json.loads((REPO / "data/merchants.jsonl").read_text().splitlines()[0])
    response = handler.handler(kinesis_event([json.dumps(raw).encode()]), None)
    assert response == {"batchItemFailures": []}
    assert writer.records[0][1]["merchant_id"] == raw["merchant_id"]


def test_stream_handler_imports_neither_pandas_nor_duckdb() -> None:
    code = (
        "import sys, generated.groups.customer_features.stream_handler as h; "
        "heavy = sorted(m for m in ('pandas', 'duckdb', 'pyarrow') "
        "if m in sys.modules); print(heavy); assert not heavy, heavy"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout


# --------------------------------------------------------------------------- parser

customer_raw = st.fixed_dictionaries(
    {
        "customer_id": st.from_regex(r"C[0-9]{1,4}", fullmatch=True),
        "last_updated_time": st.datetimes(
            min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)
        ).map(
            lambda d: (
                d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z")
            )
        ),
        "birth_date": st.dates(min_value=date(1930, 1, 1), max_value=date(2005, 12, 31)).map(
            date.isoformat
        ),
        "total_spend": st.floats(min_value=0, max_value=1e9, allow_nan=False),
        "tenure_months": st.integers(min_value=-5, max_value=600),
        "membership_tier": st.sampled_from(["prime", "basic", " Prime_Plus ", "standard"]),
    }
)
merchant_raw = st.fixed_dictionaries(
    {
        "merchant_id": st.from_regex(r"M[0-9]{1,3}", fullmatch=True),
        "updated_at": st.integers(min_value=1_600_000_000_000, max_value=1_900_000_000_000).map(
            lambda ms: ms / 1000
        ),
        "mcc_description": st.text(min_size=1, max_size=12),
        "chargebacks": st.integers(min_value=0, max_value=10_000),
        "settled_amount": st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
        "transactions": st.integers(min_value=0, max_value=10**7),
    }
)


def get_record_response(runtime, record, expires_at=None):  # type: ignore[no-untyped-def]
    response = {"Record": runtime.to_sagemaker(record)}
    if expires_at is not None:
        response["ExpiresAt"] = expires_at
    return response


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    customer=customer_raw,
    merchant=merchant_raw,
    amount=st.floats(min_value=0, max_value=1e6, allow_nan=False),
)
def test_parser_round_trip_equals_the_transform_output(example, customer, merchant, amount) -> None:  # type: ignore[no-untyped-def]
    """raw -> transform -> ValueAsString -> GetRecord -> parser gives bit-identical values."""
    parser = import_generated("feature_sets.fraud_model.parser")
    cust_rt = import_generated("groups.customer_features.batch_job").RUNTIME
    merch_rt = import_generated("groups.merchant_features.batch_job").RUNTIME
    c = cust_rt.process(customer)
    m = merch_rt.process(merchant)
    request = {"customer_id": c["customer_id"], "merchant_id": m["merchant_id"], "amount": amount}
    responses = {
        "customer-features": get_record_response(cust_rt, c),
        "merchant-features": get_record_response(merch_rt, m),
    }
    now = min(cust_rt.event_seconds(c), merch_rt.event_seconds(m))  # both within TTL
    vector = parser.from_get_record(responses, request, now=now)
    from featuredefs.fraud import amount_to_monthly_spend

    expected = [
        c["age"],
        c["avg_monthly_spend"],
        c["is_prime_member"],
        m["category"],
        m["chargeback_rate"],
        m["avg_ticket"],
        m["is_high_risk"],
        amount_to_monthly_spend(amount, c["avg_monthly_spend"]),
    ]
    assert bits(vector) == bits(expected)
    assert [type(v) for v in vector] == [type(v) for v in expected]
    batch_response = {
        "Records": [
            {
                "FeatureGroupName": "customer-features",
                "RecordIdentifierValueAsString": c["customer_id"],
                "Record": responses["customer-features"]["Record"],
            },
            {
                "FeatureGroupName": "merchant-features",
                "RecordIdentifierValueAsString": m["merchant_id"],
                "Record": responses["merchant-features"]["Record"],
            },
        ],
        "Errors": [],
        "UnprocessedIdentifiers": [],
    }
    assert bits(parser.from_batch_get_record(batch_response, request, now=now)) == bits(expected)


def test_parser_honours_expires_at_ttl_and_the_default_policy(example) -> None:  # type: ignore[no-untyped-def]
    parser = import_generated("feature_sets.fraud_model.parser")
    cust_rt = import_generated("groups.customer_features.batch_job").RUNTIME
    c = cust_rt.process(
        {
            "customer_id": "C1",
            "last_updated_time": "2024-01-01T00:00:00Z",
            "birth_date": "1990-01-01",
            "total_spend": 100.0,
            "tenure_months": 4,
            "membership_tier": "prime",
        }
    )
    request = {"customer_id": "C1", "merchant_id": "M404", "amount": 50}
    t0 = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    fresh = {"customer-features": get_record_response(cust_rt, c, "2024-01-31T00:00:00Z")}
    vector = parser.from_get_record(fresh, request, now=t0 + 3600)
    # merchant record missing -> its defaults; on-demand from the request and stored value
    assert vector == [34, 25.0, 1, "unknown", 0.0, 0.0, 0, 2.0]
    assert parser.as_features(vector)["amount_to_monthly_spend"] == 2.0
    at_expiry = parser.from_get_record(fresh, request, now=t0 + 30 * 86400)
    assert at_expiry[0] == 34  # exactly TTL old still counts, as in the store and datasets
    expired = parser.from_get_record(fresh, request, now=t0 + 30 * 86400 + 0.001)
    assert expired == [-1, 0.0, 0, "unknown", 0.0, 0.0, 0, 0.0]
    # without ExpiresAt in the response the group's TTL (30d) from the event time applies
    no_expiry = {"customer-features": get_record_response(cust_rt, c)}
    assert parser.from_get_record(no_expiry, request, now=t0 + 29 * 86400)[0] == 34
    assert parser.from_get_record(no_expiry, request, now=t0 + 30 * 86400)[0] == 34
    assert parser.from_get_record(no_expiry, request, now=t0 + 30 * 86400 + 1)[0] == -1
    with pytest.raises(RequestError, match="amount"):
        parser.from_get_record(fresh, {"customer_id": "C1", "merchant_id": "M1"}, now=t0)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(customer=customer_raw, other=st.from_regex(r"C[0-9]{1,4}", fullmatch=True))
def test_parser_refuses_responses_it_would_read_as_missing(example, customer, other) -> None:  # type: ignore[no-untyped-def]
    """A response keyed by a name that is no group of the set, or holding another entity's
    record than the request names, is an error, never a missing record under the policy."""
    parser = import_generated("feature_sets.fraud_model.parser")
    cust_rt = import_generated("groups.customer_features.batch_job").RUNTIME
    c = cust_rt.process(customer)
    response = get_record_response(cust_rt, c)
    request = {"customer_id": c["customer_id"], "merchant_id": "M1", "amount": 1.0}
    now = cust_rt.event_seconds(c)
    parser.from_get_record({"customer-features": response}, request, now=now)  # accepted
    with pytest.raises(RequestError, match="'customer-feature' is no group of feature set"):
        parser.from_get_record({"customer-feature": response}, request, now=now)
    mixed = {**request, "customer_id": other}
    if other != c["customer_id"]:
        with pytest.raises(RequestError, match="is the record of"):
            parser.from_get_record({"customer-features": response}, mixed, now=now)


def test_parser_composite_keys_error_policy_and_batch_get_request(rides) -> None:  # type: ignore[no-untyped-def]
    parser = import_generated("feature_sets.dispatch_model.parser")
    drivers = import_generated("groups.driver_city_stats.batch_job").RUNTIME
    riders = import_generated("groups.rider_profile.batch_job").RUNTIME
    d = drivers.process(
        {
            "city": "Lyon",
            "driver_id": 17,
            "ts": 1700000000.0,
            "accepted": 3,
            "offered": 4,
            "completed": 9,
            "route_vector": [1, 2, 3, 4.5],
            "zones": ["x"],
        }
    )
    r = riders.process(
        {
            "rider_id": "R1",
            "updated": "2023-11-14T22:13:20Z",
            "rating_sum": 9.5,
            "rating_count": 2,
            "rides": 1,
        }
    )
    request = {"city": "Lyon", "driver_id": "17", "rider_id": "R1", "fare": 20.0}
    params = parser.batch_get_request(request)
    shape = (
        botocore.session.get_session()
        .get_service_model("sagemaker-featurestore-runtime")
        .operation_model("BatchGetRecord")
        .input_shape
    )
    validate_parameters(params, shape)
    ids = {
        i["FeatureGroupName"]: i["RecordIdentifiersValueAsString"] for i in params["Identifiers"]
    }
    names = {i["FeatureGroupName"]: i["FeatureNames"] for i in params["Identifiers"]}
    assert names == {
        "driver-city-stats": ["ts", "trips_today", "acceptance_rate", "route_embedding"],
        "rider-profile": ["updated", "rider_rating", "is_new_rider"],
    }
    assert ids == {"driver-city-stats": [d["driver_city_key"]], "rider-profile": ["R1"]}
    response = {
        "Records": [
            {
                "FeatureGroupName": "driver-city-stats",
                "RecordIdentifierValueAsString": d["driver_city_key"],
                "Record": drivers.to_sagemaker(d),
                "ExpiresAt": "2023-11-15T04:13:20Z",
            },
            {
                "FeatureGroupName": "rider-profile",
                "RecordIdentifierValueAsString": "R1",
                "Record": riders.to_sagemaker(r),
            },
        ]
    }
    now = 1700000000.0 + 60
    vector = parser.from_batch_get_record(response, request, now=now)
    assert vector == [9, 0.75, [1.0, 2.0, 3.0, 4.5], 4.75, 1, 20.0 * (0.5 + 0.75 / 2)]
    with pytest.raises(MissingFeatureError, match=r"feature 'trips_today' is missing"):
        parser.from_batch_get_record(response, request, now=now + 7 * 3600)
    with pytest.raises(RequestError, match="driver_id"):
        parser.batch_get_request({"city": "Lyon", "rider_id": "R1"})
    assert timedelta(hours=6).total_seconds() == drivers.ttl_seconds


def test_batch_job_default_writer_is_the_projects_local_store(
    tmp_path: Path, deploy: Callable[[Path], None]
) -> None:
    """`python -m` without --output/--dry-run writes to the configured backend (local store)."""
    import shutil

    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "featuredefs", "generated", "data"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, project / name)
    deploy(project)  # records go only to deployed groups
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "generated.groups.customer_features.batch_job",
            "data/customers_with_errors.csv",
            "--json",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["written"] == summary["valid"] == summary["read"] - summary["rejected"] >= 1
    code = (
        "from fsgen.loader import load_with_config; from fsgen.store import LocalStore; "
        "c, s = load_with_config('.'); "
        "print(len(LocalStore.open(c, s).read_offline('customer-features')))"
    )
    check = subprocess.run(
        [sys.executable, "-c", code], cwd=project, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stderr
    assert int(check.stdout.strip()) == summary["written"]
