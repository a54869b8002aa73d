"""A TTL change applied with ``--backend aws`` (against ``fsgen serve``) is recorded in the
group's ``fsgen:ttl-history`` tag at the group's LastModifiedTime, which is what the
point-in-time engines read; the tag is no change to the next plan."""

from __future__ import annotations

import boto3
from click.testing import CliRunner

from fsgen.cli import main
from fsgen.config import ProjectConfig
from fsgen.server import FeatureStoreServer
from fsgen.spec import ProjectSpec
from fsgen.ttl_history import TAG, TtlChange, from_tags

ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


def test_apply_records_each_ttl_change_in_the_tag(
    example: tuple[ProjectConfig, ProjectSpec], served: FeatureStoreServer, aws_args: list[str]
) -> None:
    config, _ = example
    args = aws_args
    runner = CliRunner()
    sagemaker = boto3.client("sagemaker", region_name="us-east-1", endpoint_url=served.url)
    defs = config.root / "featuredefs" / "customer.py"

    def history() -> tuple[TtlChange, ...]:
        arn = sagemaker.describe_feature_group(FeatureGroupName="customer-features")[
            "FeatureGroupArn"
        ]
        return from_tags(sagemaker.list_tags(ResourceArn=arn)["Tags"])

    def change_ttl(old: str, new: str) -> str:
        defs.write_text(defs.read_text().replace(f'Online(ttl="{old}")', f'Online(ttl="{new}")'))
        plan = runner.invoke(main, [*args, "plan"], env=ENV)
        assert plan.exit_code == 0, plan.output
        applied = runner.invoke(main, [*args, "apply", "--auto-approve"], env=ENV)
        assert applied.exit_code == 0, applied.output
        again = runner.invoke(main, [*args, "plan", "--detailed-exitcode"], env=ENV)
        assert again.exit_code == 0, again.stdout  # the recorded tag is no change
        return plan.stdout

    applied = runner.invoke(main, [*args, "apply", "--auto-approve"], env=ENV)
    assert applied.exit_code == 0, applied.output
    assert history() == ()  # a group whose TTL never changed has no history
    out = change_ttl("30d", "7d")
    assert "Records already written keep the ExpiresAt they were written with" in out
    assert "(EventTime + 30d); new records expire after 7d" in out
    described = sagemaker.describe_feature_group(FeatureGroupName="customer-features")
    modified = round(described["LastModifiedTime"].timestamp() * 1_000_000)
    (first,) = history()
    assert (first.old_seconds, first.new_seconds) == (30 * 86400, 7 * 86400)
    assert abs(first.at_micros - modified) < 1000  # boto3's datetime holds milliseconds
    change_ttl("7d", "3d")
    assert [(c.old_seconds, c.new_seconds) for c in history()] == [
        (30 * 86400, 7 * 86400),
        (7 * 86400, 3 * 86400),
    ]
    assert history()[0] == first and history()[1].at_micros > first.at_micros
    arn = described["FeatureGroupArn"]
    (tag,) = [t for t in sagemaker.list_tags(ResourceArn=arn)["Tags"] if t["Key"] == TAG]
    assert len(tag["Value"]) <= 256
