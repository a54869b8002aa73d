"""A record over SageMaker's 350 KB record size (PutRecord refuses it) is a reject of its row,
with its row number and size, before anything of it is written; the other rows are stored.
The reject's field is the feature whose value alone is over the limit, ``<record>`` when only
the sum of the features is; batch rejects and stream dead letters agree."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fsgen.config import load_config
from fsgen.loader import load
from fsgen.runtime.ingest import MAX_RECORD_BYTES
from fsgen.store import LocalStore

DEFS = """\
from fsgen import Entity, FeatureGroup, String

doc = Entity("doc_id", String, description="d")
docs = FeatureGroup("docs", entity=doc, event_time="ts", owner="o", description="d")


@docs.feature(String, description="the text")
def body(text: str) -> str:
    return text


@docs.feature(String, description="the summary")
def abstract(summary: str | None) -> str | None:
    return summary
"""

HALF = "y" * (MAX_RECORD_BYTES // 2)  # two of them: each fits, not both


def test_a_record_over_350_kb_is_a_reject_and_the_rest_is_stored(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    root = make_project({"featuredefs/defs.py": DEFS})
    big = "é" * (MAX_RECORD_BYTES // 2)  # under 350 K characters, over 350 KB in UTF-8
    source = tmp_path / "docs.jsonl"
    import json

    rows = [
        {"doc_id": "a", "ts": "2024-01-01T00:00:00Z", "text": "small"},
        {"doc_id": "b", "ts": "2024-01-01T00:00:00Z", "text": big},
        {"doc_id": "c", "ts": "2024-01-01T00:00:00Z", "text": "x" * (MAX_RECORD_BYTES - 100)},
        {"doc_id": "d", "ts": "2024-01-01T00:00:00Z", "text": HALF, "summary": HALF},
    ]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config, spec = load_config(root), load(root)
    with LocalStore.open(config, spec) as store:
        result = store.ingest("docs", source, rejects=tmp_path / "rejects.jsonl", workers=0)
        assert (result.read, result.written, result.rejected) == (4, 2, 2)
        alone, both = result.samples
        assert (alone.row, alone.field) == (2, "body")  # it used to be <record>
        assert alone.reason == (
            "feature body alone is 358,404 bytes (its name and value in UTF-8); a SageMaker "
            "record holds at most 358,400 (350 KB): not written"
        )
        assert (both.row, both.field) == (4, "<record>")
        assert both.reason == (
            "record is 358,441 bytes (the largest feature: abstract, 179,208); a SageMaker "
            "record holds at most 358,400 (350 KB): not written"
        )
        assert store.get_record("docs", "b") is None
        assert store.get_record("docs", "c") is not None  # just under the limit: stored
        offline = store.read_offline("docs")
        assert sorted(offline["doc_id"]) == ["a", "c"]


def test_the_stream_handler_dead_letters_a_record_over_350_kb(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    """The stream path takes the batch path's check: the record PutRecord would refuse is
    dead-lettered with its size, the batch's other records are written."""
    import base64
    import json

    from fsgen.bind import group_runtime
    from fsgen.runtime.kinesis import process_event

    root = make_project({"featuredefs/defs.py": DEFS})
    config, spec = load_config(root), load(root)
    rows = [
        {"doc_id": "a", "ts": "2024-01-01T00:00:00Z", "text": "small"},
        {"doc_id": "b", "ts": "2024-01-01T00:00:00Z", "text": "é" * (MAX_RECORD_BYTES // 2)},
        {"doc_id": "c", "ts": "2024-01-01T00:00:00Z", "text": HALF, "summary": HALF},
        {"doc_id": "d", "ts": "2024-01-01T00:00:00Z", "text": "x" * (MAX_RECORD_BYTES + 1)},
    ]
    event = {
        "Records": [
            {
                "kinesis": {
                    "partitionKey": r["doc_id"],
                    "sequenceNumber": str(n),
                    "data": base64.b64encode(json.dumps(r).encode()).decode(),
                }
            }
            for n, r in enumerate(rows, start=1)
        ]
    }

    class Letters:
        def __init__(self) -> None:
            self.entries: list[dict[str, object]] = []

        def send(self, entries: list[dict[str, object]]) -> None:
            self.entries += entries

    dead = Letters()
    with LocalStore.open(config, spec) as store:
        result = process_event(group_runtime(spec.group("docs")), event, store.writer("docs"), dead)
        assert result.written == 1 and result.dead_lettered == 3
        assert [(f.sequence_number, f.field) for f in result.failures] == [
            ("2", "body"),
            ("3", "<record>"),
            ("4", "body"),  # over PutRecord's 358,400 characters per value
        ]
        assert [e["field"] for e in dead.entries] == ["body", "<record>", "body"]
        assert "358,400 (350 KB): not written" in result.failures[0].message
        assert "takes at most 358,400 per value" in result.failures[2].message
        assert store.get_record("docs", "a") is not None
        assert store.get_record("docs", "b") is None


def test_a_record_identifier_over_2_kb_is_a_reject_in_batch_and_stream(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    """SageMaker takes a record identifier of at most 2 KB: a longer one (in UTF-8 bytes) is a
    reject naming the identifier, by row in a batch and by sequence number on the stream."""
    import base64
    import json

    from fsgen.bind import group_runtime
    from fsgen.runtime.ingest import MAX_IDENTIFIER_BYTES
    from fsgen.runtime.kinesis import process_event

    root = make_project({"featuredefs/defs.py": DEFS})
    config, spec = load_config(root), load(root)
    long_id = "ü" * (MAX_IDENTIFIER_BYTES // 2 + 1)  # 1,025 characters, 2,050 bytes
    rows = [
        {
            "doc_id": "a" * MAX_IDENTIFIER_BYTES,
            "ts": "2024-01-01T00:00:00Z",
            "text": "at the limit",
        },
        {"doc_id": long_id, "ts": "2024-01-01T00:00:00Z", "text": "over it"},
    ]
    source = tmp_path / "docs.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with LocalStore.open(config, spec) as store:
        result = store.ingest("docs", source, workers=0)
        assert (result.read, result.written, result.rejected) == (2, 1, 1)
        (reject,) = result.samples
        assert reject.row == 2 and reject.field == "doc_id"
        assert reject.reason == (
            "record identifier is 2,050 bytes; SageMaker takes at most 2,048 (2 KB): not written"
        )
        event = {
            "Records": [
                {
                    "kinesis": {
                        "partitionKey": "p",
                        "sequenceNumber": str(n),
                        "data": base64.b64encode(json.dumps(r).encode()).decode(),
                    }
                }
                for n, r in enumerate(rows, start=1)
            ]
        }
        streamed = process_event(group_runtime(spec.group("docs")), event, store.writer("docs"))
        assert streamed.written == 1
        assert [(f.sequence_number, f.field) for f in streamed.failures] == [("2", "doc_id")]
        assert store.get_record("docs", long_id) is None
