"""Poison records go to the dead-letter destination with their reason, sequence number and raw
payload, never blocking the batch; only retryable failures are returned in
``batchItemFailures``; throttling is retried with back-off."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto.server import ThreadedMotoServer
from streamhelpers import GROUP, event, free_port, good, raw_event

from fsgen.config import ProjectConfig
from fsgen.runtime.deadletter import JsonlDeadLetter, S3DeadLetter, SqsDeadLetter, read_jsonl
from fsgen.runtime.kinesis import RETRY, RetryPolicy
from fsgen.runtime.sinks import PutRecordSink
from fsgen.store import LocalStore
from fsgen.stream.events import Handler

NO_WAIT = RetryPolicy(sleep=lambda _s: None)


def bad_birth() -> dict[str, object]:
    return good("P", birth_date="1985-13-01")


POISON = {
    "malformed base64": (None, "<record>", "data is not valid base64"),
    "not UTF-8": (b"\xff\xfe{}", "<record>", "data is not UTF-8"),
    "non-JSON": (b"{oops", "<record>", "data is not JSON"),
    "JSON but not an object": (b"[1, 2]", "<record>", "expected a JSON object, got list"),
    "a repeated key": (
        json.dumps(good("P")).encode()[:-1] + b', "customer_id": "Q"}',
        "<record>",
        "repeated key in one JSON object: 'customer_id' 2 times",
    ),
    "missing field": (
        {k: v for k, v in good("P").items() if k != "tenure_months"},
        "tenure_months",
        "missing required field",
    ),
    "wrong type": (good("P", tenure_months="many"), "tenure_months", "expected an integer"),
    "a boolean for a number": (
        good("P", tenure_months=True),
        "tenure_months",
        "expected an integer, got the boolean true",
    ),
    "several wrong fields": (
        good("P", tenure_months="many", total_spend="lots"),
        "tenure_months",
        "expected an integer, got 'many'; total_spend: expected a number, got 'lots'",
    ),
    "transformation raises": (bad_birth(), "age", "transformation raised ValueError"),
}


@pytest.mark.parametrize("kind", sorted(POISON))
def test_poison_record_is_dead_lettered_and_the_batch_goes_on(
    kind: str, handler: Handler, store: LocalStore, tmp_path: Path
) -> None:
    payload, field, reason = POISON[kind]
    batch = event([good("C1"), payload if payload is not None else b"x", good("C2")])
    if payload is None:  # the middle record's data is not base64 at all
        batch["Records"][1]["kinesis"]["data"] = "not base64 !!"  # type: ignore[index]
    dlq = JsonlDeadLetter(tmp_path / "dlq.jsonl")
    result = handler.process(batch, store.writer(GROUP), dlq, NO_WAIT)
    assert result.response() == {"batchItemFailures": []}
    assert (result.read, result.written, result.dead_lettered, result.failed) == (3, 2, 1, 0)
    (entry,) = read_jsonl(dlq.path)
    sent = batch["Records"][1]["kinesis"]  # type: ignore[index]
    assert entry["sequenceNumber"] == sent["sequenceNumber"] == f"{2:056d}"
    assert entry["field"] == field and reason in str(entry["reason"])
    assert entry["data"] == sent["data"]  # the raw payload exactly as received
    assert entry["group"] == GROUP and entry["shardId"] == "shardId-000000000000"
    if kind == "transformation raises":
        assert "featuredefs/customer.py:" in str(entry["reason"])  # points at the user's code
    assert store.get_record(GROUP, "C1", now=0) is not None
    assert store.get_record(GROUP, "C2", now=0) is not None


def test_without_a_dead_letter_destination_poison_is_reported_for_retry(
    handler: Handler, store: LocalStore
) -> None:
    result = handler.process(event([good("C1"), b"{oops"]), store.writer(GROUP), None, NO_WAIT)
    assert result.response() == {"batchItemFailures": [{"itemIdentifier": f"{2:056d}"}]}
    assert result.written == 1


def test_a_failing_dead_letter_destination_loses_nothing(
    handler: Handler, store: LocalStore, tmp_path: Path
) -> None:
    broken = JsonlDeadLetter(tmp_path)  # a directory: appending fails
    result = handler.process(event([b"{oops", good("C1")]), store.writer(GROUP), broken, NO_WAIT)
    assert result.response() == {"batchItemFailures": [{"itemIdentifier": f"{1:056d}"}]}
    (failure,) = result.failures
    assert failure.kind == RETRY and "dead-letter destination failed" in failure.message


def _stubbed_writer(handler: Handler) -> tuple[PutRecordSink, Stubber]:
    client = boto3.client("sagemaker-featurestore-runtime", region_name="us-east-1")
    return PutRecordSink({GROUP: handler.runtime}, client=client), Stubber(client)


def test_throttling_is_retried_with_back_off(handler: Handler, tmp_path: Path) -> None:
    writer, stub = _stubbed_writer(handler)
    waits: list[float] = []
    with stub:
        stub.add_client_error("put_record", "ThrottlingException", http_status_code=400)
        stub.add_client_error("put_record", "ServiceUnavailable", http_status_code=503)
        stub.add_response("put_record", {})
        result = handler.process(
            event([good("C1")]),
            writer,
            JsonlDeadLetter(tmp_path / "d.jsonl"),
            RetryPolicy(sleep=waits.append),
        )
        stub.assert_no_pending_responses()
    assert result.written == 1 and result.failures == []
    assert len(waits) == 2 and all(0 <= w <= 0.1 for w in waits)


def test_throttling_that_persists_is_returned_for_lambda_to_retry(
    handler: Handler, tmp_path: Path
) -> None:
    writer, stub = _stubbed_writer(handler)
    waits: list[float] = []
    dlq = JsonlDeadLetter(tmp_path / "d.jsonl")
    with stub:
        for _ in range(3):
            stub.add_client_error("put_record", "ThrottlingException", http_status_code=400)
        result = handler.process(
            event([good("C1")]), writer, dlq, RetryPolicy(attempts=3, sleep=waits.append)
        )
    assert result.response() == {"batchItemFailures": [{"itemIdentifier": f"{1:056d}"}]}
    assert len(waits) == 2 and not dlq.path.exists()  # retryable: not a poison record


def test_a_record_the_feature_store_rejects_is_dead_lettered(
    handler: Handler, tmp_path: Path
) -> None:
    writer, stub = _stubbed_writer(handler)
    dlq = JsonlDeadLetter(tmp_path / "d.jsonl")
    with stub:
        stub.add_response("put_record", {})
        stub.add_client_error("put_record", "ValidationError", "value too long", 400)
        result = handler.process(event([good("C1"), good("C2")]), writer, dlq, NO_WAIT)
    assert result.response() == {"batchItemFailures": []} and result.written == 1
    (entry,) = read_jsonl(dlq.path)
    assert entry["sequenceNumber"] == f"{2:056d}"
    assert "rejected by the feature store" in str(entry["reason"])


def test_no_retry_when_the_lambda_is_out_of_time(handler: Handler, tmp_path: Path) -> None:
    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 500

    writer, stub = _stubbed_writer(handler)
    waits: list[float] = []
    with stub:
        stub.add_client_error("put_record", "ThrottlingException", http_status_code=400)
        from fsgen.runtime import kinesis

        result = kinesis.process_event(
            handler.runtime,
            event([good("C1")]),
            writer,
            None,
            retry=RetryPolicy(sleep=waits.append),
            context=Context(),
        )
    assert waits == [] and "no time left" in result.failures[0].message
    assert result.failed == 1


def test_malformed_base64_in_a_lambda_event(
    handler: Handler, store: LocalStore, tmp_path: Path
) -> None:
    dlq = JsonlDeadLetter(tmp_path / "d.jsonl")
    result = handler.process(raw_event("@@@", seq="77"), store.writer(GROUP), dlq, NO_WAIT)
    assert result.response() == {"batchItemFailures": []}
    assert [e["sequenceNumber"] for e in read_jsonl(dlq.path)] == ["77"]


def test_dead_letter_file_is_idempotent_on_rerun(
    handler: Handler, store: LocalStore, tmp_path: Path
) -> None:
    batch = event([b"{oops", good("C1"), b"nope"])
    for _ in range(2):
        handler.process(batch, store.writer(GROUP), JsonlDeadLetter(tmp_path / "d.jsonl"), NO_WAIT)
    assert [e["sequenceNumber"] for e in read_jsonl(tmp_path / "d.jsonl")] == [
        f"{1:056d}",
        f"{3:056d}",
    ]


@pytest.fixture(scope="module")
def moto_url() -> object:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_sqs_dead_letter(handler: Handler, store: LocalStore, moto_url: str) -> None:
    sqs = boto3.client("sqs", endpoint_url=moto_url, region_name="us-east-1")
    url = sqs.create_queue(QueueName="fsgen-dlq")["QueueUrl"]
    poison = [f"{{bad {i}".encode() for i in range(12)]  # more than one SendMessageBatch
    result = handler.process(
        event([good("C1"), *poison]), store.writer(GROUP), SqsDeadLetter(url, sqs), NO_WAIT
    )
    assert result.response() == {"batchItemFailures": []} and result.dead_lettered == 12
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            break
        bodies += [json.loads(m["Body"]) for m in got]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
            ],
        )
    assert sorted(base64.b64decode(b["data"]) for b in bodies) == sorted(poison)
    assert all("data is not JSON" in b["reason"] for b in bodies)


def test_s3_dead_letter(handler: Handler, store: LocalStore, moto_url: str) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    s3.create_bucket(Bucket="fsgen-dead-letters")
    batch = event([good("C1"), b"{oops", good("C2", tenure_months="x")])
    for _ in range(2):  # a re-run overwrites the same object
        handler.process(
            batch,
            store.writer(GROUP),
            S3DeadLetter("fsgen-dead-letters", "streams/", s3),
            NO_WAIT,
        )
    (obj,) = s3.list_objects_v2(Bucket="fsgen-dead-letters")["Contents"]
    assert obj["Key"].startswith(f"streams/{GROUP}/shardId-000000000000-")
    lines = s3.get_object(Bucket="fsgen-dead-letters", Key=obj["Key"])["Body"].read().splitlines()
    assert [json.loads(x)["field"] for x in lines] == ["<record>", "tenure_months"]


def test_a_record_the_local_store_refuses_is_dead_lettered(
    example: tuple[object, object], store: LocalStore, tmp_path: Path
) -> None:
    """merchant-features has a Fractional event time: epoch seconds beyond year 9999 pass
    validation but the store refuses them; only that record is dead-lettered."""
    from fsgen.stream.events import load_handler

    merchants = load_handler(*example, "merchant-features")  # type: ignore[arg-type]
    raw = json.loads(
        (Path(__file__).parents[2] / "data/merchants.jsonl").read_text().splitlines()[0]
    )
    far = {**raw, "merchant_id": "M-far", "updated_at": 1e12}
    dlq = JsonlDeadLetter(tmp_path / "d.jsonl")
    result = merchants.process(event([raw, far]), store.writer(GROUP), dlq, NO_WAIT)
    assert result.response() == {"batchItemFailures": []} and result.written == 1
    (entry,) = read_jsonl(dlq.path)
    assert entry["sequenceNumber"] == f"{2:056d}" and "outside years 1..9999" in str(
        entry["reason"]
    )
    assert store.get_record("merchant-features", raw["merchant_id"], now=0) is not None


def test_dead_letter_file_after_a_torn_write(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"group": "g", "shardId": "s", "sequenceNumber": "1"}\n{"group": "g", "sha')
    JsonlDeadLetter(path).send([{"group": "g", "shardId": "s", "sequenceNumber": "2"}])
    assert [e["sequenceNumber"] for e in read_jsonl(path)] == ["1", "2"]


POISON_VALUES = [
    json.dumps(good("H2")).replace('"H2"', '"H2\\udfff"').encode(),  # a lone surrogate
    b"[" * 100_000,  # nested too deep for the JSON parser
    json.dumps(good("C5", when="9999-12-31T23:59:59-01:00")).encode(),  # year 10000 in UTC
    json.dumps(good("C6", tenure_months=10**400)).encode(),  # 401 digits
]


@pytest.mark.parametrize("sink", ["local", "putrecord"])
def test_poison_values_are_dead_lettered_never_block_the_shard(
    handler: Handler, store: LocalStore, tmp_path: Path, sink: str
) -> None:
    payloads = [*POISON_VALUES, json.dumps(good("C1")).encode()]
    dlq = JsonlDeadLetter(tmp_path / "d.jsonl")
    if sink == "local":
        result = handler.process(event(payloads), store.writer(GROUP), dlq, NO_WAIT)
    else:
        writer, stub = _stubbed_writer(handler)
        with stub:
            stub.add_response("put_record", {})  # C1 only: the others never reach the store
            result = handler.process(event(payloads), writer, dlq, NO_WAIT)
            stub.assert_no_pending_responses()
    assert result.response() == {"batchItemFailures": []}
    assert (result.written, result.dead_lettered, result.failed) == (1, 4, 0)
    assert len(list(read_jsonl(dlq.path))) == 4


@pytest.mark.parametrize("sink", ["local", "putrecord"])
def test_replay_dead_letters_every_poison_line_and_writes_the_rest(
    handler: Handler, store: LocalStore, tmp_path: Path, sink: str
) -> None:
    from fsgen.stream.replay import replay

    src = tmp_path / "poison.jsonl"
    src.write_bytes(
        b"\n".join(
            [json.dumps(good("C1")).encode(), *POISON_VALUES, json.dumps(good("C2")).encode()]
        )
        + b"\n"
    )
    dlq = JsonlDeadLetter(tmp_path / "d.jsonl")
    if sink == "local":
        result = replay(handler, src, store.writer(GROUP), dlq, batch_size=3, retry=NO_WAIT)
    else:
        writer, stub = _stubbed_writer(handler)
        with stub:
            stub.add_response("put_record", {})
            stub.add_response("put_record", {})
            result = replay(handler, src, writer, dlq, batch_size=3, retry=NO_WAIT)
            stub.assert_no_pending_responses()
    assert (result.read, result.written, result.dead_lettered, result.failed) == (6, 2, 4, 0)
    assert len(list(read_jsonl(dlq.path))) == 4


def test_replay_command_of_poison_lines_dead_letters_them(
    project_copy: ProjectConfig, tmp_path: Path
) -> None:
    """Through the command line (which also reads the file for the ids to show and the as-of
    time): the poison lines are dead-lettered, the rest written, no traceback."""
    from click.testing import CliRunner

    from fsgen.cli import main

    src = tmp_path / "poison.jsonl"
    src.write_bytes(
        b"\n".join(
            [*POISON_VALUES, json.dumps(good("C1")).encode(), json.dumps(good("C2")).encode()]
        )
        + b"\n"
    )
    result = CliRunner().invoke(
        main,
        ["--project", str(project_copy.root), "stream", "replay", GROUP, str(src), "--json"],
        env={"COLUMNS": "200", "NO_COLOR": "1"},
    )
    assert result.exit_code == 1, result.stderr  # dead letters: exit status 1
    assert "error:" not in result.stderr and "Traceback" not in result.stderr
    counts = json.loads(result.stdout)
    assert (counts["read"], counts["written"], counts["dead_lettered"]) == (6, 2, 4)
    # the ids shown: the first two that can be stored (not the lone surrogate's)
    assert "C5: after  (none)" in result.stderr and "C6: after  (none)" in result.stderr
    dlq = project_copy.store_path / "dead-letter" / f"{GROUP}.jsonl"
    assert len(list(read_jsonl(dlq))) == 4


def test_dead_letters_keep_the_batch_order_whichever_step_found_them(
    handler: Handler, store: LocalStore, tmp_path: Path
) -> None:
    """A bad value (found by validation) before a record that is no JSON (found by decoding)
    is dead-lettered first, as the stream held them."""
    batch = event([good("C1", tenure_months="many"), b"{oops", good("C2"), bad_birth()])
    dlq = JsonlDeadLetter(tmp_path / "dlq.jsonl")
    result = handler.process(batch, store.writer(GROUP), dlq, NO_WAIT)
    expected = [f"{n:056d}" for n in (1, 2, 4)]
    assert [e["sequenceNumber"] for e in read_jsonl(dlq.path)] == expected
    assert [f.sequence_number for f in result.failures] == expected
