"""One data plane: the same generated files -- CSV, Parquet and JSON lines with malformed
rows, bad values and transformations that raise -- go through ``fsgen ingest``, the generated
batch job (its command line, in process) and the Python API (``LocalStore.ingest``), each into
a store of its own, and give identical stored records, rejects (row, field, reason) and
counts."""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storehelpers import make_project

from fsgen.cli import main
from fsgen.codegen import generate
from fsgen.config import load_config
from fsgen.loader import load
from fsgen.store import LocalStore

COLUMNS = ("user_id", "ts", "amount", "count", "name", "tags")
GENERATED = "dp_entry_generated"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, deploy: Callable[[Path], None]) -> Path:
    root = make_project(tmp_path_factory.mktemp("entrypoints"), package="entrydefs")
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'generated_dir = "{GENERATED}"\n')
    config = load_config(root)
    generate(config, load(root))
    deploy(root)  # the CLI and the batch job write only to deployed groups
    shutil.copy(root / ".fsgen" / "registry.json", root / "registry.json")
    sys.path.insert(0, str(root))
    return root


def fresh_store(root: Path) -> None:
    """An empty store in which the project's groups are deployed."""
    shutil.rmtree(root / ".fsgen", ignore_errors=True)
    (root / ".fsgen").mkdir()
    shutil.copy(root / "registry.json", root / ".fsgen" / "registry.json")


value = st.one_of(
    st.sampled_from(["10", "0", "-2.5", "ten", "", "NaN", "1e400", "7"]),
    st.integers(-5, 5).map(str),
)
row = st.fixed_dictionaries(
    {
        "user_id": st.sampled_from(["u1", "u2", "u3", ""]),
        "ts": st.sampled_from(
            [
                "2024-01-01T00:00:00Z",
                "2024-01-01T05:30:00.250Z",
                "not-a-time",
                "",
                "2024-13-01T00:00:00Z",
            ]
        ),
        "amount": value,
        "count": value,  # 0 makes the 'score' transformation raise ZeroDivisionError
        "name": st.sampled_from(["Ann", " Bo ", ""]),
        "tags": st.sampled_from(["a|b", "", "x"]),
    }
)
line = st.one_of(
    row.map(lambda r: ("row", r)),
    st.sampled_from([("short", None), ("long", None), ("junk", None)]),
)


def write_files(directory: Path, lines: list[tuple[str, dict[str, str] | None]]) -> list[Path]:
    """The same records as CSV and JSON lines (malformed lines in both), and as Parquet
    (well-formed rows only: a Parquet file cannot hold a ragged row)."""
    csv_lines, json_lines = [",".join(COLUMNS)], []
    for kind, r in lines:
        if kind == "row":
            assert r is not None
            csv_lines.append(",".join(r[c] for c in COLUMNS))
            json_lines.append(json.dumps(r))
        elif kind == "short":
            csv_lines.append("u9,2024-01-01T00:00:00Z")
            json_lines.append("[1, 2]")
        elif kind == "long":
            csv_lines.append("u9,2024-01-01T00:00:00Z,1,1,a,b,extra")
            json_lines.append('"just a string"')
        else:
            csv_lines.append('u9,"2024,1')  # an unterminated quote runs to the end
            json_lines.append("{not json")
    csv_path = directory / "in.csv"
    csv_path.write_text("\n".join(csv_lines) + "\n", encoding="utf-8")
    jsonl_path = directory / "in.jsonl"
    jsonl_path.write_text("".join(j + "\n" for j in json_lines), encoding="utf-8")
    rows = [r for kind, r in lines if kind == "row"]
    parquet_path = directory / "in.parquet"
    table = pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in COLUMNS})  # type: ignore[index]
    pq.write_table(table, parquet_path)
    return [csv_path, jsonl_path, parquet_path]


def outcome(store_dir: Path, root: Path, rejects: Path) -> tuple[object, ...]:
    with LocalStore(store_dir, load(root)) as store:
        offline = store.read_offline("user-events", dedup=False)
        stored = sorted(
            json.dumps(r, sort_keys=True, default=str)
            for r in offline.drop(columns=["write_time", "api_invocation_time"]).to_dict("records")
        )
        runs = store.runs("user-events")
    lines = rejects.read_text().splitlines() if rejects.exists() else []
    found = sorted((r["row"], r["field"], r["reason"]) for r in map(json.loads, lines))
    (run,) = runs
    return stored, found, (run["read"], run["written"], run["rejected"])


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=st.lists(line, min_size=1, max_size=25))
def test_cli_batch_job_and_python_api_agree(root: Path, tmp_path: Path, lines) -> None:  # type: ignore[no-untyped-def]
    work = tmp_path / f"w{abs(hash(json.dumps(lines)))}"
    work.mkdir()
    job = importlib.import_module(f"{GENERATED}.groups.user_events.batch_job")
    for source in write_files(work, lines):
        results = []
        for entry in ("cli", "job", "api"):
            store_dir = work / f"{source.suffix[1:]}-{entry}"
            rejects = work / f"{source.suffix[1:]}-{entry}.rejects.jsonl"
            pyproject = root / "pyproject.toml"
            text = pyproject.read_text()
            if entry == "cli":
                fresh_store(root)
                CliRunner().invoke(
                    main,
                    [
                        "--project",
                        str(root),
                        "ingest",
                        "user-events",
                        str(source),
                        "--rejects",
                        str(rejects),
                    ],
                )
                shutil.move(str(root / ".fsgen"), str(store_dir))
            elif entry == "job":
                fresh_store(root)
                job.main([str(source), "--rejects", str(rejects), "--project", str(root)])
                shutil.move(str(root / ".fsgen"), str(store_dir))
            else:
                with LocalStore(store_dir, load(root)) as store:
                    store.ingest("user-events", source, rejects)
            assert pyproject.read_text() == text
            results.append(outcome(store_dir, root, rejects))
        assert results[0] == results[1] == results[2], source.name
        _stored, found, (read, written, rejected) = results[0]
        assert read == written + rejected and rejected == len(found)
        if source.suffix != ".parquet":
            assert read == len(lines) or any(k == "junk" for k, _ in lines)
