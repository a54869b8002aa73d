"""An aggregation's value function that returns NaN (``math.log`` of a bad reading, a 0/0
ratio computed with numpy) has not said "this event does not contribute" -- that is ``None``
-- but produced a non-finite number, which no window can aggregate: the event is a reject
naming the aggregation (as declared, not its internal ``<name>__value`` column) and the
function's line, in batch ingestion and on the stream alike,
instead of being written as an event that silently counts nowhere."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

DEFS = """\
import math

from fsgen import Entity, FeatureGroup, Fractional, Integral, String

device = Entity("device_id", String, description="A sensor")
readings = FeatureGroup("readings", entity=device, event_time="read_at", owner="o",
                        description="Sensor readings")


@readings.aggregation(Fractional, function="sum", windows=["1h"], hop="5m",
                      description="Log voltage")
def log_voltage(voltage: float) -> float:
    return math.log(voltage) if voltage > 0 else float("nan")


@readings.aggregation(Integral, function="count", windows=["1h"], hop="5m",
                      description="Readings")
def readings_count(voltage: float) -> int:
    return 1
"""

ROWS = [
    ("D1", "2026-01-01T00:00:00Z", 1.0),
    ("D1", "2026-01-01T00:01:00Z", -1.0),  # log of a negative: NaN
    ("D1", "2026-01-01T00:02:00Z", 2.0),
]


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
    return root


def counted(root: Path) -> int:
    from fsgen.config import load_config
    from fsgen.loader import load
    from fsgen.runtime.aggregate import finalize_record
    from fsgen.store import LocalStore

    spec = load(root)
    with LocalStore.open(load_config(root), spec) as store:
        record = store.get_record("readings", "D1")
    assert record is not None
    definitions = [a.runtime() for a in spec.group("readings").aggregations]
    at = 1767225600_000000 + 600_000000  # 2026-01-01T00:10:00Z
    return int(finalize_record(definitions, record, at)["readings_count_1h"])  # type: ignore[arg-type, call-overload]


def test_a_nan_value_is_a_batch_reject_naming_the_aggregation(project: Path) -> None:
    lines = ["device_id,read_at,voltage", *(f"{d},{t},{v}" for d, t, v in ROWS)]
    (project / "readings.csv").write_text("\n".join(lines) + "\n")
    rejects = project / "rejects.jsonl"
    result = fsgen(project, "ingest", "readings", "readings.csv", "--rejects", str(rejects))
    assert result.returncode == 1, result.stderr
    assert "written 2, rejected 1" in result.stderr, result.stderr
    (reject,) = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert (reject["row"], reject["field"]) == (2, "log_voltage")
    assert "nan" in reject["reason"]
    # the aggregation as declared, never its internal value column
    assert "(log_voltage defined at featuredefs/defs.py:" in reject["reason"], reject["reason"]
    assert "__value" not in result.stderr
    assert counted(project) == 2


def test_a_nan_value_is_dead_lettered_on_the_stream(project: Path) -> None:
    (project / "readings.jsonl").write_text(
        "".join(json.dumps({"device_id": d, "read_at": t, "voltage": v}) + "\n" for d, t, v in ROWS)
    )
    result = fsgen(project, "stream", "replay", "readings", "readings.jsonl")
    assert result.returncode == 1, result.stderr
    assert "written 2, dead-lettered 1" in result.stderr, result.stderr
    assert "readings.jsonl:2: seq " in result.stderr
    assert "dead-lettered: log_voltage: " in result.stderr, result.stderr
    assert "(log_voltage defined at featuredefs/defs.py:" in result.stderr
    assert "__value" not in result.stderr
    assert counted(project) == 2
