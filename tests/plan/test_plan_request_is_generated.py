"""The reviewed artifact is the request that runs: for the example and every golden scenario,
the committed ``generated/groups/<g>/feature_group.json`` equals the CreateFeatureGroup stage
``fsgen plan`` / ``fsgen apply`` send to an empty store, and botocore's own parameter
validation accepts it. (Before the one translation in ``fsgen.sagemaker`` the generated file
lacked the fsgen tags, StorageType and DisableGlueTableCreation, and named another bucket.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import botocore.session
import pytest
from botocore.validate import validate_parameters
from click.testing import CliRunner

from fsgen.cli import main
from fsgen.codegen.views import snake

REPO = Path(__file__).resolve().parents[2]
ROOTS = {"example": REPO} | {
    p.parent.name: p.parent for p in sorted((REPO / "tests" / "golden").glob("*/pyproject.toml"))
}
ENV = {"COLUMNS": "80", "NO_COLOR": "1", "FSGEN_USER": "tester"}


def copy_project(root: Path, target: Path) -> Path:
    """The project's pyproject and definitions package, without its store or generated/."""
    from fsgen.config import load_config

    config = load_config(root)
    target.mkdir()
    shutil.copy(root / "pyproject.toml", target / "pyproject.toml")
    shutil.copytree(
        root / config.definitions,
        target / config.definitions,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return target


def committed_requests(root: Path) -> dict[str, dict[str, object]]:
    """Group name -> the committed feature_group.json of ``root``."""
    out = {}
    for path in sorted((root / "generated" / "groups").glob("*/feature_group.json")):
        request = json.loads(path.read_text(encoding="utf-8"))
        assert snake(str(request["FeatureGroupName"])) == path.parent.name
        out[str(request["FeatureGroupName"])] = request
    return out


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=ENV, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("name", sorted(ROOTS))
def test_generated_request_is_the_create_stage_of_a_plan_against_an_empty_store(
    name: str, tmp_path: Path
) -> None:
    root = ROOTS[name]
    committed = committed_requests(root)
    assert committed, f"{name}: no generated feature_group.json"
    project = copy_project(root, tmp_path / name)
    code, out, err = cli("--project", str(project), "plan", "--json", "--detailed-exitcode")
    assert code == 2, err
    plan = json.loads(out)
    sent = {s["group"]: s["request"] for s in plan["stages"] if s["kind"] == "create_group"}
    assert sent == committed


@pytest.mark.parametrize("name", sorted(ROOTS))
def test_generated_request_passes_botocore_validation(name: str) -> None:
    shape = (
        botocore.session.get_session()
        .get_service_model("sagemaker")
        .operation_model("CreateFeatureGroup")
        .input_shape
    )
    for request in committed_requests(ROOTS[name]).values():
        validate_parameters(request, shape)  # raises ParamValidationError


@pytest.mark.parametrize("name", sorted(ROOTS))
def test_cloudformation_properties_are_the_request(name: str) -> None:
    root = ROOTS[name]
    for group, request in committed_requests(root).items():
        path = root / "generated" / "groups" / snake(group) / "cloudformation.json"
        template = json.loads(path.read_text(encoding="utf-8"))
        (resource,) = template["Resources"].values()
        props = dict(resource["Properties"])
        if "RoleArn" in request:
            assert props.pop("RoleArn") == {"Ref": "RoleArn"}
            default = template["Parameters"]["RoleArn"].get("Default")
            assert default in (None, request["RoleArn"])
        assert props == {k: v for k, v in request.items() if k != "RoleArn"}


@pytest.mark.parametrize("name", sorted(ROOTS))
def test_apply_creates_what_the_generated_file_says(name: str, tmp_path: Path) -> None:
    """Apply to an empty local store, then describe: the group is the generated request."""
    project = copy_project(ROOTS[name], tmp_path / name)
    code, _, err = cli("--project", str(project), "apply", "--auto-approve")
    assert code == 0, err
    from fsgen.backends.local import LocalBackend
    from fsgen.config import load_config
    from fsgen.sagemaker import create_request

    deployed = LocalBackend(load_config(project)).deployed()
    assert {g: create_request(deployed[g]) for g in deployed} == committed_requests(ROOTS[name])


def test_iam_policy_names_the_bucket_apply_sends(tmp_path: Path) -> None:
    """With a role but no S3 URI configured, the dataset-building policy grants the offline
    prefix of the request plan sends (it used to name a bucket apply never used)."""
    project = copy_project(ROOTS["shop"], tmp_path / "shop")
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    assert 'offline_s3_uri = "s3://shop-offline-store/features"\n' in text
    pyproject.write_text(text.replace('offline_s3_uri = "s3://shop-offline-store/features"\n', ""))
    assert cli("--project", str(project), "generate")[0] == 0
    _, out, _ = cli("--project", str(project), "plan", "--json")
    requests = [s["request"] for s in json.loads(out)["stages"] if s["kind"] == "create_group"]
    assert requests
    for request in requests:
        uri = request["OfflineStoreConfig"]["S3StorageConfig"]["S3Uri"]
        assert uri == "s3://fsgen-local/shop-golden"
    policy = json.loads((project / "generated" / "iam" / "dataset_building.json").read_text())
    resources = {r for s in policy["Statement"] for r in s["Resource"]}
    assert any(
        r.startswith("arn:aws:s3:::fsgen-local/shop-golden/") and r.endswith("-??????????/*")
        for r in resources
    )
    assert "arn:aws:s3:::fsgen-local" in resources
