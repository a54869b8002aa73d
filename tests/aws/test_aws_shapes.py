"""Request shapes checked by botocore itself (Stubber validates every parameter against the
service model), and the S3/Glue/SageMaker pieces against a moto server over HTTP."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import boto3
from botocore.stub import Stubber

from fsgen.backends.aws import AwsBackend, clients
from fsgen.config import ProjectConfig
from fsgen.plan.apply import compute_plan
from fsgen.plan.diff import make_plan, stages_for
from fsgen.plan.model import GroupState, ResourceChange
from fsgen.sagemaker import create_request, desired_state, from_sagemaker
from fsgen.spec import ProjectSpec

Example = tuple[ProjectConfig, ProjectSpec]


def desired(example: Example) -> list[GroupState]:
    config, spec = example
    return [desired_state(g, config) for g in spec.groups]


def test_create_stages_satisfy_the_service_model(example: Example, tmp_path: Path) -> None:
    control, runtime = clients("us-east-1", "http://127.0.0.1:9")
    backend = AwsBackend(control, runtime, tmp_path)
    backend.poll_interval = 0.0
    now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    with Stubber(control) as stub:
        for state in desired(example):
            for stage in stages_for(ResourceChange(group=state.name, action="create", after=state)):
                if stage.kind == "create_group":
                    stub.add_response(
                        "create_feature_group", {"FeatureGroupArn": "arn:x"}, dict(stage.request)
                    )
                    stub.add_response(
                        "describe_feature_group",
                        {
                            **{k: v for k, v in stage.request.items() if k != "Tags"},
                            "FeatureGroupArn": "arn:x",
                            "CreationTime": now,
                            "FeatureGroupStatus": "Created",
                            "NextToken": "",
                        },
                        {"FeatureGroupName": state.name},
                    )
                else:
                    stub.add_response("update_feature_metadata", {}, dict(stage.request))
                backend.execute(stage, lambda _: None)
        stub.assert_no_pending_responses()


def test_update_stages_satisfy_the_service_model(example: Example, tmp_path: Path) -> None:
    before = desired(example)[0]
    after = before.model_copy(
        update={
            "online_ttl_seconds": 3600,
            "throughput_mode": "Provisioned",
            "throughput_read_units": 5,
            "throughput_write_units": 2,
            "tags": {**before.tags, "team": "x"},
            "features": (*before.features, before.features[-1].model_copy(update={"name": "new"})),
        }
    )
    plan = make_plan(
        [after],
        {before.name: before},
        project="featuredefs",
        backend="aws",
        state_fingerprint="s",
        spec_fingerprint="p",
    )
    control, runtime = clients("us-east-1", "http://127.0.0.1:9")
    backend = AwsBackend(control, runtime, tmp_path)
    backend.poll_interval = 0.0
    now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    described = {
        "FeatureGroupArn": "arn:x",
        "FeatureGroupName": before.name,
        "RecordIdentifierFeatureName": before.record_identifier,
        "EventTimeFeatureName": before.event_time_feature,
        "FeatureDefinitions": create_request(before)["FeatureDefinitions"],
        "CreationTime": now,
        "FeatureGroupStatus": "Created",
        "NextToken": "",
        "LastUpdateStatus": {"Status": "Successful"},
    }
    with Stubber(control) as stub:
        for stage in plan.stages:
            if stage.kind == "update_group":
                stub.add_response(
                    "update_feature_group", {"FeatureGroupArn": "arn:x"}, dict(stage.request)
                )
                stub.add_response(
                    "describe_feature_group", described, {"FeatureGroupName": before.name}
                )
            elif stage.kind == "update_feature_metadata":
                stub.add_response("update_feature_metadata", {}, dict(stage.request))
            elif stage.kind == "set_tags":
                stub.add_response(
                    "describe_feature_group", described, {"FeatureGroupName": before.name}
                )
                stub.add_response(
                    "add_tags",
                    {"Tags": []},
                    {
                        "ResourceArn": "arn:x",
                        "Tags": [{"Key": k, "Value": v} for k, v in stage.add.items()],
                    },
                )
            elif stage.kind == "record_ttl_change":  # the tag the PIT engines read
                modified = {**described, "LastModifiedTime": now}
                stub.add_response(
                    "describe_feature_group", modified, {"FeatureGroupName": before.name}
                )
                stub.add_response("list_tags", {"Tags": []}, {"ResourceArn": "arn:x"})
                at = int(now.timestamp()) * 1_000_000
                old = before.online_ttl_seconds
                value = f"{at}={'none' if old is None else old}:3600"
                stub.add_response(
                    "add_tags",
                    {"Tags": []},
                    {
                        "ResourceArn": "arn:x",
                        "Tags": [{"Key": "fsgen:ttl-history", "Value": value}],
                    },
                )
            backend.execute(stage, lambda _: None)
        stub.assert_no_pending_responses()
    kinds = [s.kind for s in plan.stages]
    assert kinds.count("update_group") == 3 and "set_tags" in kinds  # one parameter a call
    assert kinds[kinds.index("record_ttl_change") - 1] == "update_group"  # right after the TTL


def test_sagemaker_create_on_moto_matches_desired_schema(
    example: Example, moto_url: str, tmp_path: Path
) -> None:
    control, runtime = clients("us-east-1", moto_url)
    backend = AwsBackend(control, runtime, tmp_path)
    backend.poll_interval = 0.01
    state = desired(example)[1]
    (create, *_) = stages_for(ResourceChange(group=state.name, action="create", after=state))
    backend.execute(create, lambda _: None)
    described = backend.describe(state.name)
    assert described is not None
    read_back = from_sagemaker(
        described, {}, [{"Key": k, "Value": v} for k, v in state.tags.items()]
    )
    # moto models CreateFeatureGroup's identity, offline store and role, not the online store
    schema = (
        "record_identifier",
        "event_time_feature",
        "offline_enabled",
        "offline_s3_uri",
        "offline_table_format",
        "role_arn",
        "throughput_mode",
    )
    assert {k: getattr(read_back, k) for k in schema} == {k: getattr(state, k) for k in schema}
    assert [(f.name, f.type) for f in read_back.features] == [
        (f.name, f.type) for f in state.features
    ]


def test_preflight_checks_s3_bucket_and_glue_database(
    example: Example, moto_url: str, tmp_path: Path
) -> None:
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_url)
    glue = boto3.client("glue", region_name="us-east-1", endpoint_url=moto_url)
    control, runtime = clients("us-east-1", "http://127.0.0.1:9")
    backend = AwsBackend(
        control, runtime, tmp_path, s3=s3, glue=glue, glue_database="fsgen_features"
    )
    states = desired(example)
    notes = backend.preflight(states)
    assert len(notes) == 2
    assert "s3://fsgen-example-offline-store" in notes[0]
    assert "fsgen_features" in notes[1]
    s3.create_bucket(Bucket="fsgen-example-offline-store")
    glue.create_database(DatabaseInput={"Name": "fsgen_features"})
    assert backend.preflight(states) == []


def test_plan_shows_preflight_warnings(
    example: Example, moto_url: str, served: object, tmp_path: Path
) -> None:
    config, spec = example
    control, runtime = clients("us-east-1", served.url)  # type: ignore[attr-defined]
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_url)
    glue = boto3.client("glue", region_name="us-east-1", endpoint_url=moto_url)
    backend = AwsBackend(
        control, runtime, tmp_path, s3=s3, glue=glue, glue_database="nonexistent_db"
    )
    plan = compute_plan(config, spec, backend, artifacts=False)
    assert any("nonexistent_db" in n for n in plan.notes)
    from fsgen.plan.render import render_plan

    assert "Warning: Glue database 'nonexistent_db'" in render_plan(plan)


def test_an_endpoint_without_the_operation_is_named_not_dumped(
    example: Example, moto_url: str
) -> None:
    """moto serves no featurestore-runtime operation and no ListFeatureGroups: it answers with
    an HTML page, which the error says plainly (the operation, the status, the endpoint to
    check) instead of quoting the page."""
    import pytest

    from fsgen.backends.aws import AwsDataPlane
    from fsgen.backends.base import BackendError

    config, spec = example
    control, runtime = clients("us-east-1", moto_url)
    plane = AwsDataPlane(config, spec, runtime)
    with pytest.raises(BackendError) as info:
        plane.get_record("customer-features", "C1")
    message = str(info.value)
    assert "<" not in message, message
    assert message.startswith("GetRecord failed: HTTP 404: the endpoint answered with a web page")
    assert "it does not serve GetRecord (check endpoint_url in [tool.fsgen.aws])" in message
    backend = AwsBackend(control, runtime, config.store_path / "aws")
    with pytest.raises(BackendError) as listed:
        backend.deployed()
    assert "<" not in str(listed.value) and "does not serve ListFeatureGroups" in str(listed.value)
