"""``fsgen serve`` against hostile clients, over raw sockets: no cross-site write (browser
``Origin``, a foreign ``Host``, a non-AWS content type, no SigV4 ``Authorization``), bounded
bodies, connections and read time, and 400 -- never 500, never a hang -- for every malformed
request."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from typing import Any

import pytest
from serverlib import clients

from fsgen.server import FeatureStoreServer
from fsgen.server.app import Handler

AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/sagemaker/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
)
T0 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
RECORD = {
    "Record": [
        {"FeatureName": "id", "ValueAsString": "evil"},
        {"FeatureName": "t", "ValueAsString": T0},
    ]
}


@pytest.fixture
def group(served: FeatureStoreServer) -> FeatureStoreServer:
    sm, _ = clients(served.url)
    sm.create_feature_group(
        FeatureGroupName="g",
        RecordIdentifierFeatureName="id",
        EventTimeFeatureName="t",
        FeatureDefinitions=[
            {"FeatureName": "id", "FeatureType": "String"},
            {"FeatureName": "t", "FeatureType": "String"},
        ],
        OnlineStoreConfig={"EnableOnlineStore": True},
    )
    return served


def send(
    server: FeatureStoreServer,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
) -> tuple[int, dict[str, str], Any]:
    host, port = server.server_address[:2]
    con = http.client.HTTPConnection(str(host), int(port), timeout=10)
    try:
        con.request(method, path, body=body, headers=headers)
        response = con.getresponse()
        data = response.read()
        return response.status, dict(response.getheaders()), json.loads(data) if data else {}
    finally:
        con.close()


def stored(server: FeatureStoreServer) -> bool:
    _, rt = clients(server.url)
    return "Record" in rt.get_record(FeatureGroupName="g", RecordIdentifierValueAsString="evil")


def rest_headers(**extra: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "Authorization": AUTH, **extra}


def test_a_well_formed_raw_request_is_stored(group: FeatureStoreServer) -> None:
    """The baseline the refusals below differ from by one header."""
    status, _, _ = send(
        group, "PUT", "/FeatureGroup/g", json.dumps(RECORD).encode(), rest_headers()
    )
    assert status == 200 and stored(group)


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Origin": "http://evil.example"}, 403, "AccessForbidden"),
        ({"Origin": "null"}, 403, "AccessForbidden"),
        ({"Sec-Fetch-Site": "cross-site"}, 403, "AccessForbidden"),
        ({"Host": "evil.example"}, 403, "AccessForbidden"),
        ({"Host": "rebound.example:4510"}, 403, "AccessForbidden"),
        ({"Content-Type": "text/plain"}, 400, "SerializationException"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, 400, "SerializationException"),
        ({"Authorization": ""}, 403, "MissingAuthenticationToken"),
        ({"Authorization": "Bearer x"}, 403, "MissingAuthenticationToken"),
    ],
)
def test_cross_site_writes_are_refused(
    group: FeatureStoreServer, headers: dict[str, str], status: int, code: str
) -> None:
    got, response_headers, body = send(
        group, "PUT", "/FeatureGroup/g", json.dumps(RECORD).encode(), rest_headers(**headers)
    )
    assert (got, response_headers.get("X-Amzn-ErrorType")) == (status, code), body
    assert not stored(group)


def test_control_plane_needs_its_content_type_and_a_signature(group: FeatureStoreServer) -> None:
    body = json.dumps({"FeatureGroupName": "g"}).encode()
    target = {"X-Amz-Target": "SageMaker.DeleteFeatureGroup"}
    for headers, code in [
        ({"Content-Type": "text/plain", "Authorization": AUTH}, "SerializationException"),
        ({"Content-Type": "application/x-amz-json-1.1"}, "MissingAuthenticationToken"),
        (
            {"Content-Type": "application/x-amz-json-1.1", "Authorization": AUTH, "Origin": "x"},
            "AccessForbidden",
        ),
    ]:
        status, _, answer = send(group, "POST", "/", body, {**target, **headers})
        assert status in (400, 403) and answer["__type"] == code
    sm, _ = clients(group.url)
    assert sm.describe_feature_group(FeatureGroupName="g")["FeatureGroupName"] == "g"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/FeatureGroup/g", b"abc"),
        ("/FeatureGroup/g", b"[" * 100_000),
        ("/FeatureGroup/g", b'{"Record": "x"}'),
        ("/FeatureGroup/g", b'{"Record": ["x"]}'),
        ("/FeatureGroup/g", b'{"Record": [{"FeatureName": 1, "ValueAsString": "x"}]}'),
        ("/FeatureGroup/g", b'{"Record": [{"FeatureName": "id", "ValueAsString": NaN}]}'),
        ("/FeatureGroup/g", b"[]"),
        ("/FeatureGroup/g", b"\xff\xfe"),
        ("/BatchGetRecord", b'{"Identifiers": ["x"]}'),
        ("/BatchGetRecord", b'{"Identifiers": [{"FeatureGroupName": "g"}]}'),
        ("/BatchWriteRecord", b'{"Entries": {"a": 1}}'),
    ],
)
def test_malformed_runtime_requests_answer_400(
    group: FeatureStoreServer, path: str, body: bytes
) -> None:
    method = "PUT" if path.startswith("/FeatureGroup") else "POST"
    status, headers, answer = send(group, method, path, body, rest_headers())
    assert status == 400, answer
    assert headers["X-Amzn-ErrorType"] in ("SerializationException", "ValidationError")


@pytest.mark.parametrize(
    "request_",
    [
        {"FeatureDefinitions": ["x"]},
        {"FeatureGroupName": "evil\n"},
        {"FeatureGroupName": ["g"]},
        {"FeatureGroupName": "ok", "FeatureDefinitions": [{"FeatureName": "id"}]},
        {"OnlineStoreConfig": {"TtlDuration": {"Unit": "Hours", "Value": "1"}}},
    ],
)
def test_malformed_control_requests_answer_400(
    group: FeatureStoreServer, request_: dict[str, Any]
) -> None:
    request = {
        "FeatureGroupName": "fresh",
        "RecordIdentifierFeatureName": "id",
        "EventTimeFeatureName": "t",
        "FeatureDefinitions": [
            {"FeatureName": "id", "FeatureType": "String"},
            {"FeatureName": "t", "FeatureType": "String"},
        ],
        "OnlineStoreConfig": {"EnableOnlineStore": True},
        **request_,
    }
    headers = {
        "X-Amz-Target": "SageMaker.CreateFeatureGroup",
        "Content-Type": "application/x-amz-json-1.1",
        "Authorization": AUTH,
    }
    status, _, answer = send(group, "POST", "/", json.dumps(request).encode(), headers)
    assert status == 400 and answer["__type"] in ("SerializationException", "ValidationException")
    sm, _ = clients(group.url)
    assert [s["FeatureGroupName"] for s in sm.list_feature_groups()["FeatureGroupSummaries"]] == [
        "g"
    ]


def raw(server: FeatureStoreServer, data: bytes, timeout: float = 10) -> bytes:
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                piece = sock.recv(65536)
            except TimeoutError:
                break
            if not piece:
                break
            chunks.append(piece)
            if b"\r\n\r\n" in b"".join(chunks):
                break
        return b"".join(chunks)


def head(length: str, extra: str = "") -> bytes:
    return (
        f"PUT /FeatureGroup/g HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: {AUTH}\r\nContent-Length: {length}\r\n{extra}\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (head("-1"), b"400"),
        (head("abc"), b"400"),
        (head(str(256 * 1024 * 1024)), b"413"),
        (head("5", "Transfer-Encoding: chunked\r\n"), b"411"),
    ],
)
def test_body_limits_answer_at_once(group: FeatureStoreServer, data: bytes, status: bytes) -> None:
    """Nothing of the body is sent: the answer comes from the headers alone, and no 256 MB is
    ever read."""
    answer = raw(group, data)
    assert answer.split(b" ")[1] == status, answer


def test_slow_clients_are_bounded(
    group: FeatureStoreServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Half-sent requests hold at most ``max_connections`` threads (the rest are answered 503 at
    once), each is dropped after the read timeout, and the server keeps answering."""
    monkeypatch.setattr(Handler, "timeout", 1.0)
    host, port = group.server_address[:2]
    before = threading.active_count()
    socks = []
    for _ in range(group.max_connections + 16):
        sock = socket.create_connection((str(host), int(port)), timeout=10)
        sock.sendall(b"PUT /FeatureGroup/g HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        socks.append(sock)
    time.sleep(0.3)
    assert threading.active_count() <= before + group.max_connections
    refused = 0
    for sock in socks:
        sock.settimeout(10)
        answer = sock.recv(100)  # a 503 at once, or the close after the read timeout
        refused += answer.startswith(b"HTTP/1.1 503")
        sock.close()
    assert refused >= 16
    _, rt = clients(group.url)
    rt.put_record(FeatureGroupName="g", **RECORD)
    assert stored(group)
