"""An entity whose aggregation state was refused (over SageMaker's 350 KB record) has no
online state: ``fsgen get`` says that it was refused, why, by which run and where the refusal
is written (the rejects or dead-letter file the audit trail names), and what the offline
store holds of it -- not that the online store "never held" it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from fsgen.cli import main

DEFS = """
from fsgen import Entity, FeatureGroup, Integral, List, String

device = Entity("device_id", String, description="A sensor")
notes = FeatureGroup(
    "notes", entity=device, event_time="noted_at", owner="iot", description="Notes",
)


@notes.aggregation(List(String), function="last_n", n=2, windows=["1d"], hop="1h",
                   lateness="10m", description="Last notes")
def last_notes(note: str) -> str:
    return note


@notes.aggregation(Integral, function="count", windows=["1h"], hop="1h", lateness="10m",
                   description="Notes")
def note_count(note: str) -> int:
    return 1
"""
BIG = "N" * 200_000  # two of them are over a record


def _project(make_project: Callable[..., Path], deploy: Callable[[Path], None]) -> Path:
    root = make_project({"featuredefs/notes.py": DEFS})
    deploy(root)
    (root / "notes.csv").write_text(
        "device_id,noted_at,note\n"
        f"d1,2024-03-10T00:00:00Z,{BIG}\n"
        f"d1,2024-03-10T00:10:00Z,{BIG}\n"
        "d2,2024-03-10T00:10:00Z,small\n"
    )
    return root


def _cli(root: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["--project", str(root), *args])


def test_get_names_the_refused_backfill_state_and_its_reject(
    make_project: Callable[..., Path], deploy: Callable[[Path], None]
) -> None:
    root = _project(make_project, deploy)
    rejects = root / "rejects.jsonl"
    result = _cli(root, "ingest", "notes", str(root / "notes.csv"), "--rejects", str(rejects))
    assert result.exit_code == 1, result.output
    result = _cli(root, "get", "notes", "d1")
    assert result.exit_code == 1
    text = result.output
    assert "never held" not in text, text
    assert text.startswith(
        "error: notes: no online aggregation state for 'd1': its state was refused, not "
        "written: aggregation state is 400,305 bytes ('last_notes', last_n: 400,184); a "
        "SageMaker record holds at most 358,400"
    ), text
    assert f"(ingest of {root / 'notes.csv'} at " in text, text
    assert f"row 1; the <state> entry in {rejects})" in text, text
    assert "the offline store holds its 2 event(s), which training sets read" in text
    assert _cli(root, "get", "notes", "d2").exit_code == 0

    # the rejects file is gone: what the store still knows, and the way to find the rest
    rejects.unlink()
    text = _cli(root, "get", "notes", "d1").output
    assert "the online store holds no state for it; the offline store holds its 2 event(s)" in (
        text
    ), text
    assert "No refusal of its state is on record" in text
    assert "fsgen history --kind ingest --group notes" in text
    assert "fsgen backfill notes d1" in text
    # an id nothing was written for is still that
    text = _cli(root, "get", "notes", "d9").output
    assert text.strip().endswith("no record was ever written for this id"), text


def test_get_names_a_stream_refusal_from_the_dead_letter_file(
    make_project: Callable[..., Path], deploy: Callable[[Path], None]
) -> None:
    """The first event of d5 fits no state (a value of 358,300 characters, which alone fits
    a record): the handler dead-letters it, nothing of d5 is written."""
    root = _project(make_project, deploy)
    events = root / "notes.jsonl"
    line = {"device_id": "d5", "noted_at": "2024-03-10T00:00:00Z", "note": "L" * 358_300}
    events.write_text(json.dumps(line) + "\n")
    result = _cli(root, "stream", "replay", "notes", str(events))
    assert result.exit_code == 1, result.output[-2000:]
    assert "dead-lettered: <state>: aggregation state is" in result.output, result.output[-2000:]
    text = _cli(root, "get", "notes", "d5").output
    dead = root / ".fsgen" / "dead-letter" / "notes.jsonl"
    assert "its state was refused, not written: aggregation state is" in text, text
    assert f"(stream replay of {events} at " in text, text
    assert f"line 1; the <state> entry in {dead}); no event of it was written" in text, text
