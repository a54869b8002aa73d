"""Concurrent reject and dead-letter writers into one destination lose no line, and the
dead-letter de-duplication never merges distinct records."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

from fsgen.runtime.deadletter import JsonlDeadLetter, read_jsonl
from fsgen.runtime.ingest import RejectSink
from fsgen.runtime.sources import Reject

WRITERS = 4
PER_WRITER = 300


def _dead_letter_writer(path: str, writer: int, start: multiprocessing.synchronize.Event) -> None:
    start.wait()
    dlq = JsonlDeadLetter(path)
    for n in range(PER_WRITER):
        # every writer numbers from 1, as two replays of two files do
        dlq.send(
            [
                {
                    "group": "g",
                    "shardId": "replay",
                    "sequenceNumber": str(n + 1),
                    "reason": "bad",
                    "data": f"writer-{writer}-{n}",
                }
            ]
        )


def _reject_writer(path: str, writer: int, start: multiprocessing.synchronize.Event) -> None:
    start.wait()
    sink = RejectSink(path)
    for n in range(PER_WRITER):
        sink.add(Reject(f"w{writer}", n + 1, "x", "bad", {"n": n}))
    sink.close()


def _run(target: object, path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=target, args=(str(path), w, start)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0


def test_concurrent_dead_letter_writers_keep_every_line(tmp_path: Path) -> None:
    path = tmp_path / "dead-letter" / "g.jsonl"
    _run(_dead_letter_writer, path)
    entries = list(read_jsonl(path))
    assert sorted(str(e["data"]) for e in entries) == sorted(
        f"writer-{w}-{n}" for w in range(WRITERS) for n in range(PER_WRITER)
    )
    assert len(path.read_bytes().splitlines()) == WRITERS * PER_WRITER  # no torn line


def test_concurrent_reject_writers_keep_every_line(tmp_path: Path) -> None:
    path = tmp_path / "rejects.jsonl"
    _run(_reject_writer, path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted((r["source"], r["row"]) for r in rows) == sorted(
        (f"w{w}", n + 1) for w in range(WRITERS) for n in range(PER_WRITER)
    )
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_later_run_appends_to_an_existing_rejects_file(tmp_path: Path) -> None:
    path = tmp_path / "rejects.jsonl"
    path.write_text('{"source": "earlier", "row": 1')  # torn by a crash
    sink = RejectSink(path)
    sink.add(Reject("now", 7, "x", "bad"))
    assert sink.close() == path
    lines = path.read_text().splitlines()
    assert lines[0] == '{"source": "earlier", "row": 1'
    assert json.loads(lines[1])["row"] == 7


def test_same_sequence_number_different_payload_is_kept(tmp_path: Path) -> None:
    dlq = JsonlDeadLetter(tmp_path / "d.jsonl")
    first = {
        "group": "g",
        "shardId": "replay",
        "sequenceNumber": "2",
        "data": "YQ==",
        "reason": "r",
    }
    dlq.send([first])
    dlq.send([{**first, "data": "Yg=="}])
    dlq.send([first])  # the same record again (a re-run): not a new line
    assert [e["data"] for e in read_jsonl(dlq.path)] == ["YQ==", "Yg=="]
    # a second writer that opened the file earlier sees the first writer's lines
    other = JsonlDeadLetter(dlq.path)
    other.send([first, {**first, "data": "Yw=="}])
    assert [e["data"] for e in read_jsonl(dlq.path)] == ["YQ==", "Yg==", "Yw=="]
