"""The Glue job's stack (``glue_job.cloudformation.json``): valid CloudFormation (cfn-lint),
a Glue 5.0 job whose properties are a valid Glue CreateJob request (botocore's own parameter
validation), and a role whose inline policy is least privilege (the same rules as every
generated policy: tests/governance/test_governance_iam.py)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.validate import validate_parameters

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "governance"))

from test_governance_iam import NON_API_ACTIONS, SERVICES, assert_least_privilege

from fsgen.codegen import build
from fsgen.config import load_config
from fsgen.loader import load

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden"
PARAMETERS = {
    "ArtifactsBucket": "my-artifacts",
    "ArtifactsPrefix": "fsgen/glue/x",
    "RejectsBucket": "my-rejects",
    "RejectsPrefix": "fsgen/rejects/x",
    "SourceS3Uris": "s3://raw/a.csv",
    "NumberOfWorkers": "10",
    "AWS::Region": "us-east-1",
}


def stacks(root: Path) -> dict[str, dict[str, Any]]:
    config = load_config(root)
    return {
        a.path: json.loads(a.content)
        for a in build(config, load(root))
        if a.path.endswith("/glue_job.cloudformation.json")
    }


def resolve(value: Any) -> Any:
    """The template with the parameters above substituted (Ref and Fn::Sub)."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return PARAMETERS[value["Ref"]]
        if set(value) == {"Fn::Sub"}:
            return re.sub(r"\$\{([^}]+)\}", lambda m: PARAMETERS[m[1]], value["Fn::Sub"])
        if set(value) == {"Fn::GetAtt"}:
            return "arn:aws:iam::123456789012:role/stack-role"
        return {k: resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v) for v in value]
    return value


ROOTS = [REPO, GOLDEN / "shop"]


@pytest.mark.parametrize("root", ROOTS, ids=["example", "shop"])
def test_the_glue_stack_is_valid_cloudformation(root: Path, tmp_path: Path) -> None:
    cfnlint = pytest.importorskip("cfnlint.api")
    found = stacks(root)
    assert found
    for path, template in found.items():
        matches = cfnlint.lint(
            json.dumps(template), config=cfnlint.ManualArgs(regions=["us-east-1"])
        )
        assert [str(m) for m in matches if m.rule.id[0] in "EW"] == [], path


@pytest.mark.parametrize("root", ROOTS, ids=["example", "shop"])
def test_the_job_is_a_valid_glue_5_request(root: Path) -> None:
    session = botocore.session.get_session()
    shape = session.get_service_model("glue").operation_model("CreateJob").input_shape
    for path, template in stacks(root).items():
        (job,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::Glue::Job"]
        request = resolve(job["Properties"])
        request["NumberOfWorkers"] = int(request["NumberOfWorkers"])
        validate_parameters(request, shape)
        assert (request["GlueVersion"], request["Command"]["Name"]) == ("5.0", "glueetl"), path
        args = request["DefaultArguments"]
        group = template["Metadata"]["fsgen"]["package"].rsplit(" ", 1)[-1]
        assert args["--extra-py-files"] == f"s3://my-artifacts/fsgen/glue/x/fsgen-glue-{group}.zip"
        assert request["Command"]["ScriptLocation"] == "s3://my-artifacts/fsgen/glue/x/spark_job.py"
        assert args["--source"] == "s3://raw/a.csv" and args["--rejects"].startswith("s3://")


@pytest.mark.parametrize("root", ROOTS, ids=["example", "shop"])
def test_the_job_role_is_least_privilege(root: Path) -> None:
    config = load_config(root)
    account = config.aws.role_arn.split(":")[4]  # type: ignore[union-attr]
    models = botocore.session.get_session()
    operations = {
        prefix: {op for name in names for op in models.get_service_model(name).operation_names}
        for prefix, names in SERVICES.items()
    }
    for path, template in stacks(root).items():
        (role,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
        assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
            {
                "Effect": "Allow",
                "Principal": {"Service": "glue.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ]
        (inline,) = role["Properties"]["Policies"]
        document = resolve(inline["PolicyDocument"])
        assert_least_privilege({"Id": inline["PolicyName"], **document}, account)
        pairs = {(a, r) for s in document["Statement"] for a in s["Action"] for r in s["Resource"]}
        for action, _ in pairs:
            prefix, op = action.split(":")
            assert action in NON_API_ACTIONS or op in operations[prefix], action
        group = template["Metadata"]["fsgen"]["package"].rsplit(" ", 1)[-1]
        fg = f"arn:aws:sagemaker:{config.aws.region}:{account}:feature-group/{group}"
        assert {r for a, r in pairs if a.startswith("sagemaker:")} == {fg}, path
        assert ("s3:GetObject", "arn:aws:s3:::my-artifacts/fsgen/glue/x/*") in pairs
        assert ("s3:PutObject", "arn:aws:s3:::my-rejects/fsgen/rejects/x/*") in pairs
        writes = {r for a, r in pairs if a == "s3:PutObject"}
        offline = [r for r in writes if "/offline-store/" in r]
        assert all(r.endswith(f"/offline-store/{group}-??????????/*") for r in offline), writes
        assert len(writes) == 1 + len(offline) and len(offline) <= 1
