"""A Spark task that fails for a reason no row is to blame for -- a source file that cannot
be read, the featuredefs not importing on a Spark worker, the online store refusing PutRecord
-- is reported as one line naming the file, chunk and rows and the cause (the Python
exception unwrapped from Spark's error), with a non-zero exit status, and writes nothing:
the local store, the offline folder and the rejects stay empty."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "store"))

from storehelpers import make_project

from fsgen.cli import main
from fsgen.codegen import generate
from fsgen.config import load_config
from fsgen.errors import IngestError
from fsgen.generated_imports import import_generated
from fsgen.loader import load
from fsgen.runtime.sparkjob import OnlineTarget, run_sagemaker
from fsgen.runtime.sparktasks import SparkJobError
from fsgen.store import LocalStore
from fsgen.store import spark as spark_ingest

GROUP = "user-events"
HEADER = "user_id,ts,amount,count,name,tags\n"
BROKEN = (
    "\nfrom pathlib import Path as _Path\n\n"
    "if (_Path(__file__).parent / 'BROKEN').exists():  # only on the workers of this test\n"
    "    import fsgen_missing_dependency  # noqa: F401\n"
)


def project(base: Path, package: str, deploy: Any) -> Path:
    root = make_project(base, package=package)
    with (root / package / "groups.py").open("a") as fh:
        fh.write(BROKEN)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'generated_dir = "{package}_generated"\n')
    generate(load_config(root), load(root))
    deploy(root)
    return root


def csv_rows(n: int) -> str:
    return HEADER + "".join(f"u{i % 3},2024-01-01T0{i % 9}:00:00Z,{i},1,N{i},a\n" for i in range(n))


def nothing_stored(root: Path) -> bool:
    with LocalStore(root / ".fsgen", load(root)) as store:
        offline = store.read_offline(GROUP, dedup=False)
        return len(offline) == 0 and store.get_record(GROUP, "u1") is None


def test_an_unreadable_file_is_one_line_naming_it(spark: Any, tmp_path: Path, deploy: Any) -> None:
    root = project(tmp_path / "p", "sparkerrdefs", deploy)
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"PAR1" + b"\x00" * 64 + b"not a footer")
    lines = {}
    for engine in ("local", "spark"):
        rejects = tmp_path / f"{engine}.jsonl"
        result = CliRunner().invoke(
            main,
            [
                *("--project", str(root), "ingest", GROUP, str(bad)),
                *("--rejects", str(rejects), "--engine", engine),
            ],
        )
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output and "Py4J" not in result.output
        (lines[engine],) = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
        assert not rejects.exists()
    assert lines["spark"] == lines["local"]
    assert str(bad) in lines["spark"]
    assert nothing_stored(root)
    assert not list((root / ".fsgen" / "_spark").glob("*/*"))  # staging removed


def test_featuredefs_failing_to_import_on_a_worker_is_one_line(
    spark: Any, tmp_path: Path, deploy: Any
) -> None:
    root = project(tmp_path / "p", "sparkimportdefs", deploy)
    config, spec = load_config(root), load(root)
    runtime = import_generated(config, "groups.user_events.spark_job").RUNTIME  # driver: fine
    (root / "sparkimportdefs" / "BROKEN").touch()  # a worker imports it afresh: it fails
    source = tmp_path / "in.csv"
    source.write_text(csv_rows(20))
    with LocalStore(root / ".fsgen", spec) as store:
        with pytest.raises(IngestError) as caught:
            spark_ingest.ingest(config, store, runtime, source, tmp_path / "r.jsonl", spark=spark)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        "sparkimportdefs_generated.groups.user_events.spark_job: cannot import on a Spark "
        "worker: ModuleNotFoundError: No module named 'fsgen_missing_dependency' (at "
    )
    assert message.endswith(f"{root / 'sparkimportdefs' / 'groups.py'}:{defs_line(root)})")
    assert not (tmp_path / "r.jsonl").exists()
    (root / "sparkimportdefs" / "BROKEN").unlink()
    assert nothing_stored(root)


def defs_line(root: Path) -> int:
    text = (root / "sparkimportdefs" / "groups.py").read_text().splitlines()
    return 1 + next(i for i, ln in enumerate(text) if "import fsgen_missing_dependency" in ln)


def test_a_put_record_failure_stops_the_glue_job_before_the_offline_write(
    spark: Any, tmp_path: Path, deploy: Any
) -> None:
    root = project(tmp_path / "p", "sparkputdefs", deploy)
    config = load_config(root)
    import_generated(config, "groups.user_events.spark_job")
    source = tmp_path / "in.csv"
    source.write_text(csv_rows(20))
    refused = OnlineTarget(endpoint_url="http://127.0.0.1:9", region="us-east-1", max_attempts=1)
    with pytest.raises(SparkJobError) as caught:
        run_sagemaker(
            spark,
            "sparkputdefs_generated.groups.user_events.spark_job",
            [str(source)],
            offline_uri=str(tmp_path / "offline"),
            rejects_uri=str(tmp_path / "rejects"),
            online=refused,
            root=str(root),
            chunk_rows=7,
            parts=1,
        )
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        f"{source}: chunk 0 (rows 1-7): online store (PutRecord): PartialWrite: 0 record(s) "
        'written, then EndpointConnectionError: Could not connect to the endpoint URL: "http://'
        "127.0.0.1:9/"
    ), message
    assert "(at " not in message  # fsgen's own error: no frame
    assert not (tmp_path / "offline").exists() and not (tmp_path / "rejects").exists()


def test_job_error_reads_the_task_line_out_of_sparks_text() -> None:
    from fsgen.runtime.sparktasks import job_error

    trace = (
        "An error occurred while calling o12.collectToPython.\n"
        ": org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 failed\n"
        "org.apache.spark.api.python.PythonException: Traceback (most recent call last):\n"
        '  File "/x/worker.py", line 1, in main\n'
        "fsgen.runtime.sparktasks.TaskError: a.csv: chunk 3 (rows 301-400): OSError: disk full\n"
        "\n\tat org.apache.spark.api.python.BasePythonRunner.handlePythonException\n"
    )
    assert job_error(RuntimeError(trace)) == "a.csv: chunk 3 (rows 301-400): OSError: disk full"
    crashed = "org.apache.spark.SparkException: Python worker exited unexpectedly (crashed)\n"
    assert job_error(RuntimeError(crashed)) == (
        "a Spark task failed: org.apache.spark.SparkException: Python worker exited "
        "unexpectedly (crashed)"
    )
    assert (
        job_error(RuntimeError("\nsomething else\nmore")) == "the Spark job failed: something else"
    )
    assert json.dumps(job_error(RuntimeError(""))) == '"the Spark job failed: RuntimeError"'
