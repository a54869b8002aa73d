"""An Integral record id on the command line is read as ingestion stores it: ``007`` is the
record 7, and text that is no integer is refused naming the key, rather than a lookup that
reports "no online record" for an id no record can have."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

DEFS = """\
from fsgen import Entity, FeatureGroup, Fractional, Integral, Online

depot = Entity("depot_id", Integral, description="A depot")
depots = FeatureGroup("depots", entity=depot, event_time="as_of", event_time_type=Fractional,
                      owner="o", description="Depots", online=Online(ttl="3650d"))


@depots.feature(Integral, description="Parcels waiting")
def queue(queue: int) -> int:
    return queue
"""


def fsgen(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fsgen.cli", "--project", str(root), *args],
        capture_output=True,
        text=True,
        cwd=root,
    )


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    root = make_project({"featuredefs/defs.py": DEFS})
    assert fsgen(root, "apply", "--auto-approve").returncode == 0
    (root / "depots.csv").write_text("depot_id,as_of,queue\n7,1764547200.0,12\n")
    assert fsgen(root, "ingest", "depots", "depots.csv").returncode == 0
    return root


@pytest.mark.parametrize("given", [("7",), ("007",), ("+7",), ("--key", "depot_id=07")])
def test_an_integral_id_is_read_in_canonical_form(project: Path, given: tuple[str, ...]) -> None:
    result = fsgen(project, "get", "depots", *given, "--json")
    assert result.returncode == 0, result.stderr
    assert '"queue": 12' in result.stdout


@pytest.mark.parametrize(
    "command",
    [
        ("get", "depots", "seven"),
        ("get", "depots", "--key", "depot_id=7.0"),
        ("delete-record", "depots", "x7", "--event-time", "1764547200"),
    ],
)
def test_an_id_that_is_no_integer_is_refused_naming_the_key(
    project: Path, command: tuple[str, ...]
) -> None:
    result = fsgen(project, *command)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: depots: key depot_id is Integral; "), line
    assert "is not an integer" in line and "no online record" not in line


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("big.csv", "depot_id,as_of,queue\n99999999999999999999,1764547200.0,1\n8,1764547200,2\n"),
        (
            "big.jsonl",
            '{"depot_id": 9223372036854775808, "as_of": 1764547200.0, "queue": 1}\n'
            '{"depot_id": 8, "as_of": 1764547200.0, "queue": 2}\n',
        ),
    ],
)
def test_an_id_beyond_64_bits_in_a_file_is_a_reject_naming_the_key(
    project: Path, name: str, text: str
) -> None:
    """Not the store's "cannot hold" error on no field, in Python's words."""
    (project / name).write_text(text)
    result = fsgen(project, "ingest", "depots", name, "--rejects", "rejects.jsonl")
    assert result.returncode == 1
    assert "read 2, written 1, rejected 1" in result.stderr, result.stderr
    (reject,) = [json.loads(line) for line in (project / "rejects.jsonl").read_text().splitlines()]
    assert (reject["row"], reject["field"]) == (1, "depot_id")
    assert reject["reason"].endswith("does not fit SageMaker's 64-bit Integral"), reject
