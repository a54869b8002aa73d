"""The Glue job's own path -- ``spark_job.main``, online by PutRecord from each Spark task,
offline written by Spark in SageMaker's layout, rejects as JSON lines -- against ``fsgen serve``
over HTTP (real boto3, its endpoint passed as Glue would pass ``--endpoint-url``), compared with
``fsgen ingest`` of the same file into the local store: the same online records (GetRecord),
offline rows (with hourly partitions, write_time, api_invocation_time, is_deleted), rejects and
counts."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "store"))

from storehelpers import make_project

from fsgen.codegen import generate
from fsgen.config import load_config
from fsgen.generated_imports import import_generated
from fsgen.loader import load
from fsgen.runtime.sparkjob import PARTITIONS, resolved_offline_uri
from fsgen.server import FeatureStoreServer, serve_in_thread
from fsgen.store import LocalStore

GENERATED = "sparkaws_generated"
GROUP = "user-events"


@pytest.fixture(autouse=True)
def _dummy_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, FeatureStoreServer]]:
    root = make_project(tmp_path / "project", package="sparkawsdefs")
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'generated_dir = "{GENERATED}"\n')
    config, spec = load_config(root), load(root)
    generate(config, spec)
    server = serve_in_thread(config, spec, port=0)
    request = json.loads((root / GENERATED / "groups/user_events/feature_group.json").read_text())
    request.setdefault("RoleArn", "arn:aws:iam::123456789012:role/fsgen-feature-store")
    boto3.client("sagemaker", endpoint_url=server.url).create_feature_group(**request)
    try:
        yield root, server
    finally:
        server.shutdown()
        server.server_close()
        server.runtime.store.close()


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_glue_job_writes_what_fsgen_ingest_writes(
    spark: Any, served: tuple[Path, FeatureStoreServer], tmp_path: Path
) -> None:
    root, server = served
    config, spec = load_config(root), load(root)
    hour = (int(time.time()) // 3600 - 2) * 3600  # within the group's 1-day TTL
    rows = [
        f"u{i % 4},{iso(hour + 1800 * (i % 3) + i)},{i},{i % 3},Name{i},a|b" for i in range(1, 40)
    ]
    rows[5] = "u9,short"
    rows[11] = f"u1,{iso(hour)},ten,1,X,"
    source = tmp_path / "in.csv"
    source.write_text("user_id,ts,amount,count,name,tags\n" + "\n".join(rows) + "\n")
    job = import_generated(config, "groups.user_events.spark_job")

    local_rejects = tmp_path / "local.jsonl"
    with LocalStore(tmp_path / "local", spec) as store:
        store.adopt(job.RUNTIME)
        result = store.ingest(GROUP, source, local_rejects, runtime=job.RUNTIME, workers=0)
        offline = store.read_offline(GROUP, dedup=False)
        ids = sorted(set(offline["user_id"]))
        online = {i: job.RUNTIME.to_sagemaker(store.get_record(GROUP, i)) for i in ids}

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = job.main(
            [
                *("--JOB_NAME", "fsgen-user-events-ingest", "--source", str(source)),
                *("--rejects", str(tmp_path / "rejects"), "--offline-uri", str(tmp_path / "s3")),
                *("--endpoint-url", server.url, "--region", "us-east-1", "--chunk-rows", "7"),
            ]
        )
    assert status == 1  # rows were rejected
    counts = json.loads(printed.getvalue())
    assert (
        (counts["read"], counts["written"], counts["rejected"])
        == (
            result.read,
            result.written,
            result.rejected,
        )
        == (39, 26, 13)
    )

    runtime = boto3.client("sagemaker-featurestore-runtime", endpoint_url=server.url)
    for i in ids:
        got = runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString=i)
        key = lambda f: f["FeatureName"]  # noqa: E731
        assert sorted(got["Record"], key=key) == sorted(online[i], key=key), i

    hive = ds.partitioning(pa.schema([(p, pa.string()) for p in PARTITIONS]), flavor="hive")
    table = ds.dataset(tmp_path / "s3" / "data", format="parquet", partitioning=hive).to_table()
    spark_rows = table.to_pylist()
    assert {(r["year"], r["month"], r["day"], r["hour"]) for r in spark_rows} == {
        (t[:4], t[5:7], t[8:10], t[11:13]) for t in offline["ts"]
    }
    for r in spark_rows:
        assert r["is_deleted"] is False and r["write_time"] > r["api_invocation_time"]
        assert r["ts"].startswith(f"{r['year']}-{r['month']}-{r['day']}T{r['hour']}:")
    stored = [c for c in offline.columns if c not in ("write_time", "api_invocation_time")]

    def canon(records: list[dict[str, object]]) -> list[str]:
        def plain(v: Any) -> object:
            return v.tolist() if hasattr(v, "tolist") else str(v)  # a NumPy array: a list

        return sorted(json.dumps({c: r[c] for c in stored}, default=plain) for r in records)

    assert canon(spark_rows) == canon(offline.to_dict("records"))

    written = sorted(
        line
        for path in (tmp_path / "rejects").rglob("part-*")
        for line in path.read_text().splitlines()
    )
    assert written == sorted(local_rejects.read_text().splitlines())
    # count 0 (every third row) makes 'score' raise; row 6 is short, row 12 not a number
    assert {json.loads(x)["row"] for x in written} == set(range(3, 40, 3))
    shutil.rmtree(tmp_path / "s3")


def test_the_job_finds_the_groups_offline_folder(served: tuple[Path, FeatureStoreServer]) -> None:
    _root, server = served
    uri = resolved_offline_uri(GROUP, server.url, "us-east-1")
    assert uri is not None and uri.startswith("s3://") and "/offline-store/user-events-" in uri


def test_an_iceberg_groups_offline_records_go_through_putrecord(
    spark: Any, served: tuple[Path, FeatureStoreServer], tmp_path: Path
) -> None:
    """An Iceberg offline table lists only the files its own commits add, so Parquet files
    appended to its folder would be written and never read. For a group whose described
    TableFormat is Iceberg the job sends PutRecord to both stores and SageMaker commits the
    records to the table (here: ``fsgen serve``'s Iceberg offline store); Spark writes no
    offline file."""
    root, server = served
    config = load_config(root)
    sagemaker = boto3.client("sagemaker", endpoint_url=server.url)
    request = json.loads((root / GENERATED / "groups/user_events/feature_group.json").read_text())
    request.setdefault("RoleArn", "arn:aws:iam::123456789012:role/fsgen-feature-store")
    sagemaker.delete_feature_group(FeatureGroupName=GROUP)
    request["OfflineStoreConfig"]["TableFormat"] = "Iceberg"
    sagemaker.create_feature_group(**request)
    hour = (int(time.time()) // 3600 - 2) * 3600
    rows = [f"u{i % 3},{iso(hour + 600 * i)},{i},{i % 2 + 1},Name{i},a" for i in range(1, 10)]
    source = tmp_path / "in.csv"
    source.write_text("user_id,ts,amount,count,name,tags\n" + "\n".join(rows) + "\n")
    job = import_generated(config, "groups.user_events.spark_job")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = job.main(
            [
                *("--JOB_NAME", "fsgen-user-events-ingest", "--source", str(source)),
                *("--rejects", str(tmp_path / "rejects")),
                *("--endpoint-url", server.url, "--region", "us-east-1"),
            ]
        )
    counts = json.loads(printed.getvalue())
    assert (counts["read"], counts["written"], counts["rejected"]) == (9, 9, 0), counts
    assert status == 0
    assert counts["offline_uri"] is None
    assert counts["target_stores"] == ["OnlineStore", "OfflineStore"]
    offline = server.runtime.store.read_offline(GROUP, dedup=False)
    assert sorted(offline["positive_amount"].tolist()) == [float(i) for i in range(1, 10)]
    runtime = boto3.client("sagemaker-featurestore-runtime", endpoint_url=server.url)
    got = runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="u0")
    values = {f["FeatureName"]: f.get("ValueAsString") for f in got["Record"]}
    assert values["positive_amount"] == "9.0"
