"""Commands never report success for something that did not happen: delete-record on
a group whose features are aggregations (it does not remove their events) refuses it, ingest and
stream replay write its events and states, destroy's
refusal names destroy, and a reader that closes stdout early ends a command quietly."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

DEFS = """\
from fsgen import Entity, FeatureGroup, Fractional, Integral, Online, String

customer = Entity("customer_id", String, description="c")
purchases = FeatureGroup("purchases", entity=customer, event_time="purchased_at",
                         owner="o", description="Purchase events", online=Online(ttl="30d"))
profile = FeatureGroup("profile", entity=customer, event_time="ts", owner="o",
                       description="Profile", online=Online(ttl="30d"))


@purchases.aggregation(Fractional, function="mean", windows=["1d", "7d"], hop="1h",
                       description="Average purchase value")
def avg_purchase_value(amount: float) -> float:
    return amount


@profile.feature(Integral, description="Age")
def age(age: int) -> int:
    return age
"""


def fsgen(root: Path, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fsgen.cli", "--project", str(root), *args],
        capture_output=True,
        text=True,
        **kwargs,  # type: ignore[call-overload]
    )


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    root = make_project({"featuredefs/defs.py": DEFS})
    assert fsgen(root, "apply", "--auto-approve").returncode == 0
    return root


@pytest.mark.parametrize(
    "command",
    [("delete-record", "purchases", "c1", "--event-time", "2024-01-01T00:00:00Z")],
)
def test_record_commands_refuse_an_aggregation_group(project: Path, command: tuple) -> None:
    (project / "events.csv").write_text(
        "customer_id,purchased_at,amount\nc1,2024-01-01T00:00:00Z,5\n"
    )
    (project / "events.jsonl").write_text(
        '{"customer_id": "c1", "purchased_at": "2024-01-01T00:00:00Z", "amount": 5}\n'
    )
    result = fsgen(project, *command, cwd=project)
    assert result.returncode == 1, result
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: purchases: its features are aggregations"), result.stderr
    assert "nothing was read or written" in last
    assert not list((project / ".fsgen").rglob("purchases/data/**/*.parquet"))


@pytest.mark.parametrize(
    "command",
    [("ingest", "purchases", "events.csv"), ("stream", "replay", "purchases", "events.jsonl")],
)
def test_ingest_and_replay_write_an_aggregation_group(project: Path, command: tuple) -> None:
    (project / "events.csv").write_text(
        "customer_id,purchased_at,amount\nc1,2024-01-01T00:00:00Z,5\nc1,2024-01-01T00:30:00Z,7\n"
    )
    (project / "events.jsonl").write_text(
        '{"customer_id": "c1", "purchased_at": "2024-01-01T00:00:00Z", "amount": 5}\n'
        '{"customer_id": "c1", "purchased_at": "2024-01-01T00:30:00Z", "amount": 7}\n'
    )
    result = fsgen(project, *command, cwd=project)
    assert result.returncode == 0, result.stderr
    assert "written 2" in result.stderr, result.stderr
    from fsgen.config import load_config
    from fsgen.loader import load
    from fsgen.runtime.aggregate import finalize_record
    from fsgen.store import LocalStore

    config = load_config(project)
    spec = load(project)
    with LocalStore.open(config, spec) as store:
        events = store.read_offline("purchases", dedup=False)
        record = store.get_record("purchases", "c1")
    assert sorted(events["avg_purchase_value__value"]) == [5.0, 7.0]
    assert events["avg_purchase_value__state"].isna().all()
    assert record is not None and record["event_sequence"] is None
    definitions = [a.runtime() for a in spec.group("purchases").aggregations]
    at = 1704067200_000000 + 3600_000000  # 2024-01-01T01:00:00Z
    assert finalize_record(definitions, record, at)["avg_purchase_value_1d"] == 6.0  # type: ignore[arg-type]


def test_replay_of_an_aggregation_group_says_when_it_reads_the_features(project: Path) -> None:
    """The features shown after a replay are finalized one second after the newest event (so
    that event counts: a window excludes an event at its end), and the header says so."""
    (project / "events.jsonl").write_text(
        '{"customer_id": "c1", "purchased_at": "2024-01-01T00:00:00Z", "amount": 5}\n'
        '{"customer_id": "c1", "purchased_at": "2024-01-01T00:30:00Z", "amount": 7}\n'
    )
    result = fsgen(project, "stream", "replay", "purchases", "events.jsonl", cwd=project)
    assert result.returncode == 0, result.stderr
    assert (
        "aggregation features one second after 2024-01-01T00:30:00Z "
        "(the newest event time written, so it counts):"
    ) in result.stderr
    assert "c1: after  avg_purchase_value_1d=6.0" in result.stderr, result.stderr
    assert "TTL" not in result.stderr


def test_replay_does_not_run_a_handler_generated_for_another_hop(project: Path) -> None:
    """A changed hop (windows, lateness, function) is in the generated AGGREGATIONS, not in
    RUNTIME: until ``fsgen generate`` the handler is stale and the definitions run instead,
    as for a changed transformation, rather than building states for the old hop."""
    defs = project / "featuredefs" / "defs.py"
    defs.write_text(defs.read_text().replace('hop="1h"', 'hop="30m"'))
    (project / "events.jsonl").write_text(
        '{"customer_id": "c1", "purchased_at": "2024-01-01T00:00:00Z", "amount": 5}\n'
    )
    result = fsgen(project, "stream", "replay", "purchases", "events.jsonl", cwd=project)
    assert result.stderr.splitlines()[0] == (
        "generated.groups.purchases.stream_handler is stale (run 'fsgen generate'); "
        "using the definitions directly"
    ), result.stderr


@pytest.mark.parametrize(
    ("command", "module"),
    [
        (("ingest", "purchases", "events.jsonl"), "runtime"),
        (("stream", "replay", "purchases", "events.jsonl"), "stream_handler"),
    ],
)
def test_a_generated_module_naming_a_renamed_function_is_stale_not_a_bug(
    project: Path, command: tuple, module: str
) -> None:
    """generated/ from before a function was renamed imports a name the definitions no
    longer have: that module is stale and the definitions run, as for a changed one, instead
    of an AttributeError reported as a bug in fsgen."""
    defs = project / "featuredefs" / "defs.py"
    defs.write_text(
        defs.read_text()
        .replace("def avg_purchase_value(", "def mean_purchase(", 1)
        .replace(
            'description="Average purchase value")',
            'description="Average purchase value", name="avg_purchase_value")',
        )
    )
    (project / "events.jsonl").write_text(
        '{"customer_id": "c1", "purchased_at": "2024-01-01T00:00:00Z", "amount": 5}\n'
    )
    result = fsgen(project, *command, cwd=project)
    assert result.stderr.splitlines()[0] == (
        f"generated.groups.purchases.{module} is stale (run 'fsgen generate'); "
        "using the definitions directly"
    ), result.stderr
    assert result.returncode == 0, result.stderr


def test_replay_shows_a_state_of_another_definition_instead_of_stopping(project: Path) -> None:
    """After a hop change the stored states are refused until a backfill; the values shown
    after a replay say so per record, and the command still reports every record."""
    (project / "events.jsonl").write_text(
        '{"customer_id": "c1", "purchased_at": "2024-01-01T00:00:00Z", "amount": 5}\n'
    )
    first = fsgen(project, "stream", "replay", "purchases", "events.jsonl", cwd=project)
    assert first.returncode == 0, first.stderr
    defs = project / "featuredefs" / "defs.py"
    defs.write_text(defs.read_text().replace('hop="1h"', 'hop="30m"'))
    assert fsgen(project, "apply", "--auto-approve").returncode == 0
    (project / "events.jsonl").write_text(
        '{"customer_id": "c1", "purchased_at": "2024-01-01T01:00:00Z", "amount": 7}\n'
    )
    result = fsgen(project, "stream", "replay", "purchases", "events.jsonl", cwd=project)
    assert "c1: before (not readable: state of 'avg_purchase_value' was built for another" in (
        result.stderr
    ), result.stderr
    assert "c1: after  (not readable: " in result.stderr
    assert "error:" not in result.stderr and "purchases: read 1," in result.stderr


def test_replay_lists_dead_letters_in_arrival_order(project: Path) -> None:
    """The handler reports a batch's late events after its other failures; the command lists
    them as they stand in the file (a late event on line 2, a bad value on line 3)."""
    (project / "events.jsonl").write_text(
        '{"customer_id": "c1", "purchased_at": "2024-01-02T00:00:00Z", "amount": 5}\n'
        '{"customer_id": "c1", "purchased_at": "2023-01-01T00:00:00Z", "amount": 7}\n'
        '{"customer_id": "c1", "purchased_at": "2024-01-02T00:01:00Z", "amount": "x"}\n'
        "not json\n"
    )
    result = fsgen(project, "stream", "replay", "purchases", "events.jsonl", cwd=project)
    assert result.returncode == 1, result.stderr
    listed = [line for line in result.stderr.splitlines() if ": dead-lettered: " in line]
    numbers = [int(line.split(": seq ")[1].split(":")[0]) for line in listed]
    assert len(listed) == 3 and numbers == sorted(numbers), result.stderr
    assert [line.split(": seq ")[0].strip() for line in listed] == [
        f"events.jsonl:{n}" for n in (2, 3, 4)
    ]
    assert "late" in listed[0] and "amount" in listed[1] and "not JSON" in listed[2]


def test_destroy_refused_says_destroy(project: Path) -> None:
    result = fsgen(project, "destroy", input="no\n")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: destroy cancelled; nothing was changed"
    )


def test_a_closed_stdout_ends_a_command_quietly(project: Path) -> None:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the command writes: every write is EPIPE
    result = subprocess.run(
        [sys.executable, "-m", "fsgen.cli", "--project", str(project), "validate", "--json"],
        stdout=write,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(write)
    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_replay_reads_the_features_as_of_the_newest_event_written(project: Path) -> None:
    """A dead-lettered record's event time does not count: the features are shown one second
    after the newest event that was written, not after a rejected one's."""
    (project / "events.jsonl").write_text(
        '{"customer_id": "c1", "purchased_at": "2024-01-01T00:00:00Z", "amount": 5}\n'
        '{"customer_id": "c1", "purchased_at": "2024-03-01T00:00:00Z", "amount": "x"}\n'
        '{"customer_id": "c1", "purchased_at": "2024-01-01T00:30:00Z", "amount": 7}\n'
    )
    result = fsgen(project, "stream", "replay", "purchases", "events.jsonl", cwd=project)
    assert result.returncode == 1, result.stderr  # a record was dead-lettered
    assert "events.jsonl:2: seq" in result.stderr, result.stderr
    assert "aggregation features one second after 2024-01-01T00:30:00Z " in result.stderr
    assert "c1: after  avg_purchase_value_1d=6.0" in result.stderr, result.stderr


def test_replay_into_an_endpoint_says_getrecord_reads_at_its_own_clock(project: Path) -> None:
    """Through --endpoint-url the values shown come from GetRecord, which applies the TTL at
    the endpoint's clock: a record written a moment ago whose event time is past its TTL reads
    as none, so the header must not promise values as of the newest event time."""
    from fsgen.config import load_config
    from fsgen.loader import load
    from fsgen.server import serve_in_thread

    config = load_config(project)
    served = serve_in_thread(
        config.model_copy(update={"store_dir": str(project / "served")}), load(project), port=0
    )
    try:
        import boto3

        sm = boto3.client(
            "sagemaker",
            endpoint_url=served.url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="y",
        )
        sm.create_feature_group(
            FeatureGroupName="profile",
            RecordIdentifierFeatureName="customer_id",
            EventTimeFeatureName="ts",
            FeatureDefinitions=[
                {"FeatureName": "customer_id", "FeatureType": "String"},
                {"FeatureName": "ts", "FeatureType": "String"},
                {"FeatureName": "age", "FeatureType": "Integral"},
            ],
            OnlineStoreConfig={
                "EnableOnlineStore": True,
                "TtlDuration": {"Unit": "Days", "Value": 30},
            },
        )
        (project / "profile.jsonl").write_text(
            '{"customer_id": "c1", "ts": "2024-01-01T00:00:00Z", "age": 40}\n'
        )
        result = fsgen(
            project, "stream", "replay", "profile", "profile.jsonl",
            "--endpoint-url", served.url, cwd=project,
        )  # fmt: skip
    finally:
        served.shutdown()
        served.server_close()
        served.runtime.store.close()
    assert result.returncode == 0, result.stderr
    assert "written 1" in result.stderr
    assert "online values as of 2024-01-01" not in result.stderr, result.stderr
    assert "GetRecord" in result.stderr and "own clock" in result.stderr, result.stderr


def test_replay_that_writes_nothing_shows_the_features_now(project: Path) -> None:
    """When every record of a replay is dead-lettered there is no newest event written: the
    features are shown as of now, with a header saying so, never as of the epoch (which a
    state answers as of its watermark, leaving out the events at it)."""
    import time

    from fsgen.runtime.encoding import format_event_time

    hour = int(time.time()) // 3600 * 3600
    first, second = (format_event_time("String", float(hour - n * 3600)) for n in (2, 1))
    (project / "events.jsonl").write_text(
        f'{{"customer_id": "c1", "purchased_at": "{first}", "amount": 5}}\n'
        f'{{"customer_id": "c1", "purchased_at": "{second}", "amount": 7}}\n'
    )
    first_replay = fsgen(project, "stream", "replay", "purchases", "events.jsonl", cwd=project)
    assert first_replay.returncode == 0, first_replay.stderr
    (project / "bad.jsonl").write_text(
        f'{{"customer_id": "c1", "purchased_at": "{second}", "amount": "x"}}\n'
    )
    result = fsgen(project, "stream", "replay", "purchases", "bad.jsonl", cwd=project)
    assert result.returncode == 1, result.stderr  # the record was dead-lettered
    assert "written 0, dead-lettered 1" in result.stderr, result.stderr
    assert "c1: before avg_purchase_value_1d=6.0" in result.stderr, result.stderr
    assert "c1: after  avg_purchase_value_1d=6.0" in result.stderr, result.stderr
    assert "aggregation features now (no event was written):" in result.stderr
