"""A SoftDelete of an aggregation state record with a future EventTime: a state record's
EventTime is its write time, so every later state write with an earlier EventTime is kept out
by the online store's latest-event-time rule (SageMaker's). ``fsgen stream replay`` and
``fsgen ingest`` must not report those states as written and readable: they name the hidden
entities and exit 1, while their events are in the offline history."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner
from test_aggregation_refused_state import DEFS

from fsgen.cli import main
from fsgen.config import load_config
from fsgen.loader import load
from fsgen.store import LocalStore

FUTURE = "2999-01-01T00:00:00Z"


def _cli(root: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["--project", str(root), *args])


def test_writes_hidden_by_a_future_soft_delete_are_named(
    make_project: Callable[..., Path], deploy: Callable[[Path], None]
) -> None:
    root = make_project({"featuredefs/notes.py": DEFS})
    deploy(root)
    events = root / "notes.csv"
    events.write_text(
        "device_id,noted_at,note\nd1,2024-03-10T00:00:00Z,a\nd2,2024-03-10T00:05:00Z,b\n"
    )
    assert _cli(root, "ingest", "notes", str(events)).exit_code == 0
    with LocalStore.open(load_config(root), load(root)) as store:
        store.delete_record("notes", "d1", FUTURE)  # another client's DeleteRecord
    stream = root / "notes.jsonl"
    stream.write_text(
        "".join(
            json.dumps({"device_id": d, "noted_at": "2024-03-10T01:00:00Z", "note": "c"}) + "\n"
            for d in ("d1", "d2")
        )
    )
    result = _cli(root, "stream", "replay", "notes", str(stream))
    assert result.exit_code == 1, result.output
    assert "read 2, written 2" in result.output
    assert (
        f"warning: notes: the online state of 1 entity is not readable: d1 (until {FUTURE}): a "
        "SoftDelete with a later event time than this write hides it" in result.output
    ), result.output
    assert _cli(root, "get", "notes", "d1").exit_code == 1
    assert _cli(root, "get", "notes", "d2").exit_code == 0

    # the backfill rebuilds d1's state from its events: hidden the same way, and said so
    result = _cli(root, "ingest", "notes", str(events))
    assert result.exit_code == 1, result.output
    assert f"the online state of 1 entity is not readable: d1 (until {FUTURE})" in result.output
    # nothing hidden: no warning, exit 0
    other = make_project({"featuredefs/notes.py": DEFS})
    deploy(other)
    result = _cli(other, "ingest", "notes", str(events))
    assert result.exit_code == 0 and "not readable" not in result.output


def test_stream_consume_names_the_states_a_later_soft_delete_hides(
    make_project: Callable[..., Path],
    deploy: Callable[[Path], None],
    moto_url: str,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    """As replay and ingest do: at its stop, in its summary and in --json, exit 1; an entity
    soft-deleted into the future that this run did not write is not named."""
    import uuid

    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    root = make_project({"featuredefs/notes.py": DEFS})
    deploy(root)
    with LocalStore.open(load_config(root), load(root)) as store:
        store.delete_record("notes", "d1", FUTURE)
        store.delete_record("notes", "d3", FUTURE)  # never written by the stream
    client = boto3.client("kinesis", endpoint_url=moto_url, region_name="us-east-1")
    name = f"notes-{uuid.uuid4().hex[:8]}"
    client.create_stream(StreamName=name, ShardCount=1)
    client.get_waiter("stream_exists").wait(
        StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    for device in ("d1", "d2"):
        record = {"device_id": device, "noted_at": "2024-03-10T01:00:00Z", "note": "c"}
        client.put_record(StreamName=name, Data=json.dumps(record).encode(), PartitionKey="k")
    consume = ["stream", "consume", "notes", "--stream", name, "--endpoint-url", moto_url]
    options = ["--region", "us-east-1", "--poll-interval", "0", "--idle-timeout", "1", "--json"]
    result = _cli(root, *consume, *options)
    assert result.exit_code == 1, result.output
    assert "read 2, written 2, dead-lettered 0" in result.stderr
    assert (
        f"warning: notes: the online state of 1 entity is not readable: d1 (until {FUTURE}): a "
        "SoftDelete with a later event time than this write hides it" in result.stderr
    ), result.stderr
    counts = json.loads(result.stdout)
    assert counts["hidden"] == [{"record_id": "d1", "until": FUTURE}]
    assert counts["written"] == 2


def test_ingest_names_only_the_hidden_entities_it_wrote(
    make_project: Callable[..., Path], deploy: Callable[[Path], None]
) -> None:
    """An entity soft-deleted into the future that the ingested file does not hold is no
    state this run wrote: not named, and the run exits 0 (as stream replay and consume)."""
    root = make_project({"featuredefs/notes.py": DEFS})
    deploy(root)
    with LocalStore.open(load_config(root), load(root)) as store:
        store.delete_record("notes", "d1", FUTURE)
    events = root / "notes.csv"
    events.write_text("device_id,noted_at,note\nd2,2024-03-10T00:05:00Z,b\n")
    result = _cli(root, "ingest", "notes", str(events))
    assert result.exit_code == 0, result.output
    assert "not readable" not in result.output
    events.write_text("device_id,noted_at,note\nd1,2024-03-10T00:00:00Z,a\n")
    result = _cli(root, "ingest", "notes", str(events))
    assert result.exit_code == 1, result.output
    assert f"the online state of 1 entity is not readable: d1 (until {FUTURE})" in result.output


COMPOSITE = """
from fsgen import Entity, FeatureGroup, Integral, String

unit = Entity(keys={"site": String, "unit": Integral}, name="unit")
readings = FeatureGroup(
    "readings", entity=unit, event_time="read_at", owner="iot", description="Readings",
)


@readings.aggregation(Integral, function="count", windows=["1h"], hop="1h", lateness="10m",
                      description="Readings")
def reading_count(level: int) -> int:
    return 1
"""


def test_replay_names_a_hidden_state_of_a_composite_key(
    make_project: Callable[..., Path], deploy: Callable[[Path], None]
) -> None:
    """The record identifier of a composite key is no field of the stream's records: the
    entities a replay wrote are known by their key values (an Integral key as its number)."""
    from fsgen.runtime.pipeline import composite_identifier

    root = make_project({"featuredefs/readings.py": COMPOSITE})
    deploy(root)
    hidden = composite_identifier(["s1", 7])
    with LocalStore.open(load_config(root), load(root)) as store:
        store.delete_record("readings", hidden, FUTURE)
    stream = root / "readings.jsonl"
    stream.write_text(
        "".join(
            json.dumps({"site": s, "unit": u, "read_at": "2024-03-10T01:00:00Z", "level": 3}) + "\n"
            for s, u in (("s1", "007"), ("s2", 7))
        )
    )
    result = _cli(root, "stream", "replay", "readings", str(stream))
    assert result.exit_code == 1, result.output
    assert "read 2, written 2" in result.output
    assert f"the online state of 1 entity is not readable: {hidden} (until {FUTURE})" in (
        result.output
    ), result.output


def test_the_batch_job_names_the_hidden_states_it_wrote(
    make_project: Callable[..., Path], deploy: Callable[[Path], None], capsys
) -> None:  # type: ignore[no-untyped-def]
    """The generated batch job into the project's backend says and exits what ``fsgen
    ingest`` does on the same file."""
    from fsgen.backends import project_data_plane
    from fsgen.bind import aggregation_runtime
    from fsgen.runtime.batch import main as batch_main

    root = make_project({"featuredefs/notes.py": DEFS})
    deploy(root)
    with LocalStore.open(load_config(root), load(root)) as store:
        store.delete_record("notes", "d1", FUTURE)
        store.delete_record("notes", "d3", FUTURE)  # not in the file
    events = root / "notes.csv"
    events.write_text(
        "device_id,noted_at,note\nd1,2024-03-10T00:00:00Z,a\nd2,2024-03-10T00:05:00Z,b\n"
    )
    job = aggregation_runtime(load(root).group("notes"))
    code = batch_main(job, [], [str(events), "--project", str(root)], project_data_plane)
    err = capsys.readouterr().err
    assert code == 1, err
    assert (
        f"warning: notes: the online state of 1 entity is not readable: d1 (until {FUTURE}): a "
        "SoftDelete with a later event time than this write hides it" in err
    ), err
