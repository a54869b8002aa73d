"""``fsgen package lambda``: the zip's handler runs in a clean virtualenv that has nothing but
boto3, writing through PutRecord to ``fsgen serve`` and dead-lettering to a file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from streamhelpers import GROUP, event, good

from fsgen.config import ProjectConfig
from fsgen.loader import load
from fsgen.runtime.deadletter import read_jsonl
from fsgen.server import serve_in_thread
from fsgen.stream.package import build, contents

FSGEN = str(Path(sys.executable).parent / "fsgen")


@pytest.fixture(scope="session")
def boto3_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with only boto3 (and its dependencies), created once per session."""
    root = tmp_path_factory.mktemp("lambda-venv")
    venv.create(root, with_pip=True, clear=True)
    python = root / "bin" / "python"
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "boto3"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if proc.returncode != 0:
        reason = f"cannot install boto3 into a fresh virtualenv: {proc.stderr[-300:]}"
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI reaches PyPI: there the clean-venv check must run
        pytest.skip(reason)
    return python


def test_zip_holds_the_handler_definitions_and_runtime_only(
    project_copy: ProjectConfig, tmp_path: Path
) -> None:
    spec = load(project_copy.root)
    package = build(project_copy, spec, GROUP, tmp_path / "a.zip")
    names = zipfile.ZipFile(package.path).namelist()
    assert names == sorted(names)
    assert {n.split("/")[0] for n in names} == {"featuredefs", "fsgen", "generated"}
    assert all(
        n.startswith(("fsgen/runtime/", "featuredefs/", "generated/")) or n == "fsgen/__init__.py"
        for n in names
    )
    assert "generated/groups/customer_features/stream_handler.py" in names
    assert not any("merchant_features" in n for n in names)
    # deterministic: the same definitions give the same bytes
    again = build(project_copy, spec, GROUP, tmp_path / "b.zip", verify=False)
    assert package.path.read_bytes() == again.path.read_bytes()
    assert contents(project_copy, spec, GROUP)["fsgen/__init__.py"].startswith(b'"""fsgen inside')


def test_an_aggregation_group_packages_and_imports_from_the_zip_alone(
    project_copy: ProjectConfig, tmp_path: Path
) -> None:
    """The definitions' @group.aggregation resolves to the zip's inert stand-in; ``build``
    imports the handler with only the zip on the path (``verify``)."""
    spec = load(project_copy.root)
    package = build(project_copy, spec, "purchases", tmp_path / "p.zip")
    names = zipfile.ZipFile(package.path).namelist()
    assert "generated/groups/purchases/stream_handler.py" in names
    assert "fsgen/runtime/aggwrite.py" in names


def test_packaged_handler_runs_in_a_clean_venv_against_fsgen_serve(
    boto3_venv: Path, project_copy: ProjectConfig, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "FSGEN_USER": "tester",
    }
    subprocess.run(
        [FSGEN, "--project", str(project_copy.root), "apply", "--auto-approve"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    spec = load(project_copy.root)
    proc = subprocess.run(
        [
            FSGEN,
            "--project",
            str(project_copy.root),
            "package",
            "lambda",
            GROUP,
            "--output",
            str(tmp_path / "fn.zip"),
            "--json",
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    info = json.loads(proc.stdout)
    server = serve_in_thread(project_copy, spec, port=0)
    try:
        records = [good("C1", tenure_months=4), b"{oops", good("C2", "2024-03-02T00:00:00Z")]
        script = (
            "import json, sys, importlib, importlib.util\n"
            "sys.path.insert(0, sys.argv[1])\n"
            "assert importlib.util.find_spec('pydantic') is None\n"
            "handler = importlib.import_module(sys.argv[2].rsplit('.', 1)[0])\n"
            "print(json.dumps(handler.handler(json.loads(sys.argv[3]), None)))\n"
        )
        run = subprocess.run(
            [
                str(boto3_venv),
                "-c",
                script,
                info["path"],
                info["handler"],
                json.dumps(event(records)),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={
                **env,
                "AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME": server.url,
                "FSGEN_DEAD_LETTER": str(tmp_path / "dlq.jsonl"),
            },
        )
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout.splitlines()[-1]) == {"batchItemFailures": []}
        store = server.runtime.store
        rt = store.runtime(GROUP)
        assert store.get_record(GROUP, "C1", now=0) == rt.process(records[0])  # type: ignore[arg-type]
        assert store.get_record(GROUP, "C2", now=0) == rt.process(records[2])  # type: ignore[arg-type]
        (entry,) = read_jsonl(tmp_path / "dlq.jsonl")
        assert entry["sequenceNumber"] == f"{2:056d}" and "not JSON" in str(entry["reason"])
    finally:
        server.shutdown()
        server.server_close()
        server.runtime.store.close()
