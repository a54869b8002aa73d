"""Apply through the aws backend to an empty account sends, as its CreateFeatureGroup, exactly
the committed ``generated/groups/<g>/feature_group.json``: botocore's Stubber checks every
request against the service model and against the expected parameters, so one differing key
fails. Also over HTTP: ``fsgen serve`` is planned against through real boto3."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from botocore.stub import Stubber

from fsgen.backends.aws import AwsBackend, clients
from fsgen.config import load_config
from fsgen.loader import load
from fsgen.plan.apply import apply_plan, compute_plan
from fsgen.sagemaker import create_request
from fsgen.server import serve_in_thread

REPO = Path(__file__).resolve().parents[2]
# the scenarios with an aws profile (the aws backend refuses to plan without a role)
ROOTS = {"example": REPO, "shop": REPO / "tests" / "golden" / "shop"}


def copy_project(root: Path, target: Path) -> Path:
    definitions = load_config(root).definitions
    target.mkdir()
    shutil.copy(root / "pyproject.toml", target / "pyproject.toml")
    shutil.copytree(
        root / definitions, target / definitions, ignore=shutil.ignore_patterns("__pycache__")
    )
    return target


def committed(root: Path) -> dict[str, dict[str, object]]:
    out = {}
    for path in sorted((root / "generated" / "groups").glob("*/feature_group.json")):
        request = json.loads(path.read_text(encoding="utf-8"))
        out[str(request["FeatureGroupName"])] = request
    return out


@pytest.mark.parametrize("name", sorted(ROOTS))
def test_apply_to_an_empty_account_sends_the_generated_request(name: str, tmp_path: Path) -> None:
    project = copy_project(ROOTS[name], tmp_path / name)
    config, spec = load_config(project), load(project)
    control, runtime = clients("us-east-1", "http://127.0.0.1:9")
    backend = AwsBackend(control, runtime, tmp_path / "state")
    backend.poll_interval = 0.0
    expected = committed(ROOTS[name])
    now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    empty = {"FeatureGroupSummaries": []}
    listing = {"MaxResults": 100, "SortBy": "Name"}
    with Stubber(control) as stub:
        stub.add_response("list_feature_groups", empty, listing)  # plan
        plan = compute_plan(config, spec, backend, artifacts=False)
        stub.add_response("list_feature_groups", empty, listing)  # apply's freshness check
        for stage in plan.stages:
            if stage.kind == "create_group":
                request = expected[stage.group]  # the reviewed file, not the stage
                stub.add_response("create_feature_group", {"FeatureGroupArn": "arn:x"}, request)
                described = {k: v for k, v in request.items() if k != "Tags"}
                stub.add_response(
                    "describe_feature_group",
                    {
                        **described,
                        "FeatureGroupArn": "arn:x",
                        "CreationTime": now,
                        "FeatureGroupStatus": "Created",
                        "NextToken": "",
                    },
                    {"FeatureGroupName": stage.group},
                )
            else:
                assert stage.kind == "update_feature_metadata"
                stub.add_response("update_feature_metadata", {}, dict(stage.request))
        apply_plan(config, spec, backend, plan, regenerate=False)
        stub.assert_no_pending_responses()
    assert sorted(s.group for s in plan.stages if s.kind == "create_group") == sorted(expected)


@pytest.mark.parametrize("name", sorted(ROOTS))
def test_apply_to_fsgen_serve_creates_the_generated_request(name: str, tmp_path: Path) -> None:
    project = copy_project(ROOTS[name], tmp_path / name)
    config, spec = load_config(project), load(project)
    server = serve_in_thread(config, spec, port=0)
    try:
        control, runtime = clients("us-east-1", server.url, max_attempts=2)
        backend = AwsBackend(control, runtime, tmp_path / "state")
        backend.poll_interval = backend.max_poll_interval = 0.01
        plan = compute_plan(config, spec, backend, artifacts=False)
        sent = {s.group: s.request for s in plan.stages if s.kind == "create_group"}
        assert sent == committed(ROOTS[name])
        apply_plan(config, spec, backend, plan, regenerate=False)
        deployed = {name: backend.state(name) for name in sent}
    finally:
        server.shutdown()
        server.server_close()
        server.runtime.store.close()
    # what the endpoint describes afterwards is what the file asked for
    assert {n: create_request(s) for n, s in deployed.items() if s} == committed(ROOTS[name])


def test_the_aws_backend_refuses_the_local_s3_placeholder(tmp_path: Path) -> None:
    """Without an S3 URI the request would name s3://fsgen-local/<project>, a bucket nobody
    configured: the aws backend refuses to plan it, as it refuses a missing role."""
    from click.testing import CliRunner

    from fsgen.cli import main

    project = copy_project(ROOTS["shop"], tmp_path / "shop")
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    line = 'offline_s3_uri = "s3://shop-offline-store/features"\n'
    assert line in text
    pyproject.write_text(text.replace(line, 'endpoint_url = "http://127.0.0.1:9"\n'))
    result = CliRunner().invoke(main, ["--project", str(project), "--backend", "aws", "plan"])
    assert result.exit_code == 1
    assert "the aws backend needs an S3 URI for the offline store of product-stats" in (
        result.stderr
    )
    assert "s3://fsgen-local/shop-golden is the local placeholder" in result.stderr
