"""The store's commands through click: ingest (exit status, rejects, JSON summary), get,
delete-record."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from storehelpers import make_project

from fsgen.cli import main

HEADER = "user_id,ts,amount,count,name,tags\n"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, deploy: Callable[[Path], None]) -> Path:
    project = make_project(tmp_path_factory.mktemp("cliproject"), package="storeclidefs")
    deploy(project)
    return project


def run(root: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main, ["--project", str(root), *args], env={"COLUMNS": "80", "NO_COLOR": "1"}
    )
    return result.exit_code, result.stdout, result.stderr


def test_ingest_get_delete(root: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(
        HEADER + "u1,2024-01-01T00:00:00Z,10,2,Ann,a|b\nu2,2024-01-01T01:00:00Z,3,1,Bo,c\n"
    )
    code, out, err = run(root, "ingest", "user-events", str(good), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["read"], summary["written"], summary["rejected"]) == (2, 2, 0)
    assert "user-events: read 2, written 2, rejected 0" in err

    code, out, err = run(
        root, "get", "user-events", "u1", "--json", "--as-of", "2024-01-01T12:00:00Z"
    )
    assert code == 0, err
    assert json.loads(out) == {
        "user_id": "u1",
        "ts": "2024-01-01T00:00:00Z",
        "score": 5.0,
        "double_count": 4,
        "label": "ann",
        "tag_list": ["a", "b"],
        "positive_amount": 10.0,
    }
    code, out, err = run(root, "get", "user-events", "u1")  # now: long expired (TTL 1d)
    assert code == 1
    assert (
        "no online record 'u1': its TTL expired at 2024-01-02T00:00:00Z: event time "
        "2024-01-01T00:00:00Z + the group's TTL of 1d when it was written" in err
    )
    code, out, err = run(root, "get", "user-events", "u1", "--as-of", "2024-01-03T00:00:00Z")
    assert code == 1
    assert "TTL expired at 2024-01-02T00:00:00Z (before --as-of 2024-01-03T00:00:00Z)" in err

    code, out, err = run(
        root, "delete-record", "user-events", "u1", "--event-time", "2024-01-01T06:00:00Z", "--hard"
    )
    assert code == 0 and "HardDelete" in out
    code, out, err = run(root, "get", "user-events", "u1", "--as-of", "2024-01-01T12:00:00Z")
    assert code == 1 and "no online record 'u1': hard-deleted at 2024-01-01T06:00:00Z" in err
    code, out, err = run(root, "delete-record", "user-events", "u2", "--event-time", "soon")
    assert code == 1 and "error: user-events: event time 'soon'" in err
    code, out, err = run(
        root, "delete-record", "user-events", "u2", "--event-time", "2024-01-01T02:00:00Z"
    )
    assert code == 0 and "SoftDelete" in out
    code, out, err = run(root, "get", "user-events", "u2", "--as-of", "2024-01-01T12:00:00Z")
    assert code == 1 and "no online record 'u2': soft-deleted at 2024-01-01T02:00:00Z" in err
    code, out, err = run(root, "get", "user-events", "u9")
    assert code == 1 and "no online record 'u9': no record was ever written for this id" in err


def test_ingest_with_rejects_exits_1(root: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        HEADER + "u1,2024-01-01T00:00:00Z,ten,2,Ann,a\nu2,2024-01-01T00:00:00Z,1,2,Ann,a\n"
    )
    rejects = tmp_path / "rejects.jsonl"
    code, _, err = run(root, "ingest", "user-events", str(bad), "--rejects", str(rejects))
    assert code == 1
    assert "read 2, written 1, rejected 1" in err
    assert "row 1: amount: expected a number, got 'ten'" in err
    entry = json.loads(rejects.read_text())
    assert (entry["row"], entry["field"], entry["record"]["amount"]) == (1, "amount", "ten")


def test_unknown_group_is_an_error(root: Path, tmp_path: Path) -> None:
    src = tmp_path / "x.csv"
    src.write_text(HEADER)
    code, _, err = run(root, "ingest", "nope", str(src))
    assert code == 1 and "no feature group named 'nope'" in err


def test_two_ingests_in_one_second_keep_every_reject(root: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "u1,2024-01-01T00:00:00Z,ten,2,Ann,a\nu2,soon,1,1,Bo,\n")
    before = set((root / ".fsgen" / "rejects").glob("user-events-*.jsonl"))
    for _ in range(2):
        code, _, err = run(root, "ingest", "user-events", str(bad))
        assert code == 1 and "rejected 2" in err
    files = set((root / ".fsgen" / "rejects").glob("user-events-*.jsonl")) - before
    assert len(files) == 2 and all(len(f.read_text().splitlines()) == 2 for f in files)
