"""Property, through boto3 and HTTP: for any sequence of PutRecords to one identifier, GetRecord
returns the record with the greatest event time (ties: the later put), with every value's
``ValueAsString`` exactly as it was put (floats round-trip bit for bit)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import boto3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsgen.config import ProjectConfig
from fsgen.plan.apply import apply_plan, compute_plan
from fsgen.server import FeatureStoreServer
from fsgen.spec import ProjectSpec

_ids = itertools.count()
BASE = 4_070_908_800  # 2099-01-01: never expired by the group's 30-day TTL

puts = st.lists(
    st.tuples(
        st.integers(0, 5),  # event time offset in days (collisions are ties)
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from([0, 1]),
    ),
    min_size=1,
    max_size=6,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sequence=puts)
def test_latest_record_wins_and_values_round_trip(
    example: tuple[ProjectConfig, ProjectSpec],
    served: FeatureStoreServer,
    aws: Any,
    sequence: list[tuple[int, int, float, int]],
) -> None:
    config, spec = example
    if not aws.deployed():
        apply_plan(
            config, spec, aws, compute_plan(config, spec, aws, artifacts=False), regenerate=False
        )
    rt = boto3.client(
        "sagemaker-featurestore-runtime", region_name="us-east-1", endpoint_url=served.url
    )
    record_id = f"c-{next(_ids)}"
    expected: dict[str, str] | None = None
    best = -1
    for days, age, spend, prime in sequence:
        when = datetime.fromtimestamp(BASE + days * 86400, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        record = {
            "customer_id": record_id,
            "last_updated_time": when,
            "age": str(age),
            "avg_monthly_spend": repr(spend),
            "is_prime_member": str(prime),
        }
        rt.put_record(
            FeatureGroupName="customer-features",
            Record=[{"FeatureName": k, "ValueAsString": v} for k, v in record.items()],
        )
        if days >= best:  # the oracle: greatest event time, ties go to the later put
            best, expected = days, record
    got = rt.get_record(
        FeatureGroupName="customer-features", RecordIdentifierValueAsString=record_id
    )
    assert {f["FeatureName"]: f["ValueAsString"] for f in got["Record"]} == expected
