"""Crash safety of the generated batch job: ``python -m generated.groups.<g>.batch_job`` killed
with SIGKILL at random moments (before its first commit, between chunks, inside one) leaves a
store that reads as whole chunks only, with the online store equal to the latest visible
offline record of every id; a re-run finishes the job, and the store then holds exactly what
an uninterrupted run writes -- nothing lost, nothing visible twice, the same rejects."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from fsgen.config import ProjectConfig, load_config
from fsgen.loader import load
from fsgen.spec import ProjectSpec
from fsgen.store import LocalStore
from fsgen.store.offline import GLOB

REPO = Path(__file__).resolve().parents[2]
GROUP = "customer-features"
JOB = "generated.groups.customer_features.batch_job"
ROWS = 210_000  # three chunks of the batch pipeline (100,000 rows each)
BAD_EVERY = 5_000
DROP = ["write_time", "api_invocation_time"]


def make_csv(path: Path, rows: int, seed: int) -> Path:
    """Customer updates, one per (id, event time), every BAD_EVERY-th row a reject."""
    rng = random.Random(seed)
    tiers = ["prime", "standard", "Prime_Plus", "basic"]
    base = 1_704_067_200  # 2024-01-01
    with path.open("w") as fh:
        fh.write(
            "customer_id,last_updated_time,birth_date,total_spend,tenure_months,membership_tier\n"
        )
        for i in range(rows):
            t = time.gmtime(base + i * 7)
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", t)
            tenure = "x" if i % BAD_EVERY == BAD_EVERY - 1 else str(rng.randrange(0, 240))
            born = f"19{rng.randrange(40, 99)}-0{rng.randrange(1, 10)}-1{rng.randrange(0, 10)}"
            fh.write(
                f"C{rng.randrange(3000):05d},{when},{born},{rng.randrange(0, 5_000_000) / 100},"
                f"{tenure},{rng.choice(tiers)}\n"
            )
    return path


@pytest.fixture
def job_project(tmp_path: Path, deploy: Callable[[Path], None]) -> ProjectConfig:
    """A copy of the example project (definitions, generated/, pyproject), its groups
    deployed; the deployed registry is kept to start each attempt from an empty store."""
    root = tmp_path / "project"
    root.mkdir()
    for name in ("featuredefs", "generated"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    deploy(root)
    config = load_config(root)
    shutil.copytree(config.store_path, tmp_path / "deployed")
    return config


def empty_store(config: ProjectConfig, deployed: Path) -> None:
    shutil.rmtree(config.store_path, ignore_errors=True)
    shutil.copytree(deployed, config.store_path)


def start(config: ProjectConfig, src: Path, rejects: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", JOB, str(src), "--rejects", str(rejects), "--json"],
        cwd=config.root,
        env={**os.environ, "PYTHONPATH": str(config.root), "FSGEN_BACKEND": ""},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def visible(store: LocalStore) -> pd.DataFrame:
    frame = store.read_offline(GROUP).drop(columns=DROP)
    return frame.sort_values(["customer_id", "last_updated_time"]).reset_index(drop=True)


def offline_files(config: ProjectConfig) -> list[Path]:
    return list((config.store_path / "offline" / GROUP).glob(GLOB))


def rejected_rows(path: Path) -> list[tuple[object, object]]:
    return sorted((r["row"], r["field"]) for r in map(json.loads, path.read_text().splitlines()))


def check_consistent(store: LocalStore, expected: pd.DataFrame) -> int:
    """Whole commits only: no staging left, every visible row is one the job writes, and the
    online store holds exactly the latest visible offline record of each id."""
    assert not (store.offline_dir(GROUP) / "_staging").exists()
    offline = visible(store)
    merged = offline.merge(expected, how="left", indicator=True)
    assert (merged["_merge"] == "both").all()
    rt = store.runtime(GROUP)
    online = store.online.snapshot(rt)
    latest = offline.sort_values("last_updated_time").groupby("customer_id").tail(1)
    assert set(online) == set(latest["customer_id"])
    for row in latest.to_dict("records"):
        record = online[row["customer_id"]][2]
        assert record["last_updated_time"] == row["last_updated_time"]
        assert record["avg_monthly_spend"] == row["avg_monthly_spend"]
    return len(offline)


@pytest.mark.slow
def test_batch_job_killed_at_random_moments_then_rerun(
    job_project: ProjectConfig, tmp_path: Path
) -> None:
    config = job_project
    spec: ProjectSpec = load(config.root)
    src = make_csv(tmp_path / "customers.csv", ROWS, seed=11)
    deployed = tmp_path / "deployed"

    # the uninterrupted run: what every killed-then-rerun job must end with
    started = time.monotonic()
    full = start(config, src, tmp_path / "reference.rejects.jsonl")
    out, err = full.communicate(timeout=600)
    duration = time.monotonic() - started
    assert full.returncode == 1, err  # 1: some rows were rejected
    counts = json.loads(out)
    bad = ROWS // BAD_EVERY
    assert (counts["read"], counts["written"], counts["rejected"]) == (ROWS, ROWS - bad, bad)
    expected_rejects = rejected_rows(tmp_path / "reference.rejects.jsonl")
    assert len(expected_rejects) == bad
    with LocalStore.open(config, spec) as store:
        expected = visible(store)
        expected_online = store.online.snapshot(store.runtime(GROUP))
    assert len(expected) == ROWS - bad

    rng = random.Random(20261202)
    survived = []
    for attempt in range(3):
        empty_store(config, deployed)
        proc = start(config, src, tmp_path / f"killed{attempt}.rejects.jsonl")
        if attempt == 0:  # a random moment of the whole run, the start-up included
            time.sleep(rng.uniform(0.1, 0.9) * duration)
        else:  # a random moment after a commit went through
            deadline = time.monotonic() + 300
            while not offline_files(config) and proc.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.3) * duration)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with LocalStore.open(config, spec) as store:  # opening recovers what the kill left
            survived.append(check_consistent(store, expected))
        rerun = start(config, src, tmp_path / f"rerun{attempt}.rejects.jsonl")
        out, err = rerun.communicate(timeout=600)
        assert rerun.returncode == 1, err
        again = json.loads(out)
        assert (again["read"], again["written"], again["rejected"]) == (ROWS, ROWS - bad, bad)
        assert rejected_rows(tmp_path / f"rerun{attempt}.rejects.jsonl") == expected_rejects
        with LocalStore.open(config, spec) as store:
            assert visible(store).equals(expected)
            assert store.online.snapshot(store.runtime(GROUP)) == expected_online
    print("rows surviving each kill:", survived)
