"""Fuzzing ``fsgen serve``'s request bodies: random bytes, and valid requests with any part
replaced by any JSON value. Every answer is a well-formed AWS error or a success -- never a
500, never a dropped connection -- and what is stored can always be read back."""

from __future__ import annotations

import http.client
import json
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serverlib import REPO, clients, stop

from fsgen.config import load_config
from fsgen.loader import load
from fsgen.server import FeatureStoreServer, serve_in_thread

AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/sagemaker/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
)
T0 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
DEFS = [
    {"FeatureName": "id", "FeatureType": "String"},
    {"FeatureName": "t", "FeatureType": "String"},
    {"FeatureName": "n", "FeatureType": "Integral"},
    {"FeatureName": "x", "FeatureType": "Fractional"},
    {
        "FeatureName": "v",
        "FeatureType": "Fractional",
        "CollectionType": "Vector",
        "CollectionConfig": {"VectorConfig": {"Dimension": 2}},
    },
]
PUT = {
    "Record": [
        {"FeatureName": "id", "ValueAsString": "r"},
        {"FeatureName": "t", "ValueAsString": T0},
        {"FeatureName": "n", "ValueAsString": "1"},
        {"FeatureName": "x", "ValueAsString": "0.5"},
        {"FeatureName": "v", "ValueAsStringList": ["1", "2"]},
    ],
    "TtlDuration": {"Unit": "Hours", "Value": 1},
}
BATCH_GET = {"Identifiers": [{"FeatureGroupName": "g", "RecordIdentifiersValueAsString": ["r"]}]}
CREATE = {
    "FeatureGroupName": "fuzzed",
    "RecordIdentifierFeatureName": "id",
    "EventTimeFeatureName": "t",
    "FeatureDefinitions": DEFS,
    "OnlineStoreConfig": {"EnableOnlineStore": True},
}
ANSWERS = {200, 400, 403, 404, 409}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureStoreServer]:
    root = tmp_path_factory.mktemp("fuzz") / "example"
    root.mkdir()
    shutil.copytree(
        REPO / "featuredefs", root / "featuredefs", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    server = serve_in_thread(load_config(root), load(root), port=0)
    sm, _ = clients(server.url)
    sm.create_feature_group(**{**CREATE, "FeatureGroupName": "g"})
    try:
        yield server
    finally:
        stop(server)


def send(
    server: FeatureStoreServer, method: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, Any]:
    host, port = server.server_address[:2]
    con = http.client.HTTPConnection(str(host), int(port), timeout=30)
    try:
        con.request(method, path, body=body, headers={"Authorization": AUTH, **headers})
        response = con.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else {}
    finally:
        con.close()


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out.extend(paths(item, (*prefix, i)))
    return out


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new
    return copy


TARGETS = [
    ("PUT", "/FeatureGroup/g", PUT, {"Content-Type": "application/json"}),
    ("POST", "/BatchGetRecord", BATCH_GET, {"Content-Type": "application/json"}),
    (
        "POST",
        "/",
        CREATE,
        {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "SageMaker.CreateFeatureGroup",
        },
    ),
]
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(target=st.sampled_from(TARGETS), body=st.binary(max_size=200))
def test_random_bytes(server: FeatureStoreServer, target: Any, body: bytes) -> None:
    method, path, _, headers = target
    status, answer = send(server, method, path, body, headers)
    assert status in ANSWERS, answer


@FUZZ
@given(target=st.sampled_from(TARGETS), data=st.data(), new=json_values)
def test_any_part_of_a_valid_request_replaced(
    server: FeatureStoreServer, target: Any, data: st.DataObject, new: Any
) -> None:
    method, path, valid, headers = target
    where = data.draw(st.sampled_from(paths(valid)))
    body = replaced(valid, where, new)
    status, answer = send(server, method, path, json.dumps(body).encode(), headers)
    assert status in ANSWERS, (where, answer)
    if path == "/" and status == 200:
        sm, _ = clients(server.url)
        sm.delete_feature_group(FeatureGroupName=body["FeatureGroupName"])
    if path.startswith("/FeatureGroup") and status == 200:
        _, rt = clients(server.url)
        rid = next(f["ValueAsString"] for f in body["Record"] if f["FeatureName"] == "id")
        stored = rt.get_record(FeatureGroupName="g", RecordIdentifierValueAsString=rid)
        assert stored["Record"], "an accepted record reads back"


@pytest.mark.parametrize("member", ["ValueAsString", "ValueAsStringList"])
def test_a_null_value_member_is_an_absent_one(server: FeatureStoreServer, member: str) -> None:
    """``{"ValueAsStringList": null}`` (found by the fuzz test) is a missing value: 400."""
    index = next(i for i, e in enumerate(PUT["Record"]) if member in e)
    body = replaced(PUT, ("Record", index, member), None)
    status, answer = send(
        server, "PUT", "/FeatureGroup/g", json.dumps(body).encode(), TARGETS[0][3]
    )
    assert status == 400, answer
    assert "needs exactly one value" in str(answer), answer
