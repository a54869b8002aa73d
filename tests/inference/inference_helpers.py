"""Helpers and the ``project`` fixture of the inference tests: a private copy of the example
project (definitions, generated/, its own store) and raw data built to exercise every feature
type, including Fractional values such as 0.1 + 0.2 that only a lossless path keeps bit for
bit."""

from __future__ import annotations

import base64
import csv
import json
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fsgen.config import ProjectConfig, load_config
from fsgen.loader import load
from fsgen.serving.handler import import_generated
from fsgen.spec import ProjectSpec
from fsgen.store import LocalStore

REPO = Path(__file__).resolve().parents[2]
FEATURE_SET = "fraud-model"
POINT_THREE = 0.1 + 0.2  # 0.30000000000000004


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Project:
    root: Path
    config: ProjectConfig
    spec: ProjectSpec
    as_of: float  # after every event, within every TTL
    customers: list[str]
    merchants: list[str]
    labels: Path

    def store(self) -> LocalStore:
        return LocalStore.open(self.config, self.spec)


def copy_project(target: Path) -> Path:
    target.mkdir(parents=True)
    shutil.copy(REPO / "pyproject.toml", target / "pyproject.toml")
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "featuredefs", target / "featuredefs", ignore=ignore)
    shutil.copytree(REPO / "generated", target / "generated", ignore=ignore)
    return target


def _customer_rows(base: datetime) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    rng = random.Random(11)
    batch: list[dict[str, object]] = []
    for i in range(20):
        batch.append(
            {
                "customer_id": f"C{i:03d}",
                "last_updated_time": iso(base - timedelta(days=1, minutes=-i)),
                "birth_date": f"{1950 + i}-0{1 + i % 9}-1{i % 10}",
                "total_spend": round(rng.uniform(10, 9000), 2),
                "tenure_months": rng.randint(1, 80),
                "membership_tier": ["standard", "prime", "Prime_Plus ", "basic"][i % 4],
            }
        )
    # values only a lossless path keeps: 0.1 + 0.2, 1/3, a subnormal, the largest double
    batch[0].update(total_spend=repr(POINT_THREE), tenure_months=1)
    batch[1].update(total_spend=1.0, tenure_months=3)
    batch[2].update(total_spend=5e-324, tenure_months=1)
    batch[3].update(total_spend=1.7976931348623157e308, tenure_months=1)
    stream: list[dict[str, object]] = []
    for n, i in enumerate(range(10, 15)):
        stream.append(
            {
                **batch[i],
                "last_updated_time": iso(base - timedelta(hours=1, minutes=-n)),
                "total_spend": round(rng.uniform(10, 9000), 2),
            }
        )
    # 0.9000000000000001 / 3 == 0.1 + 0.2: the transform itself produces it, on the stream path
    stream[0].update(total_spend=0.9000000000000001, tenure_months=3)
    return batch, stream


def _merchant_rows(base: datetime) -> list[dict[str, object]]:
    rng = random.Random(12)
    epoch = base.timestamp()
    rows: list[dict[str, object]] = []
    for i in range(10):
        transactions = rng.randint(10, 5000)
        rows.append(
            {
                "merchant_id": f"M{i:02d}",
                "updated_at": epoch - 7200 + i * 60 + 0.125,
                "mcc_description": [" Travel ", "Electronics", " GROCERY "][i % 3],
                "chargebacks": rng.randint(0, transactions // 20),
                "transactions": transactions,
                "settled_amount": round(rng.uniform(100, 90000), 2),
            }
        )
    rows[0].update(settled_amount=0.9000000000000001, transactions=3)  # avg_ticket 0.1 + 0.2
    # an older record of M01: history offline, the newer one online
    rows.append({**rows[1], "updated_at": epoch - 86400.5, "chargebacks": 0})
    return rows


def kinesis_event(rows: list[dict[str, object]]) -> dict[str, object]:
    return {
        "Records": [
            {
                "kinesis": {
                    "data": base64.b64encode(json.dumps(r).encode()).decode(),
                    "sequenceNumber": f"{n:020d}",
                }
            }
            for n, r in enumerate(rows)
        ]
    }


def ingest_all(project: Project, base: datetime) -> None:
    """Batch (customers CSV, merchants JSON lines) and stream (the generated Kinesis handler
    writing into the local store) ingestion."""
    stream_handler = import_generated(project.config, "groups.customer_features.stream_handler")

    batch, stream = _customer_rows(base)
    customers_csv = project.root / "customers.csv"
    with customers_csv.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(batch[0]))
        writer.writeheader()
        writer.writerows(batch)
    merchants_jsonl = project.root / "merchants.jsonl"
    merchants_jsonl.write_text("".join(json.dumps(r) + "\n" for r in _merchant_rows(base)))
    with project.store() as store:
        for group, path in (
            ("customer-features", customers_csv),
            ("merchant-features", merchants_jsonl),
        ):
            result = store.ingest(group, path, project.root / f"rejects-{group}.jsonl")
            assert result.rejected == 0, result.samples
        outcome = stream_handler.process_event(
            kinesis_event(stream), store.writer("customer-features")
        )
        assert outcome.failures == [] and outcome.written == len(stream)


def write_labels(project: Project, rows: int = 80) -> Path:
    rng = random.Random(13)
    path = project.root / "labels.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["customer_id", "merchant_id", "event_time", "amount", "is_fraud"])
        stamp = datetime.fromtimestamp(project.as_of, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for n in range(rows):
            amount = repr(POINT_THREE) if n % 7 == 0 else f"{rng.uniform(1, 3000):.2f}"
            writer.writerow(
                [
                    project.customers[n % len(project.customers)],
                    project.merchants[(n * 3) % len(project.merchants)],
                    stamp,
                    amount,
                    int(n % 5 == 0),
                ]
            )
    return path


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """The example project copied to tmp_path, its store holding freshly ingested records
    (event times within the last two days, so TTLs hold at the wall clock too)."""
    root = copy_project(tmp_path / "proj")
    config = load_config(root)
    spec = load(root)
    hour = datetime.fromtimestamp(time.time() // 3600 * 3600 - 86400, UTC)
    base = hour
    p = Project(
        root=root,
        config=config,
        spec=spec,
        as_of=base.timestamp(),
        customers=[f"C{i:03d}" for i in range(20)],
        merchants=[f"M{i:02d}" for i in range(10)],
        labels=root / "labels.csv",
    )
    ingest_all(p, base)
    write_labels(p)
    yield p
