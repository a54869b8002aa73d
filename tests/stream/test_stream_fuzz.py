"""Fuzzing the generated stream handler with Kinesis events of random bytes, mutations of valid
JSON records and values of every JSON kind: no exception escapes, every delivered record is
written or dead-lettered (``written + dead_lettered == read``, nothing left for retry on a
working store), and the dead-letter file holds one entry per dead-lettered record."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from streamhelpers import GROUP, event, good

from fsgen.runtime.deadletter import JsonlDeadLetter, read_jsonl
from fsgen.runtime.kinesis import RetryPolicy
from fsgen.runtime.streamrecords import decode_record
from fsgen.store import LocalStore
from fsgen.stream.events import Handler

NO_WAIT = RetryPolicy(sleep=lambda _s: None)
VALID = json.dumps(good("C1")).encode()
FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["9999-12-31T23:59:59-01:00", "2024-03-01", "\udfff", "inf", "1e999"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@st.composite
def mutated_json(draw: st.DrawFn) -> bytes:
    data = bytearray(VALID)
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip":
            data[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[at : at + draw(st.integers(1, 16))]
        else:
            data[at:at] = draw(st.binary(max_size=8))
    return bytes(data)


@st.composite
def field_values(draw: st.DrawFn) -> bytes:
    """A valid record with some fields replaced by arbitrary JSON values."""
    record: dict[str, object] = good(f"C{draw(st.integers(0, 5))}")
    for name in draw(st.lists(st.sampled_from(sorted(record)), max_size=3)):
        record[name] = draw(JSON_VALUES)
    return json.dumps(record).encode("utf-8", errors="surrogatepass")


PAYLOADS = st.lists(
    st.one_of(st.binary(max_size=200), mutated_json(), field_values(), st.just(VALID)),
    min_size=1,
    max_size=12,
)


@FUZZ
@given(payloads=PAYLOADS, broken=st.lists(st.integers(0, 11), max_size=2))
@example(payloads=[b"[" * 100_000, VALID.replace(b'"C1"', b'"\\udfff"'), VALID], broken=[])
def test_fuzz_stream_records(
    handler: Handler,
    store: LocalStore,
    tmp_path_factory: pytest.TempPathFactory,
    payloads: list[bytes],
    broken: list[int],
) -> None:
    batch = event(list(payloads))
    records = batch["Records"]
    assert isinstance(records, list)
    for i in set(broken):  # a record whose data field is not base64, or not there at all
        if i < len(records):
            kinesis = records[i]["kinesis"]
            if i % 2:
                kinesis["data"] = "%%" + base64.b64encode(payloads[i]).decode()
            else:
                del kinesis["data"]
    path = tmp_path_factory.mktemp("dlq") / "dlq.jsonl"
    result = handler.process(batch, store.writer(GROUP), JsonlDeadLetter(path), NO_WAIT)
    assert result.read == len(records)
    assert result.failed == 0 and result.response() == {"batchItemFailures": []}
    assert result.written + result.dead_lettered == result.read
    entries = list(read_jsonl(path)) if path.exists() else []
    assert len(entries) == result.dead_lettered
    sent = {r["kinesis"]["sequenceNumber"] for r in records}
    assert {e["sequenceNumber"] for e in entries} <= sent


def _decoded(data: object) -> object:
    from fsgen.runtime.streamrecords import DecodeError

    try:
        return ("value", decode_record({"kinesis": {"data": data}}))
    except DecodeError as exc:
        return ("error", str(exc))


def _general(data: object) -> object:
    from fsgen.runtime.streamrecords import DecodeError, _decode_record

    try:
        return ("value", _decode_record({"data": data}))
    except DecodeError as exc:
        return ("error", str(exc))


PAYLOADS = (
    st.binary(max_size=40)
    | JSON_VALUES.map(lambda v: json.dumps(v).encode())
    | st.tuples(
        st.sampled_from([b"", b" ", b"\n", b"\xef\xbb\xbf", b"\t"]),
        JSON_VALUES.map(lambda v: json.dumps({"v": v}).encode()),
        st.sampled_from([b"", b" ", b"\n", b"x", b"{}", b",1"]),
    ).map(lambda t: b"".join(t))
)


@FUZZ
@given(
    payload=PAYLOADS,
    mangle=st.sampled_from(["none", "drop-pad", "space", "non-ascii", "url-safe", "not-str"]),
)
@example(payload=b'{"a": 1}', mangle="none")
@example(payload=b' {"a": 1}', mangle="none")
@example(payload=b'{"a": 1} ', mangle="none")
@example(payload=b"\xef\xbb\xbf{}", mangle="none")
@example(payload=b"[1]", mangle="none")
@example(payload=b'{"a": NaN}', mangle="none")
def test_a_record_decodes_as_the_general_path_decodes_it(payload: bytes, mangle: str) -> None:
    """The fast decode (strict base64, json's scanner) gives the general path's value or its
    exact error, for any payload and any damage to its base64."""
    data: object = base64.b64encode(payload).decode()
    assert isinstance(data, str)
    if mangle == "drop-pad":
        data = data.rstrip("=")
    elif mangle == "space":
        data = data[:2] + " " + data[2:]
    elif mangle == "non-ascii":
        data = data + "é"
    elif mangle == "url-safe":
        data = base64.urlsafe_b64encode(payload).decode()
    elif mangle == "not-str":
        data = payload
    assert _decoded(data) == _general(data)
