"""The generated Spark job against ``fsgen ingest``: the same property-generated files (CSV,
JSON lines and Parquet, with malformed rows, bad values and transformations that raise) go
through the job on the session's ``local[2]`` (two strides per file, small chunks, so chunks
run in both tasks out of order) and through the batch pipeline, each into a store of its own,
and give identical offline and online records, the same rejects file line for line (file row
numbers, fields, reasons, order) and the same counts."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "store"))

from storehelpers import make_project
from test_store_entry_points import line, write_files

from fsgen.cli import main
from fsgen.codegen import generate
from fsgen.config import load_config
from fsgen.errors import IngestError
from fsgen.generated_imports import import_generated
from fsgen.loader import load
from fsgen.store import LocalStore
from fsgen.store import spark as spark_ingest

GENERATED = "sparkjob_generated"
GROUP = "user-events"
NOW = 1_704_153_600.0  # 2024-01-02T00:00:00Z: within the group's TTL of every record


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, deploy: Any) -> Path:
    root = make_project(tmp_path_factory.mktemp("sparkjob"), package="sparkjobdefs")
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'generated_dir = "{GENERATED}"\n')
    generate(load_config(root), load(root))
    deploy(root)
    shutil.copy(root / ".fsgen" / "registry.json", root / "registry.json")
    return root


def fresh_store(root: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    shutil.copy(root / "registry.json", target / "registry.json")
    return target


def outcome(store_dir: Path, root: Path, rejects: Path) -> tuple[object, ...]:
    with LocalStore(store_dir, load(root)) as store:
        offline = store.read_offline(GROUP, dedup=False)
        stored = sorted(
            json.dumps(r, sort_keys=True, default=str)
            for r in offline.drop(columns=["write_time", "api_invocation_time"]).to_dict("records")
        )
        online = {
            uid: json.dumps(store.get_record(GROUP, uid, now=NOW), sort_keys=True, default=str)
            for uid in sorted(set(offline["user_id"]))
        }
        (run,) = store.runs(GROUP)
    lines = rejects.read_text().splitlines() if rejects.exists() else []
    return stored, online, lines, (run["read"], run["written"], run["rejected"])


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=st.lists(line, min_size=1, max_size=30))
def test_spark_job_stores_and_rejects_what_fsgen_ingest_does(  # type: ignore[no-untyped-def]
    spark: Any, root: Path, tmp_path_factory: pytest.TempPathFactory, lines
) -> None:
    work = tmp_path_factory.mktemp("example")
    config, spec = load_config(root), load(root)
    for source in write_files(work, lines):
        kind = source.suffix[1:]
        results = []
        for engine in ("local", "spark"):
            store_dir = fresh_store(root, work / f"{kind}-{engine}")
            rejects = work / f"{kind}-{engine}.rejects.jsonl"
            runtime = import_generated(config, "groups.user_events.spark_job").RUNTIME
            with LocalStore(store_dir, spec) as store:
                if engine == "local":
                    store.ingest(GROUP, source, rejects, runtime=runtime, chunk_rows=7, workers=0)
                else:
                    result = spark_ingest.ingest(
                        config, store, runtime, source, rejects, spark=spark, chunk_rows=7, parts=2
                    )
                    assert result.read == result.written + result.rejected
            results.append(outcome(store_dir, root, rejects))
        assert results[0] == results[1], source.name
        stored, _online, found, (read, written, rejected) = results[0]
        assert len(stored) == written and rejected == len(found)
        if kind != "parquet":
            assert read == len(lines) or any(k == "junk" for k, _ in lines)


def test_cli_engine_spark_prints_what_the_local_engine_prints(spark: Any, root: Path) -> None:
    source = root / "in.csv"
    source.write_text(
        "user_id,ts,amount,count,name,tags\n"
        "u1,2024-01-01T00:00:00Z,10,2,Ann,a|b\n"
        "u2,2024-01-01T01:00:00Z,5,0,Bo,x\n"  # count 0: score raises ZeroDivisionError
        "u3,oops\n"  # too few values
        "u1,2024-01-01T02:00:00Z,ten,1,Cy,c\n",  # not a number
        encoding="utf-8",
    )
    out = {}
    for engine in ("local", "spark"):
        shutil.rmtree(root / ".fsgen", ignore_errors=True)
        fresh_store(root, root / ".fsgen")
        rejects = root / f"{engine}.jsonl"
        result = CliRunner().invoke(
            main,
            [
                *("--project", str(root), "ingest", GROUP, str(source)),
                *("--rejects", str(rejects), "--engine", engine, "--json"),
            ],
        )
        assert result.exit_code == 1 and "{\n" in result.output, result.output  # rejected rows
        summary = json.loads(result.output[result.output.index("{\n") :])
        assert (summary["read"], summary["written"], summary["rejected"]) == (4, 1, 3)
        text = [ln for ln in result.output.splitlines() if ln.startswith((GROUP, "  rejected"))]
        out[engine] = (
            text[1:],
            rejects.read_text(),
            outcome(root / ".fsgen", root, rejects),
        )
        assert f"see {rejects}" in text[0]
    assert out["local"] == out["spark"]
    assert "row 3: <record>: row has 2 values but the header has 6 columns" in "\n".join(
        out["spark"][0]
    )


def test_the_spark_engine_refuses_a_stale_or_missing_job(root: Path) -> None:
    config, group = load_config(root), load(root).group(GROUP)
    assert spark_ingest.job_module(config, group).endswith(".groups.user_events.spark_job")
    job = root / GENERATED / "groups" / "user_events" / "spark_job.py"
    saved = job.read_text()
    try:
        job.write_text(saved.replace("# spec-hash: sha256:", "# spec-hash: sha256:0"))
        with pytest.raises(IngestError, match="spark_job is stale; run 'fsgen generate'"):
            spark_ingest.job_module(config, group)
        job.unlink()
        with pytest.raises(IngestError, match="spark_job does not exist; run 'fsgen generate'"):
            spark_ingest.job_module(config, group)
    finally:
        job.write_text(saved)


def test_a_value_putrecord_cannot_take_is_a_reject_as_in_fsgen_ingest(
    spark: Any, root: Path, tmp_path: Path
) -> None:
    """A String value (or a List element) longer than PutRecord's 358,400 characters is a
    reject of its row on both engines, never a stored record SageMaker could not hold."""
    config, spec = load_config(root), load(root)
    long = "x" * 358_401
    source = tmp_path / "long.csv"
    source.write_text(
        "user_id,ts,amount,count,name,tags\n"
        "u1,2024-01-01T00:00:00Z,1,1,Ann,a|b\n"
        f"u2,2024-01-01T00:00:00Z,1,1,{long},a\n"
        f"u3,2024-01-01T00:00:00Z,1,1,Bo,a|{long}\n",
        encoding="utf-8",
    )
    runtime = import_generated(config, "groups.user_events.spark_job").RUNTIME
    results = []
    for engine in ("local", "spark"):
        store_dir = fresh_store(root, tmp_path / engine)
        rejects = tmp_path / f"{engine}.rejects.jsonl"
        with LocalStore(store_dir, spec) as store:
            if engine == "local":
                store.ingest(GROUP, source, rejects, runtime=runtime, chunk_rows=7, workers=0)
            else:
                spark_ingest.ingest(
                    config, store, runtime, source, rejects, spark=spark, chunk_rows=7, parts=2
                )
        results.append(outcome(store_dir, root, rejects))
    assert results[0] == results[1]
    _stored, online, found, counts = results[1]
    assert counts == (3, 1, 2) and list(online) == ["u1"]
    assert [json.loads(r)["row"] for r in found] == [2, 3]
    assert all("358,400" in json.loads(r)["reason"] for r in found)
