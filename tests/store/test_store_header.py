"""A source whose header (CSV) or schema (Parquet, DataFrame) lacks a required raw input
field of the group is one error before anything is read or written -- not one reject per
row -- on every entry point: ``fsgen ingest``, the generated batch job, ``LocalStore.ingest``
and the Spark tasks. JSON lines have no header, so there a missing key stays each record's own
reject. Extra columns and absent optional fields are allowed."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from storehelpers import make_project

from fsgen.cli import main
from fsgen.codegen import generate
from fsgen.config import load_config
from fsgen.errors import IngestError
from fsgen.loader import load
from fsgen.store import LocalStore

GENERATED = "dp_header_generated"
HAS = ("user_id", "ts", "name", "tags", "note")
LACKS = "header lacks column(s) amount, count needed by group user-events"


@pytest.fixture(scope="module")
def root(
    tmp_path_factory: pytest.TempPathFactory, deploy: Callable[[Path], None]
) -> Iterator[Path]:
    root = make_project(tmp_path_factory.mktemp("header"), package="headerdefs")
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'generated_dir = "{GENERATED}"\n')
    generate(load_config(root), load(root))
    deploy(root)
    shutil.copy(root / ".fsgen" / "registry.json", root / "registry.json")
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))
    for name in [m for m in sys.modules if m.split(".")[0] in (GENERATED, "headerdefs")]:
        del sys.modules[name]


def fresh_store(root: Path) -> Path:
    shutil.rmtree(root / ".fsgen", ignore_errors=True)
    (root / ".fsgen").mkdir()
    shutil.copy(root / "registry.json", root / ".fsgen" / "registry.json")
    return root / ".fsgen"


def rows() -> list[dict[str, str]]:
    return [
        {"user_id": f"u{i}", "ts": "2024-01-01T00:00:00Z", "name": "Ann", "tags": "a", "note": "x"}
        for i in range(5)
    ]


def csv_file(tmp_path: Path, columns: tuple[str, ...] = HAS) -> Path:
    path = tmp_path / "short.csv"
    lines = [",".join(columns)] + [",".join(r.get(c, "1") for c in columns) for r in rows()]
    path.write_text("\n".join(lines) + "\n")
    return path


def assert_nothing_written(store_dir: Path, rejects: Path) -> None:
    with LocalStore(store_dir, load(store_dir.parent)) as store:
        assert len(store.read_offline("user-events")) == 0
        assert store.get_record("user-events", "u1") is None
    assert not rejects.exists()


def test_cli_refuses_a_header_without_required_fields(root: Path, tmp_path: Path) -> None:
    source, rejects = csv_file(tmp_path), tmp_path / "rejects.jsonl"
    store_dir = fresh_store(root)
    args = ["--project", str(root), "ingest", "user-events", str(source), "--rejects", str(rejects)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert f"error: {source}: {LACKS} (has: user_id, ts, name, tags, note)" in result.output
    assert "rejected" not in result.output
    assert_nothing_written(store_dir, rejects)


def test_batch_job_refuses_a_header_without_required_fields(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = importlib.import_module(f"{GENERATED}.groups.user_events.batch_job")
    source, rejects = csv_file(tmp_path), tmp_path / "rejects.jsonl"
    store_dir = fresh_store(root)
    code = job.main([str(source), "--rejects", str(rejects), "--project", str(root)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip() == f"error: {source}: {LACKS} (has: user_id, ts, name, tags, note)"
    assert_nothing_written(store_dir, rejects)
    # the dry run (no backend) reads the header the same way
    assert job.main([str(source), "--dry-run"]) == 1
    assert LACKS in capsys.readouterr().err


def test_python_api_refuses_csv_parquet_and_dataframe(root: Path, tmp_path: Path) -> None:
    parquet = tmp_path / "short.parquet"
    pq.write_table(pa.Table.from_pylist(rows()), parquet)
    store_dir = fresh_store(root)
    rejects = tmp_path / "rejects.jsonl"
    with LocalStore(store_dir, load(root)) as store:
        with pytest.raises(
            IngestError, match="^" + re.escape(f"{csv_file(tmp_path)}: {LACKS} (has: ")
        ):
            store.ingest("user-events", csv_file(tmp_path), rejects)
        schema = LACKS.replace("header", "schema")
        with pytest.raises(
            IngestError, match="^" + re.escape(f"{parquet}: {schema} (has: user_id, ts, ")
        ):
            store.ingest("user-events", parquet, rejects)
        frame = LACKS.replace("header", "DataFrame")
        with pytest.raises(IngestError, match="^" + re.escape(f"<DataFrame>: {frame} (has: ")):
            store.ingest("user-events", pd.DataFrame(rows()), rejects)
    assert_nothing_written(store_dir, rejects)


def test_only_missing_columns_are_named(root: Path, tmp_path: Path) -> None:
    source = csv_file(tmp_path, ("user_id", "ts", "amount", "name", "tags"))
    with (
        LocalStore(fresh_store(root), load(root)) as store,
        pytest.raises(IngestError, match=r"lacks column\(s\) count needed by group user-events"),
    ):
        store.ingest("user-events", source)


def test_extra_columns_are_allowed(root: Path, tmp_path: Path) -> None:
    source = csv_file(tmp_path, ("note", *HAS[:2], "amount", "count", *HAS[2:4]))
    with LocalStore(fresh_store(root), load(root)) as store:
        result = store.ingest("user-events", source)
        assert (result.read, result.written, result.rejected) == (5, 5, 0)


def test_jsonl_missing_keys_stay_per_record_rejects(root: Path, tmp_path: Path) -> None:
    """A JSON-lines file has no header: each record may carry other keys, so a missing
    one is that record's reject, with its row number (every missing field named)."""
    source = tmp_path / "short.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows()))
    found: list[object] = []
    with LocalStore(fresh_store(root), load(root)) as store:
        result = store.ingest("user-events", source, found)  # type: ignore[arg-type]
    assert (result.read, result.written, result.rejected) == (5, 0, 5)
    assert [(r.row, r.field, r.reason) for r in found] == [  # type: ignore[attr-defined]
        (i, "amount", "missing required field; count: missing required field") for i in range(1, 6)
    ]


def test_spark_tasks_refuse_the_header_too(root: Path, tmp_path: Path) -> None:
    from fsgen.runtime.sparktasks import Split, TaskError, process_split

    source = csv_file(tmp_path)
    with LocalStore(fresh_store(root), load(root)) as store:
        rt = store.runtime("user-events")
    with pytest.raises(TaskError, match=re.escape(f"{source}: {LACKS} (has: ")):
        list(process_split(rt, Split(str(source), "csv", 0, 0, 1), 100))


@pytest.mark.parametrize(
    "content",
    ["", "\n", ",".join((*HAS, "amount", "count")) + "\n"],
    ids=["zero-byte", "blank", "header-only"],
)
def test_cli_warns_about_a_file_with_no_records(root: Path, tmp_path: Path, content: str) -> None:
    """An empty export is no error (nothing is wrong with a record), but it is not a quiet
    success either: the command says that nothing was written."""
    source, rejects = tmp_path / "empty.csv", tmp_path / "rejects.jsonl"
    source.write_text(content)
    store_dir = fresh_store(root)
    args = ["--project", str(root), "ingest", "user-events", str(source), "--rejects", str(rejects)]
    result = CliRunner().invoke(main, args, env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    assert "read 0, written 0, rejected 0" in result.output
    assert f"warning: {source} holds no records" in result.output
    assert_nothing_written(store_dir, rejects)
