"""``fsgen serve``'s PutRecord refuses a record over 350 KB with a ValidationError in
SageMaker's words (a sentence, no reject field tag) that names what a batch reject or a stream
dead letter of it names: the feature whose value alone is over the limit, or the record and
its largest feature when only the sum is."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError
from serverlib import clients

from fsgen.server import FeatureStoreServer

LIMIT = "a SageMaker record holds at most 358,400 (350 KB): not written"


@pytest.mark.parametrize(
    ("body", "summary", "message"),
    [
        (
            "é" * 179_200,  # 179,200 characters, 358,400 bytes: with its name, over
            "short",
            f"Feature body alone is 358,404 bytes (its name and value in UTF-8); {LIMIT}",
        ),
        (
            "y" * 179_200,
            "y" * 179_200,
            "Record is 358,435 bytes (the largest feature: summary, 179,207); " + LIMIT,
        ),
    ],
)
def test_put_record_over_350_kb_names_the_field_batch_and_stream_name(
    served: FeatureStoreServer, body: str, summary: str, message: str
) -> None:
    sm, rt = clients(served.url)
    sm.create_feature_group(
        FeatureGroupName="docs",
        RecordIdentifierFeatureName="id",
        EventTimeFeatureName="t",
        FeatureDefinitions=[
            {"FeatureName": n, "FeatureType": "String"} for n in ("id", "t", "body", "summary")
        ],
        OnlineStoreConfig={"EnableOnlineStore": True},
    )
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    values = {"id": "a", "t": now, "body": body, "summary": summary}
    with pytest.raises(ClientError) as info:
        rt.put_record(
            FeatureGroupName="docs",
            Record=[{"FeatureName": k, "ValueAsString": v} for k, v in values.items()],
        )
    error = info.value.response["Error"]
    assert (error["Code"], error["Message"]) == ("ValidationError", message)
    assert "Record" not in rt.get_record(FeatureGroupName="docs", RecordIdentifierValueAsString="a")
