"""The command line with ``--backend aws`` pointed at ``fsgen serve`` through
``[tool.fsgen.aws] endpoint_url``, and ``fsgen serve`` as its own process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
from botocore.exceptions import EndpointConnectionError
from click.testing import CliRunner

from fsgen.cli import main
from fsgen.config import ProjectConfig
from fsgen.server import FeatureStoreServer
from fsgen.spec import ProjectSpec

REPO = Path(__file__).resolve().parents[2]
Example = tuple[ProjectConfig, ProjectSpec]
ENV = {"COLUMNS": "80", "NO_COLOR": "1"}


def test_cli_aws_backend_against_serve(
    example: Example, served: FeatureStoreServer, aws_args: list[str]
) -> None:
    config, _ = example
    args = aws_args
    runner = CliRunner()
    plan = runner.invoke(main, [*args, "plan", "--json"], env=ENV)
    assert plan.exit_code == 0, plan.output
    assert '"backend": "aws"' in plan.stdout
    applied = runner.invoke(main, [*args, "apply", "--auto-approve"], env=ENV)
    assert applied.exit_code == 0, applied.output
    assert "Apply complete! 3 added" in applied.stdout
    again = runner.invoke(main, [*args, "plan", "--detailed-exitcode"], env=ENV)
    assert again.exit_code == 0, again.output  # apply also wrote generated/
    assert again.stdout == "No changes. Feature store matches the definitions.\n"
    assert (config.root / "generated" / "MANIFEST.json").exists()
    history = runner.invoke(main, [*args, "history"], env=ENV)
    assert "  aws  applied  " in history.stdout

    # records: ingest through PutRecord (same validation and rejects), get, delete
    t0 = int(time.time())
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0))  # within the 30-day TTL
    source = config.root / "bad.csv"
    source.write_text(
        (REPO / "data" / "customers_with_errors.csv")
        .read_text()
        .replace("2024-02-01T00:00:00Z", now)
    )
    rejects = config.root / "rejects.jsonl"
    ingested = runner.invoke(
        main,
        [*args, "ingest", "customer-features", str(source), "--rejects", str(rejects)],
        env=ENV,
    )
    assert ingested.exit_code == 1, ingested.output
    assert "read 5, written 1, rejected 4" in ingested.stderr
    assert "aws backend" in ingested.stderr
    lines = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["row"], r["field"]) for r in lines] == [
        (1, "total_spend"),
        (2, "customer_id"),
        (3, "last_updated_time"),
        (4, "age"),
    ]
    got = runner.invoke(main, [*args, "get", "customer-features", "C9004", "--json"], env=ENV)
    assert got.exit_code == 0, got.output
    record = json.loads(got.stdout)
    assert record["customer_id"] == "C9004" and record["last_updated_time"] == now
    assert (record["avg_monthly_spend"], record["is_prime_member"]) == (49.75, 1)
    # a record GetRecord returns but --as-of judges expired: the TTL's end is known
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + 31 * 86400))
    expired = runner.invoke(
        main, [*args, "get", "customer-features", "C9004", "--as-of", later], env=ENV
    )
    ends = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + 30 * 86400))
    assert expired.exit_code == 1, expired.output
    assert f"no online record 'C9004': its TTL expired at {ends}" in expired.stderr
    deleted = runner.invoke(
        main,
        [
            *args,
            "delete-record",
            "customer-features",
            "C9004",
            "--event-time",
            now,
            "--hard",
        ],
        env=ENV,
    )
    assert deleted.exit_code == 0, deleted.output
    gone = runner.invoke(main, [*args, "get", "customer-features", "C9004"], env=ENV)
    assert gone.exit_code == 1 and "no online record 'C9004'" in gone.stderr
    # GetRecord gives no reason for a missing record: said plainly, not guessed
    assert "SageMaker's GetRecord returned no record and gives no reason" in gone.stderr
    assert "hard-deleted" not in gone.stderr and "never written for" not in gone.stderr
    # nor a refused delete: an expired record is not in GetRecord's answer either
    again = runner.invoke(
        main, [*args, "delete-record", "customer-features", "C9004", "--event-time", now], env=ENV
    )
    assert again.exit_code == 1, again.output
    assert "never written, already deleted, or expired: GetRecord returns" in again.stderr


def test_serve_command_in_its_own_process(example: Example) -> None:
    config, _ = example
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fsgen.cli",
            "--project",
            str(config.root),
            "serve",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        sm = boto3.client(
            "sagemaker", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}"
        )
        for _ in range(200):
            try:
                groups = sm.list_feature_groups()["FeatureGroupSummaries"]
                break
            except EndpointConnectionError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.05)
        else:
            raise AssertionError("fsgen serve did not answer")
        assert groups == []
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_aws_delete_record_says_what_happened_online(
    example: Example, served: FeatureStoreServer, aws_args: list[str]
) -> None:
    """``--backend aws delete-record`` sends the event time in SageMaker's canonical form (an
    offset or a date is normalised, as the local backend does, rather than refused by
    DeleteRecord), and a SoftDelete older than the online record says the record was kept,
    not ``deleted online``."""
    args = aws_args
    runner = CliRunner()
    applied = runner.invoke(main, [*args, "apply", "--auto-approve"], env=ENV)
    assert applied.exit_code == 0, applied.output
    t0 = int(time.time()) - 3600
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0))
    rt = boto3.client(
        "sagemaker-featurestore-runtime", region_name="us-east-1", endpoint_url=served.url
    )
    rt.put_record(
        FeatureGroupName="customer-features",
        Record=[
            {"FeatureName": "customer_id", "ValueAsString": "C1"},
            {"FeatureName": "last_updated_time", "ValueAsString": stamp},
        ],
    )
    older = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t0 - 60))
    kept = runner.invoke(
        main, [*args, "delete-record", "customer-features", "C1", "--event-time", older], env=ENV
    )
    assert kept.exit_code == 0, kept.output
    assert "deleted online" not in kept.output
    assert "the online record is newer and was kept" in kept.stderr
    got = runner.invoke(main, [*args, "get", "customer-features", "C1", "--json"], env=ENV)
    assert got.exit_code == 0 and json.loads(got.stdout)["last_updated_time"] == stamp
    newer = time.strftime("%Y-%m-%dT%H:%M:%S+02:00", time.gmtime(t0 + 2 * 3600 + 60))
    deleted = runner.invoke(
        main, [*args, "delete-record", "customer-features", "C1", "--event-time", newer], env=ENV
    )
    assert deleted.exit_code == 0, deleted.output
    canonical = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + 60))
    assert f"SoftDelete customer-features C1 at {canonical}: deleted online" in deleted.stdout
    gone = runner.invoke(main, [*args, "get", "customer-features", "C1"], env=ENV)
    assert gone.exit_code == 1, gone.output


def test_cli_aws_ingest_rejects_a_value_putrecord_cannot_take(
    example: Example, served: FeatureStoreServer, aws_args: list[str]
) -> None:
    """A record PutRecord cannot take (here an identifier of 358,401 characters: over both
    the 2 KB of a record identifier and the 358,400 characters of a value; the identifier's
    limit is named) is its row's reject, and the rows after it are still written (the failed
    PutRecord used to stop the run after the rows before it, with an audit record of nothing
    written)."""
    config, _ = example
    args = aws_args
    runner = CliRunner()
    applied = runner.invoke(main, [*args, "apply", "--auto-approve"], env=ENV)
    assert applied.exit_code == 0, applied.output
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    header = "customer_id,last_updated_time,birth_date,total_spend,tenure_months,membership_tier"
    ids = ["C1", "C" * 358_401, "C3"]
    source = config.root / "long.csv"
    source.write_text(header + "\n" + "".join(f"{i},{now},1990-01-01,10.0,3,basic\n" for i in ids))
    ingested = runner.invoke(main, [*args, "ingest", "customer-features", str(source)], env=ENV)
    assert ingested.exit_code == 1, ingested.output
    assert "read 3, written 2, rejected 1" in ingested.stderr
    assert (
        "row 2: customer_id: record identifier is 358,401 bytes; SageMaker takes at most "
        "2,048 (2 KB): not written"
    ) in ingested.stderr
    for rid in ("C1", "C3"):
        got = runner.invoke(main, [*args, "get", "customer-features", rid, "--json"], env=ENV)
        assert got.exit_code == 0, got.output
