"""fsgen's own clients of ``fsgen serve`` need no invented credentials: with none configured,
a loopback endpoint gets fixed local dummy ones (and a region); real credentials and real
endpoints are left alone."""

from __future__ import annotations

import time

import pytest

from fsgen.runtime.local_aws import LOCAL_CREDENTIALS, is_loopback, local_client_kwargs
from fsgen.server import FeatureStoreServer


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


def test_loopback_endpoints_only() -> None:
    assert is_loopback("http://127.0.0.1:4510") and is_loopback("http://localhost:1")
    assert is_loopback("http://[::1]:4510") and is_loopback("http://127.8.9.10")
    assert not is_loopback("https://sagemaker.us-east-1.amazonaws.com")
    assert not is_loopback("http://10.0.0.1:4510") and not is_loopback(None)
    assert local_client_kwargs("https://sagemaker.us-east-1.amazonaws.com") == {}


def test_configured_credentials_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "mine")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "mine")
    assert local_client_kwargs("http://127.0.0.1:4510", "eu-west-1") == {"region_name": "eu-west-1"}


def test_fsgen_clients_reach_serve_without_credentials(
    served: FeatureStoreServer, no_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    from botocore.exceptions import NoCredentialsError

    from fsgen.backends.aws import clients
    from fsgen.runtime.endpoint import ENDPOINT_ENV, runtime_client
    from fsgen.stream.writers import endpoint_writer

    assert local_client_kwargs(served.url) == {**LOCAL_CREDENTIALS, "region_name": "us-east-1"}
    with pytest.raises(NoCredentialsError):  # what a plain client does: the reason for the above
        boto3.session.Session().client(  # a fresh session: no cached credentials
            "sagemaker", region_name="us-east-1", endpoint_url=served.url
        ).list_feature_groups()

    control, runtime = clients("us-east-1", served.url)
    control.create_feature_group(
        FeatureGroupName="plain",
        RecordIdentifierFeatureName="id",
        EventTimeFeatureName="t",
        FeatureDefinitions=[
            {"FeatureName": "id", "FeatureType": "String"},
            {"FeatureName": "t", "FeatureType": "String"},
        ],
        OnlineStoreConfig={"EnableOnlineStore": True},
    )
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    runtime.put_record(
        FeatureGroupName="plain",
        Record=[
            {"FeatureName": "id", "ValueAsString": "a"},
            {"FeatureName": "t", "ValueAsString": stamp},
        ],
    )
    monkeypatch.setenv(ENDPOINT_ENV, served.url)
    got = runtime_client().get_record(FeatureGroupName="plain", RecordIdentifierValueAsString="a")
    assert got["Record"][0] == {"FeatureName": "id", "ValueAsString": "a"}
    writer = endpoint_writer(served.runtime.group("plain").runtime, served.url)
    writer.put_record("plain", {"id": "b", "t": stamp})
    got = runtime.get_record(FeatureGroupName="plain", RecordIdentifierValueAsString="b")
    assert got["Record"][0] == {"FeatureName": "id", "ValueAsString": "b"}
