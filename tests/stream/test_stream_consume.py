"""``fsgen stream consume`` against a moto Kinesis server (real boto3 over HTTP): every record
put on the stream is handled exactly once visibly -- also when the consumer process is killed
with SIGKILL mid-run and restarted from its checkpoints."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer
from streamhelpers import GROUP, free_port, good
from test_stream_parity import oracle

from fsgen.config import ProjectConfig
from fsgen.loader import load
from fsgen.runtime.deadletter import JsonlDeadLetter, read_jsonl
from fsgen.store import LocalStore
from fsgen.store.local import ChunkWriter
from fsgen.stream.checkpoints import Checkpoints
from fsgen.stream.consume import Consumer, kinesis_client
from fsgen.stream.events import Handler, load_handler

FSGEN = str(Path(sys.executable).parent / "fsgen")


@pytest.fixture(scope="module")
def kinesis_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def payloads(n: int) -> list[bytes]:
    """n records over 25 customers, event times out of order, every 10th one poison."""
    out = []
    for i in range(n):
        if i % 10 == 7:
            out.append(
                b"{not json"
                if i % 20 == 7
                else json.dumps(good(f"C{i % 25}", tenure_months="x")).encode()
            )
            continue
        minute = (i * 37) % 60
        out.append(
            json.dumps(
                good(f"C{i % 25}", f"2024-03-01T{i % 24:02d}:{minute:02d}:00Z", tenure_months=i + 1)
            ).encode()
        )
    return out


def make_stream(url: str, data: list[bytes], shards: int = 2) -> str:
    client = boto3.client("kinesis", endpoint_url=url, region_name="us-east-1")
    name = f"updates-{uuid.uuid4().hex[:8]}"
    client.create_stream(StreamName=name, ShardCount=shards)
    client.get_waiter("stream_exists").wait(
        StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    for i, d in enumerate(data):
        client.put_record(StreamName=name, Data=d, PartitionKey=f"key-{i % 7}")
    return name


def check_store(store: LocalStore, handler: Handler, data: list[bytes], dead_letter: Path) -> None:
    """Online = the latest valid record per id; offline = each valid record once; the DLQ =
    each poison record once."""
    raws = [json.loads(d) for d in data if not d.startswith(b"{not")]
    latest, valid = oracle(handler, raws)
    ids = sorted(latest)
    assert dict(zip(ids, store.batch_get(GROUP, ids, now=0), strict=True)) == latest
    assert len(store.read_offline(GROUP)) == valid
    poison = len(data) - valid
    entries = list(read_jsonl(dead_letter))
    assert len(entries) == poison
    assert len({(e["shardId"], e["sequenceNumber"]) for e in entries}) == poison


def test_consume_in_steps_resumes_from_checkpoints(
    kinesis_url: str,
    example: tuple[ProjectConfig, object],
    handler: Handler,
    store: LocalStore,
    tmp_path: Path,
) -> None:
    config, _ = example
    data = payloads(60)
    stream = make_stream(kinesis_url, data)
    dlq = tmp_path / "dlq.jsonl"

    def consumer() -> Consumer:
        return Consumer(
            handler,
            kinesis_client(kinesis_url, "us-east-1"),
            stream,
            store.writer(GROUP),
            JsonlDeadLetter(dlq),
            Checkpoints(config.store_path, stream, GROUP),
            batch_size=7,
            poll_interval=0.01,
        )

    first = consumer().run(max_records=25)
    assert first.read == 25 and first.stopped == "max records (25)"
    rest = consumer().run(idle_timeout=0.5)
    assert first.read + rest.read == 60
    assert first.written + rest.written + first.dead_lettered + rest.dead_lettered == 60
    # nothing was handled twice: every offline row ever appended is visible
    assert len(store.read_offline(GROUP, dedup=False)) == len(store.read_offline(GROUP))
    check_store(store, handler, data, dlq)
    marks = Checkpoints(config.store_path, stream, GROUP).shards
    assert sorted(marks) == ["shardId-000000000000", "shardId-000000000001"]


def test_retryable_failure_is_read_again_not_lost(
    kinesis_url: str,
    example: tuple[ProjectConfig, object],
    handler: Handler,
    store: LocalStore,
    tmp_path: Path,
) -> None:
    config, _ = example
    data = payloads(20)
    stream = make_stream(kinesis_url, data, shards=1)

    class Flaky(ChunkWriter):
        calls = 0

        def write(self, rt, processed) -> None:  # type: ignore[no-untyped-def]
            Flaky.calls += 1
            if Flaky.calls in (2, 3):
                raise RuntimeError("store unavailable")  # not retried in the handler
            super().write(rt, processed)

    result = Consumer(
        handler,
        kinesis_client(kinesis_url, "us-east-1"),
        stream,
        Flaky(store, "flaky", pipelined=False),
        JsonlDeadLetter(tmp_path / "dlq.jsonl"),
        Checkpoints(config.store_path, stream, GROUP),
        batch_size=6,
        poll_interval=0.01,
        sleep=lambda _s: None,
    ).run(idle_timeout=1.0)
    assert result.read == 20 and result.retried > 0
    check_store(store, handler, data, tmp_path / "dlq.jsonl")


def test_killed_consumer_restarts_without_loss_or_duplicates(
    kinesis_url: str, project_copy: ProjectConfig
) -> None:
    data = payloads(150)
    stream = make_stream(kinesis_url, data)
    cmd = [
        FSGEN,
        "--project",
        str(project_copy.root),
        "stream",
        "consume",
        GROUP,
        "--stream",
        stream,
        "--endpoint-url",
        kinesis_url,
        "--region",
        "us-east-1",
        "--batch-size",
        "4",
        "--poll-interval",
        "0",
    ]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    marks = project_copy.store_path / "stream" / "checkpoints" / stream / f"{GROUP}.json"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not marks.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.3)  # some batches further, then a kill at an arbitrary point
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    assert marks.exists()
    done = subprocess.run(
        [*cmd, "--idle-timeout", "1.5", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    spec = load(project_copy.root)
    handler = load_handler(project_copy, spec, GROUP)
    with LocalStore.open(project_copy, spec) as store:
        check_store(
            store, handler, data, project_copy.store_path / "dead-letter" / f"{GROUP}.jsonl"
        )
    # the finished run is in the audit trail, like batch ingestion and replays
    from fsgen import audit

    runs = [e for e in audit.events(project_copy) if e.kind == "ingest"]
    assert runs and runs[-1].details["source"] == f"kinesis:{stream}", runs
    assert str(runs[-1].details["run_id"]).startswith("stream-consume-")


def test_consume_dead_letters_poison_records_and_never_blocks_the_shard(
    kinesis_url: str, project_copy: ProjectConfig
) -> None:
    """A lone surrogate, a 401-digit integer, 100,000 nested ``[`` and an event time in year
    10000 put on a real (moto) stream: ``fsgen stream consume`` dead-letters each with its
    Kinesis sequence number, writes the rest, and its checkpoint moves past them all."""
    from test_stream_poison import POISON_VALUES

    client = boto3.client("kinesis", endpoint_url=kinesis_url, region_name="us-east-1")
    name = f"poison-{uuid.uuid4().hex[:8]}"
    client.create_stream(StreamName=name, ShardCount=1)
    client.get_waiter("stream_exists").wait(
        StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    sent = [json.dumps(good("G1")).encode(), *POISON_VALUES, json.dumps(good("G2")).encode()]
    sequence = [
        client.put_record(StreamName=name, Data=d, PartitionKey="k")["SequenceNumber"] for d in sent
    ]
    cmd = [
        FSGEN,
        "--project",
        str(project_copy.root),
        "stream",
        "consume",
        GROUP,
        "--stream",
        name,
        "--endpoint-url",
        kinesis_url,
        "--region",
        "us-east-1",
        "--batch-size",
        "3",
        "--poll-interval",
        "0",
        "--idle-timeout",
        "1",
        "--json",
    ]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "error:" not in done.stderr
    counts = json.loads(done.stdout)
    assert (counts["read"], counts["written"], counts["dead_lettered"]) == (6, 2, 4)
    assert counts["retried"] == 0
    dlq = project_copy.store_path / "dead-letter" / f"{GROUP}.jsonl"
    entries = list(read_jsonl(dlq))
    assert sorted(e["sequenceNumber"] for e in entries) == sorted(sequence[1:5])
    assert sorted(base64.b64decode(str(e["data"])) for e in entries) == sorted(sent[1:5])
    spec = load(project_copy.root)
    with LocalStore.open(project_copy, spec) as store:
        assert [r is not None for r in store.batch_get(GROUP, ["G1", "G2"], now=0)] == [True] * 2
        assert len(store.read_offline(GROUP)) == 2
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert json.loads(again.stdout)["read"] == 0  # the checkpoint is past every record
