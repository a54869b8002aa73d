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
    assert result.failed == 0  # every retried record was written in the end
    check_store(store, handler, data, tmp_path / "dlq.jsonl")


def test_records_still_failing_at_the_stop_are_counted_as_failed(
    kinesis_url: str,
    example: tuple[ProjectConfig, object],
    handler: Handler,
    store: LocalStore,
    tmp_path: Path,
) -> None:
    """A store that stays unavailable: the consumer stops at its idle timeout with the first
    batch still failing; those records are ``failed`` (not written, not dead-lettered, not
    checkpointed), which makes ``fsgen stream consume`` exit 1."""
    config, _ = example
    stream = make_stream(kinesis_url, payloads(10), shards=1)

    class Down(ChunkWriter):
        def write(self, rt, processed) -> None:  # type: ignore[no-untyped-def]
            raise RuntimeError("store unavailable")

    result = Consumer(
        handler,
        kinesis_client(kinesis_url, "us-east-1"),
        stream,
        Down(store, "down", pipelined=False),
        JsonlDeadLetter(tmp_path / "dlq.jsonl"),
        Checkpoints(config.store_path, stream, GROUP),
        batch_size=6,
        poll_interval=0.01,
        commit_seconds=0,
    ).run(idle_timeout=0.5)
    assert (result.read, result.written, result.dead_lettered) == (0, 0, 0)
    assert result.failed == 6 and result.retried >= 6
    assert "failed 6 " in result.summary()
    assert Checkpoints(config.store_path, stream, GROUP).shards == {}


def offline_files(store: LocalStore) -> int:
    return len(list(store.offline_dir(GROUP).rglob("*.parquet")))


def test_coalesced_consume_stores_what_per_batch_consume_stores(
    kinesis_url: str,
    example: tuple[ProjectConfig, object],
    handler: Handler,
    tmp_path: Path,
) -> None:
    """The batches of many polls committed together leave the same offline rows, online state,
    dead letters and checkpoints as one commit per GetRecords batch, in fewer commits and
    files; each commit's checkpoints are saved after it."""
    _, spec = example
    data = payloads(120)
    stream = make_stream(kinesis_url, data)
    runs = {}
    for name, seconds in (("per-batch", 0.0), ("coalesced", 3600.0)):
        with LocalStore(tmp_path / name, spec) as target:  # type: ignore[arg-type]
            result = Consumer(
                handler,
                kinesis_client(kinesis_url, "us-east-1"),
                stream,
                target.writer(GROUP),
                JsonlDeadLetter(tmp_path / f"{name}.jsonl"),
                Checkpoints(tmp_path / name, stream, GROUP),
                batch_size=5,
                poll_interval=0.01,
                commit_rows=40,
                commit_seconds=seconds,
            ).run(idle_timeout=0.5)
            check_store(target, handler, data, tmp_path / f"{name}.jsonl")
            rt = target.runtime(GROUP)
            runs[name] = (
                result,
                target.read_offline(GROUP, dedup=False)
                .drop(columns=["write_time", "api_invocation_time"])
                .sort_values(["customer_id", "last_updated_time"])
                .reset_index(drop=True),
                {k: v[0::2] for k, v in target.online.snapshot(rt).items()},
                offline_files(target),
                Checkpoints(tmp_path / name, stream, GROUP).shards,
            )
    (one, one_rows, one_online, one_files, one_marks) = runs["per-batch"]
    (many, many_rows, many_online, many_files, many_marks) = runs["coalesced"]
    assert (many.read, many.written, many.dead_lettered) == (
        one.read,
        one.written,
        one.dead_lettered,
    )
    assert one.commits == one.batches > 2 * many.commits >= 2
    assert many_files < one_files
    assert many_rows.equals(one_rows)
    assert many_online == one_online
    assert many_marks == one_marks and len(many_marks) == 2


def test_failed_commit_moves_no_checkpoint(
    kinesis_url: str,
    example: tuple[ProjectConfig, object],
    handler: Handler,
    store: LocalStore,
    tmp_path: Path,
) -> None:
    """A commit that fails writes none of its batches and saves none of their checkpoints: the
    consumer stops with the error, and a restart reads those records again, exactly once."""
    config, _ = example
    data = payloads(60)
    stream = make_stream(kinesis_url, data, shards=1)
    marks_at_commit: list[dict[str, str]] = []

    class Failing(ChunkWriter):
        def flush(self) -> None:
            marks_at_commit.append(dict(Checkpoints(config.store_path, stream, GROUP).shards))
            if len(marks_at_commit) == 2:
                raise OSError("disk full")
            super().flush()

    def consumer(sink: ChunkWriter) -> Consumer:
        return Consumer(
            handler,
            kinesis_client(kinesis_url, "us-east-1"),
            stream,
            sink,
            JsonlDeadLetter(tmp_path / "dlq.jsonl"),
            Checkpoints(config.store_path, stream, GROUP),
            batch_size=5,
            poll_interval=0.01,
            commit_rows=20,
            commit_seconds=3600.0,
        )

    with pytest.raises(OSError, match="disk full"):
        consumer(Failing(store, "failing", pipelined=False)).run(idle_timeout=0.5)
    assert marks_at_commit[0] == {}  # nothing was checkpointed before the first commit
    after_first = Checkpoints(config.store_path, stream, GROUP).shards
    assert after_first == marks_at_commit[1] != {}
    assert len(store.read_offline(GROUP, dedup=False)) == sum(
        1 for d in data[:20] if d.startswith(b'{"') and b'"x"' not in d
    )
    rest = consumer(store.writer(GROUP)).run(idle_timeout=0.5)
    assert rest.read == 40
    assert len(store.read_offline(GROUP, dedup=False)) == len(store.read_offline(GROUP))
    check_store(store, handler, data, tmp_path / "dlq.jsonl")


@pytest.mark.parametrize(
    "commit",
    [
        [],  # the defaults: the batches of up to a second (here, all of them) commit together
        ["--commit-rows", "10"],  # a commit every few batches, kills land between them
        ["--commit-seconds", "0"],  # every batch on its own
    ],
    ids=["default", "every-10-records", "every-batch"],
)
def test_killed_consumer_restarts_without_loss_or_duplicates(
    kinesis_url: str, project_copy: ProjectConfig, commit: list[str]
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
        *commit,
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
    # exit 1 exactly when this run dead-lettered a poison record (it may have been before the
    # kill, then 0)
    assert done.returncode == (1 if json.loads(done.stdout)["dead_lettered"] else 0), done.stderr
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
    assert done.returncode == 1, done.stderr  # as replay: a dead-lettered record is exit 1
    assert "Traceback" not in done.stderr and "error:" not in done.stderr
    assert "dead-lettered 4, retried 0, failed 0" in done.stderr  # the summary is printed first
    assert "dead letters: " in done.stderr
    counts = json.loads(done.stdout)
    assert (counts["read"], counts["written"], counts["dead_lettered"]) == (6, 2, 4)
    assert (counts["retried"], counts["failed"]) == (0, 0)
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
    assert again.returncode == 0, again.stderr  # nothing dead-lettered this time


def test_consume_an_aggregation_group_equals_its_backfill(
    kinesis_url: str, example: tuple[ProjectConfig, object], tmp_path: Path
) -> None:
    """Purchases on two shards, keyed by customer, consumed in two steps through the
    generated handler: each customer's features equal those of a batch backfill of the same
    events, and every event is one offline row."""
    from fsgen.runtime.aggregate import finalize_record

    config, _ = example
    spec = load(config.root)
    handler = load_handler(config, spec, "purchases")
    assert handler.note.startswith("running ") and handler.aggregations
    rows = [
        {
            "customer_id": f"C{i % 5}",
            "purchased_at": f"2024-03-01T{(i * 11) // 60:02d}:{(i * 11) % 60:02d}:00Z",
            "amount": float(i % 4),
        }
        for i in range(40)
    ]
    client = boto3.client("kinesis", endpoint_url=kinesis_url, region_name="us-east-1")
    name = f"purchases-{uuid.uuid4().hex[:8]}"
    client.create_stream(StreamName=name, ShardCount=2)
    client.get_waiter("stream_exists").wait(
        StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    for row in rows:
        client.put_record(
            StreamName=name, Data=json.dumps(row).encode(), PartitionKey=str(row["customer_id"])
        )
    dlq = tmp_path / "dlq.jsonl"
    with LocalStore(tmp_path / "stream", spec) as live:

        def consumer() -> Consumer:
            return Consumer(
                handler,
                kinesis_client(kinesis_url, "us-east-1"),
                name,
                live.writer("purchases"),
                JsonlDeadLetter(dlq),
                Checkpoints(tmp_path / "checkpoints", name, "purchases"),
                batch_size=6,
                poll_interval=0.01,
            )

        first = consumer().run(max_records=13)
        rest = consumer().run(idle_timeout=0.5)
        assert first.written + rest.written == 40 and not dlq.exists()
        streamed = live.batch_get("purchases", [f"C{i}" for i in range(5)])
        assert len(live.read_offline("purchases", dedup=False)) == 40
    (tmp_path / "events.csv").write_text(
        "customer_id,purchased_at,amount\n"
        + "".join(f"{r['customer_id']},{r['purchased_at']},{r['amount']}\n" for r in rows)
    )
    with LocalStore(tmp_path / "batch", spec) as batch:
        batch.ingest("purchases", tmp_path / "events.csv", workers=0)
        backfilled = batch.batch_get("purchases", [f"C{i}" for i in range(5)])
    definitions = [a.runtime() for a in spec.group("purchases").aggregations]
    for at in (1709251200_000000 + k * 1800_000000 for k in range(0, 18, 2)):
        for s, b in zip(streamed, backfilled, strict=True):
            assert finalize_record(definitions, s, at) == finalize_record(definitions, b, at)  # type: ignore[arg-type]


def test_consume_of_a_stream_that_does_not_exist_says_so(
    kinesis_url: str, project_copy: ProjectConfig
) -> None:
    """An unknown stream is named with the endpoint and region it was looked for at, and no
    hint that ``fsgen apply`` would create it (apply makes feature groups, not streams)."""
    name = f"missing-{uuid.uuid4().hex[:8]}"
    cmd = [FSGEN, "--project", str(project_copy.root), "stream", "consume", GROUP]
    cmd += ["--stream", name, "--endpoint-url", kinesis_url, "--region", "us-east-1"]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        f"error: Kinesis stream '{name}' does not exist at {kinesis_url} (region us-east-1); "
        "fsgen reads a stream, it does not create one: check --stream, --region and "
        "--endpoint-url, or create the stream"
    ), done.stderr
    assert not (project_copy.store_path / "stream" / "checkpoints" / name).exists()
