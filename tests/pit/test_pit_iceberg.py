"""Differential: the same writes into a project whose groups keep their offline store as Glue
(Hive-partitioned Parquet) and into its twin whose groups are Iceberg tables
(``Offline(table_format="Iceberg")``) give the same training datasets, the same online records,
the same offline records and the same catalog statistics and freshness -- with event-time ties
resolved by the later write, deletes, writes spanning several days (Iceberg partitions), a
Fractional event time (unpartitioned) and compactions in between."""

from __future__ import annotations

import dataclasses
import tempfile
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pithelpers import DEFS, write_pit_project

from fsgen.catalog.stats import group_stats
from fsgen.config import ProjectConfig
from fsgen.freshness import offline_freshness
from fsgen.loader import load_with_config
from fsgen.pit import build_dataset
from fsgen.spec import ProjectSpec
from fsgen.store import LocalStore, iceberg

BASE = datetime(2024, 3, 10, tzinfo=UTC).timestamp()
UNIT = 5 * 3600.0  # five hours: a dozen units span three days (three partitions)
ACCOUNTS = ["a", "b", "ab"]
PAIRS = [(1, "23"), (12, "3")]
DUALS = [("x", "yz"), ("xy", "z")]
NOW = BASE + 20 * UNIT


def write_iceberg_twin(root: Path) -> Path:
    """The point-in-time project with every group's offline store an Iceberg table (its own
    package name, so both load in one process)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "icepitproject"\nversion = "0"\n\n'
        '[tool.fsgen]\ndefinitions = "icepitdefs"\n'
    )
    for rel, text in DEFS.items():
        text = textwrap.dedent(text).lstrip("\n").replace("pitdefs", "icepitdefs")
        if rel.endswith("groups.py"):
            text = text.replace(
                'owner="t",', 'offline=Offline(table_format="Iceberg"), owner="t",'
            ).replace("Integral, Online,", "Integral, Offline, Online,")
        path = root / rel.replace("pitdefs", "icepitdefs")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture(scope="module")
def twins(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[tuple[ProjectConfig, ProjectSpec], tuple[ProjectConfig, ProjectSpec]]:
    glue = load_with_config(write_pit_project(tmp_path_factory.mktemp("glue")))
    ice = load_with_config(write_iceberg_twin(tmp_path_factory.mktemp("iceberg")))
    assert {g.offline.table_format for g in glue[1].groups} == {"Glue"}
    assert {g.offline.table_format for g in ice[1].groups} == {"Iceberg"}
    return glue, ice


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def composite(*parts: object) -> str:
    return "".join(f"{len(str(p))}:{p};" for p in parts)


put = st.tuples(
    st.just("put"),
    st.sampled_from(["accounts", "pairs", "duals"]),
    st.integers(0, 2),  # entity
    st.integers(0, 12),  # event-time unit
    st.sampled_from([0.0, 0.25]),  # a fraction of a second (ties at equal event times)
    st.integers(-3, 3),  # value
)
delete = st.tuples(
    st.just("delete"),
    st.sampled_from(["accounts", "duals"]),
    st.integers(0, 2),
    st.integers(0, 12),
    st.just(0.0),
    st.none(),
)
batches = st.lists(st.lists(st.one_of(put, put, delete), min_size=1, max_size=6), max_size=3)


def record(group: str, entity: int, t: float, value: int) -> dict[str, object]:
    if group == "accounts":
        acct = ACCOUNTS[entity % len(ACCOUNTS)]
        hist = [] if value == 0 else [value, -value]
        return {
            "acct_id": acct,
            "ts": iso(t),
            "raw_level": value,
            "raw_label": str(value),
            "raw_hist": hist,
        }
    if group == "pairs":
        p, q = PAIRS[entity % len(PAIRS)]
        return {"p": p, "q": q, "at": t, "raw_x": value / 4}
    u, v = DUALS[entity % len(DUALS)]
    return {"u": u, "v": v, "et": iso(t), "raw_y": value}


def record_id(group: str, entity: int) -> str:
    if group == "accounts":
        return ACCOUNTS[entity % len(ACCOUNTS)]
    if group == "pairs":
        return composite(*PAIRS[entity % len(PAIRS)])
    return composite(*DUALS[entity % len(DUALS)])


def apply(store: LocalStore, plan: list[list[tuple[object, ...]]], compact_after: set[int]) -> None:
    for number, batch in enumerate(plan):
        puts: dict[str, list[dict[str, object]]] = {}
        for kind, group, entity, unit, frac, value in batch:
            t = BASE + unit * UNIT + frac  # type: ignore[operator]
            if kind == "put":
                rt = store.runtime(group)  # type: ignore[arg-type]
                puts.setdefault(group, []).append(  # type: ignore[arg-type]
                    rt.process(record(group, entity, t, value))  # type: ignore[arg-type]
                )
            else:
                for g, recs in puts.items():  # keep the order of writes
                    store.put_records(g, recs)
                puts = {}
                store.delete_record(group, record_id(group, entity), iso(t))  # type: ignore[arg-type]
        for g, recs in puts.items():
            store.put_records(g, recs)
        if number in compact_after:
            for g in ("accounts", "pairs", "duals"):
                store.compact(g)


def labels() -> pd.DataFrame:
    rows = []
    for unit in range(-1, 16):
        for j in range(3):
            rows.append(
                {
                    "acct_id": [*ACCOUNTS, "zz"][(unit + j) % 4],
                    "p": PAIRS[(unit + j) % 2][0],
                    "q": PAIRS[(unit + j) % 2][1],
                    "lu": DUALS[j % 2][0],
                    "lv": DUALS[j % 2][1],
                    "ts_label": iso(BASE + unit * UNIT + (0.25, 0.0, 1800.0)[j]),
                    "amount": 1.5,
                    "target": j,
                }
            )
    return pd.DataFrame(rows)


def observe(config: ProjectConfig, spec: ProjectSpec, root: Path) -> dict[str, object]:
    out: dict[str, object] = {
        "dataset": build_dataset(config, spec, "pit-set", labels(), store=root),
        "defaults": build_dataset(config, spec, "pit-defaults", labels(), store=root),
    }
    with LocalStore(root, spec) as store:
        for group in ("accounts", "pairs", "duals"):
            if group != "pairs":  # (no online store)
                ids = [record_id(group, e) for e in range(3)]
                out[f"get {group}"] = store.batch_get(group, ids, now=NOW)
            frame = store.read_offline(group, dedup=False).drop(columns=["write_time"])
            out[f"offline {group}"] = frame
    for g in spec.groups:
        stats = group_stats(root, g, frozenset())
        # the file count is the layout's own: Glue writes a file per hour, Iceberg per day
        out[f"stats {g.name}"] = None if stats is None else dataclasses.replace(stats, files=0)
        out[f"freshness {g.name}"] = offline_freshness(root, g, NOW)
    return out


def comparable(frame: object) -> pd.DataFrame:
    """Collections as tuples (arrays do not compare as values)."""
    assert isinstance(frame, pd.DataFrame)
    return frame.map(lambda v: tuple(v) if isinstance(v, (np.ndarray, list)) else v)


# each example writes three Iceberg tables (a few seconds on a busy machine): few examples,
# no slow "explain" phase
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
)
@given(plan=batches, compact_after=st.sets(st.integers(0, 2), max_size=1))
def test_glue_and_iceberg_groups_answer_alike(
    twins: tuple[tuple[ProjectConfig, ProjectSpec], tuple[ProjectConfig, ProjectSpec]],
    plan: list[list[tuple[object, ...]]],
    compact_after: set[int],
) -> None:
    (gconfig, gspec), (iconfig, ispec) = twins
    with tempfile.TemporaryDirectory() as scratch:
        seen = []
        for config, spec, name in ((gconfig, gspec, "glue"), (iconfig, ispec, "iceberg")):
            root = Path(scratch) / name
            with LocalStore(root, spec, clock=lambda: BASE + 30 * UNIT) as store:
                apply(store, plan, compact_after)
            seen.append(observe(config, spec, root))
        glue, ice = seen
        assert glue.keys() == ice.keys()
        for key in glue:
            if isinstance(glue[key], pd.DataFrame):
                pd.testing.assert_frame_equal(comparable(glue[key]), comparable(ice[key]))
            else:
                assert glue[key] == ice[key], key
        wrote = any(kind == "put" for batch in plan for kind, *_ in batch)
        if wrote:  # the twin really is Iceberg: its files come from a table's scan plan
            names = [
                iceberg.data_file_names(Path(scratch) / "iceberg", g)
                for g in ("accounts", "pairs", "duals")
            ]
            assert any(names)
            assert not any((Path(scratch) / "iceberg" / "offline").glob("*/data/year=*"))
