"""``fsgen stream replay`` commits the records of many batches together: one offline file per
event-time hour per commit (never one per hour per batch), the same stored records and online
state as committing every batch on its own, and a replay killed with SIGKILL at any moment
leaves a consistent store that a re-run completes exactly once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from streamhelpers import GROUP, good

from fsgen.cli import main
from fsgen.config import ProjectConfig
from fsgen.loader import load
from fsgen.runtime.deadletter import JsonlDeadLetter, read_jsonl
from fsgen.runtime.kinesis import RetryPolicy
from fsgen.store import LocalStore
from fsgen.store.offline import GLOB
from fsgen.stream.events import Handler, load_handler
from fsgen.stream.replay import replay

NO_WAIT = RetryPolicy(sleep=lambda _s: None)
DROP = ["write_time", "api_invocation_time"]


def spread(path: Path, n: int, days: int = 28, seed: int = 1, poison_every: int = 0) -> Path:
    """n updates of 500 customers at random minutes over ``days`` days (every
    ``poison_every``-th line not JSON)."""
    rng = random.Random(seed)
    with path.open("w") as fh:
        for i in range(n):
            if poison_every and i % poison_every == poison_every - 1:
                fh.write("{not json\n")
                continue
            s = rng.randrange(days * 86400)
            when = f"2024-03-{s // 86400 + 1:02d}T{s % 86400 // 3600:02d}:{s % 3600 // 60:02d}:00Z"
            fh.write(json.dumps(good(f"C{i % 500}", when, tenure_months=i % 90 + 1)) + "\n")
    return path


def files(store_path: Path) -> list[Path]:
    return list((store_path / "offline" / GROUP).glob(GLOB))


def visible(store: LocalStore) -> pd.DataFrame:
    frame = store.read_offline(GROUP).drop(columns=DROP)
    return frame.sort_values(["customer_id", "last_updated_time"]).reset_index(drop=True)


def dead_letters(path: Path) -> list[dict[str, object]]:
    """The entries without their arrival time (the moment each replay ran)."""
    return [
        {k: v for k, v in e.items() if k != "approximateArrivalTimestamp"} for e in read_jsonl(path)
    ]


def test_replay_over_28_days_writes_one_file_per_hour(project_copy: ProjectConfig) -> None:
    source = spread(project_copy.root / "updates.jsonl", 20_000)
    result = CliRunner().invoke(
        main,
        ["--project", str(project_copy.root), "stream", "replay", GROUP, str(source), "--json"],
        env={"COLUMNS": "200", "NO_COLOR": "1"},
    )
    assert result.exit_code == 0, result.stderr
    counts = json.loads(result.stdout)
    assert (counts["read"], counts["written"], counts["batches"]) == (20_000, 20_000, 200)
    written = files(project_copy.store_path)
    hours = {p.parent for p in written}
    assert len(written) == len(hours) <= 28 * 24  # (one file per hour per batch made 18,579)


def test_coalesced_commits_store_what_per_batch_commits_store(
    handler: Handler, store: LocalStore, tmp_path: Path
) -> None:
    source = spread(tmp_path / "u.jsonl", 3_000, days=3, seed=5, poison_every=37)
    reference = LocalStore(tmp_path / "reference", store.spec)
    try:
        one_by_one = replay(
            handler,
            source,
            reference.writer(GROUP),
            JsonlDeadLetter(tmp_path / "d1.jsonl"),
            batch_size=50,
            retry=NO_WAIT,
            visible=reference,  # every batch committed (and read back) on its own
        )
        together = replay(
            handler,
            source,
            store.writer(GROUP),
            JsonlDeadLetter(tmp_path / "d2.jsonl"),
            batch_size=50,
            retry=NO_WAIT,
            commit_rows=1_000,
        )
        assert one_by_one.to_json() | {"seconds": 0} == together.to_json() | {"seconds": 0}
        assert together.dead_lettered == 3_000 // 37
        assert len(files(tmp_path / "reference")) > 3 * len(files(store.root))
        assert visible(store).equals(visible(reference))
        rt = store.runtime(GROUP)
        assert store.online.snapshot(rt) == reference.online.snapshot(rt)
        assert dead_letters(tmp_path / "d1.jsonl") == dead_letters(tmp_path / "d2.jsonl")
    finally:
        reference.close()


CHILD = """
import sys
from pathlib import Path
from fsgen.config import load_config
from fsgen.loader import load
from fsgen.runtime.deadletter import JsonlDeadLetter
from fsgen.store import LocalStore
from fsgen.stream.events import load_handler
from fsgen.stream.replay import replay
root, src, dlq = sys.argv[1:4]
config = load_config(Path(root))
spec = load(config.root)
handler = load_handler(config, spec, "customer-features")
store = LocalStore.open(config, spec)
print("ready", flush=True)
result = replay(handler, Path(src), store.writer("customer-features"), JsonlDeadLetter(dlq),
                batch_size=20, commit_rows=300)
print(result.read, result.written, result.dead_lettered, flush=True)
"""


@pytest.mark.slow
def test_replay_killed_at_random_moments_then_rerun(
    project_copy: ProjectConfig, tmp_path: Path
) -> None:
    source = spread(tmp_path / "u.jsonl", 4_000, days=5, seed=9, poison_every=50)
    dlq = tmp_path / "dlq.jsonl"
    spec = load(project_copy.root)
    handler = load_handler(project_copy, spec, GROUP)
    expected_store = LocalStore(tmp_path / "expected", spec)
    replay(handler, source, expected_store.writer(GROUP), None, batch_size=20, retry=NO_WAIT)
    expected = visible(expected_store)
    rt = expected_store.runtime(GROUP)
    expected_online = expected_store.online.snapshot(rt)
    expected_store.close()
    env = {**os.environ, "PYTHONPATH": str(project_copy.root)}
    rng = random.Random(20261202)
    survived = []
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(project_copy.root), str(source), str(dlq)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 120
        before = len(files(project_copy.store_path))
        while len(files(project_copy.store_path)) == before and time.monotonic() < deadline:
            time.sleep(0.005)  # a commit went through; now a random moment after it
        time.sleep(rng.uniform(0.0, 0.8))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with LocalStore.open(project_copy, spec) as store:  # recovers what the kill left
            gdir = store.offline_dir(GROUP)
            assert not (gdir / "_staging").exists()
            offline = store.read_offline(GROUP)
            online = store.online.snapshot(rt)
            # online holds, per id, exactly the latest visible offline record
            latest = offline.sort_values(["last_updated_time", "api_invocation_time"])
            latest = latest.groupby("customer_id").tail(1).set_index("customer_id")
            assert set(online) == set(latest.index)
            for cid, (_, _, record) in online.items():
                assert record["last_updated_time"] == latest.loc[cid, "last_updated_time"]
            # and what was written is what the replay writes, whole commits only
            merged = visible(store).merge(expected, how="left", indicator=True)
            assert (merged["_merge"] == "both").all()
            survived.append(len(offline))
    print("records surviving each kill:", survived)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(project_copy.root), str(source), str(dlq)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=300,
    )
    assert done.stdout.split()[-3:] == ["4000", str(4000 - 80), "80"]
    with LocalStore.open(project_copy, spec) as store:
        assert visible(store).equals(expected)
        assert store.online.snapshot(rt) == expected_online
    entries = list(read_jsonl(dlq))
    assert len(entries) == len({e["sequenceNumber"] for e in entries}) == 80
