"""``s3://`` sources under Spark, against a moto S3 server over real HTTP: the driver lists a
prefix and every task downloads its object with boto3 (:class:`S3Access`, the endpoint passed
explicitly: a Spark worker does not see variables set after its JVM started). Spark's own
``s3a`` filesystem is not used: the hadoop-aws jars are not in the pyspark wheel.

The staged job (``fsgen ingest --engine spark``) on a prefix stores what ``fsgen ingest`` of
each object stores, with the same rejects (named by their ``s3://`` URI); the Glue job's
``run_sagemaker`` reads the same prefix; a missing object is one error line."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "store"))

from storehelpers import make_project

from fsgen.codegen import generate
from fsgen.config import load_config
from fsgen.errors import IngestError
from fsgen.generated_imports import import_generated
from fsgen.loader import load
from fsgen.runtime.sparkjob import PARTITIONS, OnlineTarget, run_sagemaker
from fsgen.runtime.sparktasks import S3Access, SparkJobError
from fsgen.store import LocalStore
from fsgen.store import spark as spark_ingest

GROUP = "user-events"
GENERATED = "sparks3_generated"
MODULE = f"{GENERATED}.groups.user_events.spark_job"
BUCKET = "raw"
NOW = 1_704_153_600.0  # 2024-01-02T00:00:00Z: within the group's TTL of every record
OBJECTS = {
    "in/a.csv": (
        "user_id,ts,amount,count,name,tags\n"
        "u1,2024-01-01T00:00:00Z,10,2,Ann,a|b\n"
        "u2,2024-01-01T01:00:00Z,5,0,Bo,x\n"  # count 0: score raises
        "u3,oops\n"  # too few values
        "u1,2024-01-01T03:00:00Z,7,1,Cy,c\n"
    ),
    "in/b.jsonl": (
        '{"user_id": "u2", "ts": "2024-01-01T05:00:00Z", "amount": 3, "count": 1, "name": "D",'
        ' "tags": "q"}\n'
        "not json\n"
        '{"user_id": "u4", "ts": "2024-01-01T06:00:00Z", "amount": "x", "count": 1, "name": "E",'
        ' "tags": "r"}\n'
    ),
    "in/notes.txt": "not a source: skipped by the listing\n",
}


@pytest.fixture(scope="module")
def s3(moto_url: str) -> Iterator[str]:
    client = boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)
    for key, text in OBJECTS.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=text.encode())
    yield moto_url


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, deploy: Any) -> Path:
    root = make_project(tmp_path_factory.mktemp("sparks3"), package="sparks3defs")
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'generated_dir = "{GENERATED}"\n')
    generate(load_config(root), load(root))
    deploy(root)
    shutil.copy(root / ".fsgen" / "registry.json", root / "registry.json")
    return root


@pytest.fixture
def aws_env(s3: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """What the driver (and ``fsgen ingest``) read: boto3's own variables."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return s3


def store_at(root: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    shutil.copy(root / "registry.json", target / "registry.json")
    return target


def stored(store_dir: Path, root: Path) -> tuple[list[str], dict[str, str]]:
    with LocalStore(store_dir, load(root)) as store:
        offline = store.read_offline(GROUP, dedup=False)
        rows = sorted(
            json.dumps(r, sort_keys=True, default=str)
            for r in offline.drop(columns=["write_time", "api_invocation_time"]).to_dict("records")
        )
        online = {
            uid: json.dumps(store.get_record(GROUP, uid, now=NOW), sort_keys=True, default=str)
            for uid in sorted(set(offline["user_id"]))
        }
    return rows, online


def test_a_prefix_stores_what_fsgen_ingest_of_each_object_stores(
    spark: Any, root: Path, aws_env: str, tmp_path: Path
) -> None:
    config, spec = load_config(root), load(root)
    runtime = import_generated(config, "groups.user_events.spark_job").RUNTIME
    local = store_at(root, tmp_path / "local")
    local_rejects: list[str] = []
    with LocalStore(local, spec) as store:
        for key in ("in/a.csv", "in/b.jsonl"):
            rejects = tmp_path / f"{key.replace('/', '-')}.jsonl"
            store.ingest(GROUP, f"s3://{BUCKET}/{key}", rejects, runtime=runtime, workers=0)
            local_rejects += rejects.read_text().splitlines()
    spark_dir = store_at(root, tmp_path / "spark")
    rejects = tmp_path / "spark.jsonl"
    with LocalStore(spark_dir, spec) as store:
        result = spark_ingest.ingest(
            config, store, runtime, f"s3://{BUCKET}/in/", rejects, spark=spark, chunk_rows=2
        )
    assert (result.read, result.written, result.rejected) == (7, 3, 4)
    assert rejects.read_text().splitlines() == local_rejects
    assert {json.loads(x)["source"] for x in local_rejects} == {
        f"s3://{BUCKET}/in/a.csv",
        f"s3://{BUCKET}/in/b.jsonl",
    }
    assert stored(spark_dir, root) == stored(local, root)
    assert len(stored(local, root)[0]) == 3


def test_the_glue_job_reads_the_prefix_through_the_explicit_endpoint(
    spark: Any, root: Path, s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow as pa
    import pyarrow.dataset as ds

    import_generated(load_config(root), "groups.user_events.spark_job")
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)  # only S3Access says where S3 is
    result = run_sagemaker(
        spark,
        MODULE,
        [f"s3://{BUCKET}/in/"],
        offline_uri=str(tmp_path / "offline"),
        rejects_uri=str(tmp_path / "rejects"),
        online=OnlineTarget(enabled=False),
        root=str(root),
        s3=S3Access(s3, "us-east-1"),
    )
    assert (result.read, result.written, result.rejected) == (7, 3, 4)
    hive = ds.partitioning(pa.schema([(p, pa.string()) for p in PARTITIONS]), flavor="hive")
    table = ds.dataset(tmp_path / "offline" / "data", partitioning=hive).to_table()
    assert sorted(table.column("ts").to_pylist()) == [
        "2024-01-01T00:00:00Z",
        "2024-01-01T03:00:00Z",
        "2024-01-01T05:00:00Z",
    ]
    lines = [
        ln for p in (tmp_path / "rejects").rglob("part-*") for ln in p.read_text().splitlines()
    ]
    assert len(lines) == 4
    sources = {
        json.loads(x)["source"]
        for p in (tmp_path / "rejects").rglob("part-*")
        for x in p.read_text().splitlines()
    }
    assert sources == {f"s3://{BUCKET}/in/a.csv", f"s3://{BUCKET}/in/b.jsonl"}


def test_a_missing_object_is_one_error_line(
    spark: Any, root: Path, aws_env: str, tmp_path: Path
) -> None:
    config, spec = load_config(root), load(root)
    runtime = import_generated(config, "groups.user_events.spark_job").RUNTIME
    target = store_at(root, tmp_path / "spark")
    with LocalStore(target, spec) as store:
        with pytest.raises(IngestError) as caught:
            spark_ingest.ingest(
                config, store, runtime, f"s3://{BUCKET}/in/gone.csv", None, spark=spark
            )
    assert str(caught.value) == (
        f"s3://{BUCKET}/in/gone.csv: cannot read: An error occurred (404) when calling the "
        "HeadObject operation: Not Found"
    )
    assert stored(target, root) == ([], {})
    with pytest.raises(SparkJobError, match=r"^s3://raw/in/gone\.csv: cannot read: "):
        run_sagemaker(
            spark,
            MODULE,
            [f"s3://{BUCKET}/in/gone.csv"],
            offline_uri=str(tmp_path / "offline"),
            rejects_uri=None,
            online=OnlineTarget(enabled=False),
            root=str(root),
            s3=S3Access(aws_env),
        )
    assert not (tmp_path / "offline").exists()
