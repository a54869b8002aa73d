"""End to end: ingest (batch and stream) -> point-in-time dataset -> train -> serve over HTTP ->
request. The vector the model receives for an entity must be the training set's row for it,
bit for bit, for every feature type."""

from __future__ import annotations

import dataclasses
import json
import struct
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from inference_helpers import FEATURE_SET, POINT_THREE, Project

from fsgen.pit import build_dataset
from fsgen.runtime.endpoint import LinearModel
from fsgen.serving.handler import Handler, load_handler
from fsgen.serving.http import ModelServer, serve_in_thread
from fsgen.serving.sources import LocalRecordSource
from fsgen.store import LocalStore
from fsgen.train import train, write_model


def identical(a: object, b: object) -> bool:
    """Same type and value; floats compared as their IEEE-754 bytes."""
    if isinstance(a, float) or isinstance(b, float):
        return (
            type(a) is float and type(b) is float and struct.pack("<d", a) == struct.pack("<d", b)
        )
    return type(a) is type(b) and a == b


def training_value(value: object) -> object:
    return value.item() if hasattr(value, "item") else value  # numpy scalar -> Python


@pytest.fixture
def served(project: Project, tmp_path: Path) -> Iterator[tuple[ModelServer, Handler, Path]]:
    frame = build_dataset(project.config, project.spec, FEATURE_SET, project.labels)
    model_path = write_model(train(frame, project.spec, FEATURE_SET), tmp_path / "model")
    store = LocalStore.open(project.config, project.spec)
    clock = lambda: project.as_of  # noqa: E731 - the training set's label time
    handler = load_handler(
        project.config,
        project.spec,
        FEATURE_SET,
        model_path,
        LocalRecordSource(store, clock),
        clock,
    )
    server = serve_in_thread(handler)
    yield server, handler, model_path
    server.shutdown()
    server.server_close()
    store.close()


def post(url: str, payload: object, path: str = "/invocations") -> tuple[int, dict[str, object]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    request = urllib.request.Request(
        url + path, data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_served_vectors_are_the_training_rows_bit_for_bit(
    project: Project, served: tuple[ModelServer, Handler, Path]
) -> None:
    server, _, model_path = served
    frame = build_dataset(project.config, project.spec, FEATURE_SET, project.labels)
    model = LinearModel.from_document(json.loads(model_path.read_text()), "model")
    columns = list(project.spec.feature_set(FEATURE_SET).columns)
    seen_point_three: set[str] = set()
    for row in frame.to_dict("records"):
        request = {
            "customer_id": row["customer_id"],
            "merchant_id": row["merchant_id"],
            "amount": row["amount"],
        }
        status, answer = post(server.url, request)
        assert status == 200, answer
        prediction = answer["predictions"][0]  # type: ignore[index]
        features = prediction["features"]
        assert list(features) == columns
        expected = [training_value(row[c]) for c in columns]
        for column, value, trained in zip(columns, features.values(), expected, strict=True):
            assert identical(value, trained), (request, column, value, trained)
            if isinstance(value, float) and struct.pack("<d", value) == struct.pack(
                "<d", POINT_THREE
            ):
                seen_point_three.add(column)
        # the model scored exactly the training row
        assert prediction["probability"] == model.predict(expected)["probability"]
    # 0.1 + 0.2 arrived by the batch path (customers CSV), the stream path (a transform
    # computing it), the merchants' JSON lines and a request field
    assert {"avg_monthly_spend", "avg_ticket", "amount_to_monthly_spend"} <= seen_point_three


def test_every_feature_type_and_extreme_floats_round_trip(
    project: Project, served: tuple[ModelServer, Handler, Path]
) -> None:
    server, _, _ = served
    cases = {"C001": 1.0 / 3, "C002": 5e-324, "C003": 1.7976931348623157e308}
    for customer, spend in cases.items():
        _, answer = post(server.url, {"customer_id": customer, "merchant_id": "M01", "amount": 2.5})
        features = answer["predictions"][0]["features"]  # type: ignore[index]
        assert identical(features["avg_monthly_spend"], spend)
        assert type(features["age"]) is int and type(features["is_high_risk"]) is int
        assert type(features["category"]) is str
    # the online store holds M01's newer record; its older one is history only
    _, answer = post(server.url, {"customer_id": "C000", "merchant_id": "M01", "amount": 1})
    assert answer["predictions"][0]["features"]["chargeback_rate"] != 0.0  # type: ignore[index]


def test_batch_requests_answer_in_order(served: tuple[ModelServer, Handler, Path]) -> None:
    server, _, _ = served
    single = [
        post(server.url, {"customer_id": c, "merchant_id": m, "amount": 10.0})[1]
        for c, m in (("C004", "M02"), ("C010", "M03"), ("C999", "M04"))
    ]
    status, batch = post(
        server.url,
        {
            "instances": [
                {"customer_id": c, "merchant_id": m, "amount": 10.0}
                for c, m in (("C004", "M02"), ("C010", "M03"), ("C999", "M04"))
            ]
        },
    )
    assert status == 200
    assert batch["predictions"] == [s["predictions"][0] for s in single]  # type: ignore[index]


def test_missing_entity_gets_the_sets_policy(
    project: Project, served: tuple[ModelServer, Handler, Path]
) -> None:
    server, handler, _ = served
    status, answer = post(
        server.url, {"customer_id": "NOBODY", "merchant_id": "M02", "amount": 99.0}
    )
    assert status == 200
    features = answer["predictions"][0]["features"]  # type: ignore[index]
    defaults = project.spec.feature_set(FEATURE_SET).defaults
    for column in ("age", "avg_monthly_spend", "is_prime_member", "amount_to_monthly_spend"):
        assert identical(features[column], type(features[column])(defaults[column]))
    assert features["category"] != "unknown"  # the merchant exists: its values are served
    # missing="error": the same request is refused with 424, naming the feature
    strict = dataclasses.replace(handler.endpoint.runtime, missing="error")
    handler.endpoint.runtime = strict
    status, answer = post(
        server.url, {"customer_id": "NOBODY", "merchant_id": "M02", "amount": 99.0}
    )
    assert status == 424 and "'age' is missing" in str(answer["message"])


def test_ping_and_bad_requests(served: tuple[ModelServer, Handler, Path]) -> None:
    server, _, _ = served
    with urllib.request.urlopen(server.url + "/ping", timeout=10) as response:
        assert response.status == 200
    status, answer = post(server.url, b"{not json")
    assert status == 400 and answer["error"] == "ValidationError"
    status, answer = post(server.url, {"merchant_id": "M01", "amount": 1.0})
    assert status == 400 and "customer_id" in str(answer["message"])
    status, answer = post(
        server.url, {"customer_id": "C000", "merchant_id": "M01", "amount": "lots"}
    )
    assert status == 400 and "amount" in str(answer["message"])
    status, answer = post(server.url, {"customer_id": "C000", "merchant_id": "M01"})
    assert status == 400 and "amount" in str(answer["message"])
    status, _ = post(server.url, {}, path="/nowhere")
    assert status == 404
    # a known route with the wrong method is 405 naming the allowed one, not 404
    for method, path, allowed in (("GET", "/invocations", "POST"), ("POST", "/ping", "GET")):
        request = urllib.request.Request(server.url + path, method=method, data=b"{}")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code == 405 and caught.value.headers["Allow"] == allowed
        assert json.loads(caught.value.read())["error"] == "MethodNotAllowed"


def test_expired_record_is_missing_at_serving_as_in_training(
    project: Project, tmp_path: Path
) -> None:
    """Eight days after the data the merchants (TTL 7d) are expired on both sides."""
    late = project.as_of + 8 * 86400
    stamp = json.dumps(late)
    labels = tmp_path / "late.csv"
    labels.write_text(
        f"customer_id,merchant_id,event_time,amount,is_fraud\nC005,M05,{stamp},12.5,0\n"
    )
    frame = build_dataset(project.config, project.spec, FEATURE_SET, labels)
    with project.store() as store:
        handler = load_handler(
            project.config,
            project.spec,
            FEATURE_SET,
            None,
            LocalRecordSource(store, lambda: late),
            lambda: late,
        )
        vector = handler.endpoint.vectors(
            [{"customer_id": "C005", "merchant_id": "M05", "amount": 12.5}]
        )[0]
    row = frame.iloc[0]
    columns = project.spec.feature_set(FEATURE_SET).columns
    assert vector[columns.index("category")] == "unknown"  # the default: expired
    for column, value in zip(columns, vector, strict=True):
        assert identical(value, training_value(row[column])), column


class CountingSource:
    """The local record source, counting BatchGetRecord calls and their identifiers."""

    def __init__(self, source: LocalRecordSource) -> None:
        self.source = source
        self.calls: list[int] = []

    def batch_get_record(self, **params: object) -> dict[str, object]:
        identifiers = params["Identifiers"]
        assert isinstance(identifiers, list)
        self.calls.append(max(len(i["RecordIdentifiersValueAsString"]) for i in identifiers))
        return self.source.batch_get_record(**params)


def test_large_batches_respect_the_batch_get_limit(project: Project) -> None:
    with project.store() as store:
        source = CountingSource(LocalRecordSource(store, lambda: project.as_of))
        handler = load_handler(
            project.config, project.spec, FEATURE_SET, None, source, lambda: project.as_of
        )
        requests = [
            {"customer_id": f"C{n:03d}", "merchant_id": f"M{n % 10:02d}", "amount": float(n)}
            for n in range(250)
        ]  # C020.. do not exist
        together = handler.endpoint.vectors(requests)
        assert source.calls == [100, 100, 50]
        one_by_one = [handler.endpoint.vectors([r])[0] for r in requests]
    assert together == one_by_one
    assert together[0][0] != -1 and together[200][0] == -1  # C000 exists, C200 does not


def test_serve_model_refuses_browsers_and_bounds_bodies(
    served: tuple[ModelServer, Handler, Path],
) -> None:
    """serve-model shares fsgen serve's HTTP layer: a browser Origin or foreign Host is refused,
    a bad or oversized Content-Length is answered from the headers alone, and the server keeps
    answering well-formed requests."""
    import http.client
    import socket

    server, _, _ = served
    host, port = server.server_address[:2]
    for headers, status in [
        ({"Origin": "http://evil.example"}, 403),
        ({"Host": "evil.example"}, 403),
    ]:
        con = http.client.HTTPConnection(str(host), int(port), timeout=10)
        con.request(
            "POST",
            "/invocations",
            body=b"{}",
            headers={"Content-Type": "application/json", **headers},
        )
        assert con.getresponse().status == status
        con.close()
    for length, status in [("-1", b"400"), (str(7 * 1024 * 1024), b"413")]:
        with socket.create_connection((str(host), int(port)), timeout=10) as sock:
            request = "POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            sock.sendall(f"{request}Content-Length: {length}\r\n\r\n".encode())
            assert sock.recv(100).split(b" ")[1] == status
    with urllib.request.urlopen(server.url + "/ping", timeout=10) as response:
        assert response.status == 200
