"""The generated Kinesis stream handler, unchanged, writing through boto3 to ``fsgen serve``
(endpoint from boto3's own AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME variable); the
record it wrote is read back with GetRecord and equals the in-process transformation."""

from __future__ import annotations

import base64
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from fsgen.bind import group_runtime
from fsgen.config import ProjectConfig
from fsgen.plan.apply import apply_plan, compute_plan
from fsgen.server import FeatureStoreServer
from fsgen.spec import ProjectSpec

REPO = Path(__file__).resolve().parents[2]
RAW = {
    "customer_id": "c-77",
    "last_updated_time": "2099-03-04T05:06:07Z",
    "birth_date": "1980-05-06",
    "membership_tier": "Prime",
    "tenure_months": 12,
    "total_spend": 1234.5,
}


def test_generated_stream_handler_writes_to_serve(
    example: tuple[ProjectConfig, ProjectSpec],
    served: FeatureStoreServer,
    aws: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config, spec = example
    apply_plan(
        config, spec, aws, compute_plan(config, spec, aws, artifacts=False), regenerate=False
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME", served.url)
    monkeypatch.syspath_prepend(str(REPO))
    for name in [m for m in sys.modules if m == "generated" or m.startswith("generated.")]:
        monkeypatch.delitem(sys.modules, name)
    try:
        handler = importlib.import_module("generated.groups.customer_features.stream_handler")
        check_handler(handler, served, spec)
    finally:  # leave no module of the repo's generated/ behind for other tests
        for name in [m for m in sys.modules if m == "generated" or m.startswith("generated.")]:
            del sys.modules[name]


def check_handler(handler: Any, served: FeatureStoreServer, spec: ProjectSpec) -> None:
    event = {
        "Records": [
            {
                "eventSource": "aws:kinesis",
                "kinesis": {
                    "sequenceNumber": "1",
                    "partitionKey": "c-77",
                    "data": base64.b64encode(json.dumps(RAW).encode()).decode(),
                },
            }
        ]
    }
    assert handler.handler(event) == {"batchItemFailures": []}
    rt = boto3.client(
        "sagemaker-featurestore-runtime", region_name="us-east-1", endpoint_url=served.url
    )
    got = rt.get_record(FeatureGroupName="customer-features", RecordIdentifierValueAsString="c-77")[
        "Record"
    ]
    runtime = group_runtime(spec.group("customer-features"))
    assert got == runtime.to_sagemaker(runtime.process(RAW))
