"""The inference path on another project shape (the golden 'rides' scenario): a composite key
with an Integral part, a Vector feature, a group without TTL, missing="error", and a partner
record past its TTL at the label time."""

from __future__ import annotations

import math
import random
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fsgen.config import load_config
from fsgen.loader import load
from fsgen.runtime.inference import MissingFeatureError
from fsgen.runtime.pipeline import composite_identifier
from fsgen.serving.handler import load_handler
from fsgen.serving.skew import skew_check
from fsgen.serving.sources import LocalRecordSource
from fsgen.store import LocalStore

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "rides"
SET = "dispatch-model"


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def rides(tmp_path: Path) -> tuple[object, object, float]:
    root = tmp_path / "rides"
    shutil.copytree(GOLDEN, root, ignore=shutil.ignore_patterns("__pycache__", ".fsgen"))
    config, spec = load_config(root), load(root)
    rng = random.Random(5)
    now = time.time() // 60 * 60
    drivers = [
        {
            "city": city,
            "driver_id": n,
            "ts": now - 3600 + n * 7.25,
            "completed": rng.randint(0, 30),
            "accepted": rng.randint(0, 10),
            "offered": rng.randint(10, 20),
            "route_vector": [rng.uniform(-1, 1) for _ in range(4)],
            "zones": ["north", "centre"],
        }
        for city in ("berlin", "lisbon")
        for n in range(1, 6)
    ]
    drivers[0]["route_vector"] = [0.1 + 0.2, 1 / 3, -2.5e-7, 1e300]
    riders = [
        {
            "rider_id": f"R{n}",
            "updated": iso(now - 7200 + n),
            "rating_sum": 4.7 * n,
            "rating_count": n,
            "rides": n,
        }
        for n in range(1, 8)
    ]
    # R9 was updated a day after every driver record: at its time the drivers (TTL 6h) expired
    riders.append(
        {
            "rider_id": "R9",
            "updated": iso(now + 86400),
            "rating_sum": 0.1 + 0.2,
            "rating_count": 1,
            "rides": 0,
        }
    )
    with LocalStore.open(config, spec) as store:
        for group, rows in (("driver-city-stats", drivers), ("rider-profile", riders)):
            block = store.put_raw(group, rows)
            assert block.errors == []
    return config, spec, now


def test_skew_check_over_composite_keys_and_vectors(rides: tuple[object, object, float]) -> None:
    config, spec, _ = rides
    report = skew_check(config, spec, SET, sample=60, seed=1)  # type: ignore[arg-type]
    assert report.ok, report.render()
    assert report.rows == 60


def test_vector_drift_and_error_policy(rides: tuple[object, object, float], tmp_path: Path) -> None:
    config, spec, now = rides
    labels = tmp_path / "labels.csv"
    labels.write_text("city,driver_id,rider_id,fare\nberlin,1,R1,10.0\nlisbon,2,R9,12.5\n")
    report = skew_check(config, spec, SET, labels=labels)  # type: ignore[arg-type]
    assert report.ok, report.render()  # R9's row: drivers expired at T on both sides
    assert report.rows == 2
    with LocalStore.open(config, spec) as store:  # type: ignore[arg-type]
        handler = load_handler(
            config,
            spec,
            SET,
            None,  # type: ignore[arg-type]
            LocalRecordSource(store, lambda: now),
            lambda: now,
        )
        vector = handler.endpoint.vectors(
            [{"city": "berlin", "driver_id": 1, "rider_id": "R1", "fare": 10.0}]
        )[0]
        # the transform rounds to 6 places: -2.5e-7 becomes -0.0, kept with its sign
        assert vector[2] == [0.3, 0.333333, 0.0, 1e300]
        assert math.copysign(1.0, vector[2][2]) == -1.0  # type: ignore[index,arg-type]
        assert isinstance(vector[0], int)
        with pytest.raises(MissingFeatureError, match="trips_today"):  # missing="error"
            handler.endpoint.vectors(
                [{"city": "berlin", "driver_id": 99, "rider_id": "R1", "fare": 10.0}]
            )
        # an online-only drift of one vector element by one ulp
        rt = store.runtime("driver-city-stats")
        record_id = composite_identifier(["berlin", 1])
        record = dict(store.get_record("driver-city-stats", record_id, now=now) or {})
        assert record
        record["route_embedding"] = [
            math.nextafter(record["route_embedding"][0], 1.0),
            *record["route_embedding"][1:],
        ]
        con = store.online.connection()
        con.execute("BEGIN IMMEDIATE")
        store.online.upsert(
            con,
            rt,
            store.online.rows_for(
                rt, {k: [v] for k, v in record.items()}, [rt.event_seconds(record)]
            ),
        )
        con.execute("COMMIT")
    report = skew_check(config, spec, SET, labels=labels)  # type: ignore[arg-type]
    assert not report.ok
    assert report.by_feature()["route_embedding"] == 1
    assert sum(report.by_feature().values()) == 1
