"""What a new user hit on a first project, through the command line: a CSV training set keeps
collection values readable (JSON, as CSV input takes them), ``--rejects`` under a file is one
clear error with nothing created, and an unknown ``freshness --group`` prints only the error."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from fsgen.cli import main

sys.path.insert(0, str(Path(__file__).parents[1] / "store"))
from storehelpers import make_project

FEATURE_SET = """

from fsgen import FeatureSet

rider_model = FeatureSet(
    "rider-model", [tag_list, score], description="Rides", owner="ml",
    label_time="at", labels=["y"],
)
"""
HEADER = "user_id,ts,amount,count,name,tags\n"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, deploy: Callable[[Path], None]) -> Path:
    project = make_project(tmp_path_factory.mktemp("newuser"), package="newuserdefs")
    groups = project / "newuserdefs" / "groups.py"
    groups.write_text(groups.read_text() + FEATURE_SET)
    deploy(project)
    return project


def run(root: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main, ["--project", str(root), *args], env={"COLUMNS": "200", "NO_COLOR": "1"}
    )
    return result.exit_code, result.stdout, result.stderr


def test_dataset_csv_writes_collections_as_json(root: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text(
        HEADER
        + "u1,2024-02-01T00:00:00Z,1.5,1,n,a|b\n"
        + "u2,2024-02-01T00:00:00Z,2.5,1,n,|\n"  # no tags: an empty list
        + 'u3,2024-02-01T00:00:00Z,0.1,1,n,"x,""q|\u00e9"\n'
    )
    code, _, err = run(root, "ingest", "user-events", str(src))
    assert code == 0, err
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "user_id,at,y\n" + "".join(f"u{i},2024-02-01T12:00:00Z,1\n" for i in (1, 2, 3, 4))
    )
    out = tmp_path / "train.csv"
    code, _, err = run(
        root, "dataset", "rider-model", "--labels", str(labels), "--output", str(out)
    )
    assert code == 0, err
    import pandas as pd

    frame = pd.read_csv(out, keep_default_na=False)
    assert [json.loads(v) if v else None for v in frame["tag_list"]] == [
        ["a", "b"],
        [],
        ['x,"q', "\u00e9"],
        None,
    ]
    assert list(frame["score"]) == ["1.5", "2.5", "0.1", ""]


@pytest.mark.parametrize("under", ["afile/r.jsonl", "afile/sub/deeper/r.jsonl"])
def test_rejects_under_a_file_is_one_clear_error(root: Path, tmp_path: Path, under: str) -> None:
    (tmp_path / "afile").write_text("")
    src = tmp_path / "bad.csv"
    src.write_text(HEADER + "z1,2024-02-01T00:00:00Z,x,1,n,a\nz2,2024-02-01T00:00:00Z,1,1,n,a\n")
    store = root / ".fsgen"
    before = sorted(p.relative_to(store) for p in store.rglob("*") if "offline" in p.parts)
    code, _, err = run(root, "ingest", "user-events", str(src), "--rejects", str(tmp_path / under))
    assert code == 1
    assert err.splitlines()[-1] == (
        f"error: rejects file {tmp_path / under}: {tmp_path / 'afile'} is a file, not a "
        "directory; nothing was read"
    )
    assert "File exists" not in err and "Not a directory" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "bad.csv"]
    after = sorted(p.relative_to(store) for p in store.rglob("*") if "offline" in p.parts)
    assert after == before  # nothing written


def test_freshness_of_an_unknown_group_prints_only_the_error(root: Path) -> None:
    code, out, err = run(root, "freshness", "--group", "nope")
    assert code == 1 and out == ""
    assert err == "error: no feature group named 'nope' (known: item-stock, user-events)\n"
