"""Two ``fsgen init`` projects on one ``fsgen serve`` endpoint (real boto3 over HTTP, the aws
backend): each plans, applies and destroys only its own groups, and a same-named group of the
other project is refused (FS301), never taken over."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from fsgen.cli import main
from fsgen.config import load_config
from fsgen.loader import load
from fsgen.server import FeatureStoreServer, serve_in_thread

ENV = {"COLUMNS": "80", "NO_COLOR": "1", "FSGEN_USER": "tester"}


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=ENV, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def init(root: Path, name: str, group: str, url: str) -> Path:
    assert cli("init", str(root), "--name", name)[0] == 0
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text()
        + f'\n[tool.fsgen.aws]\nendpoint_url = "{url}"\n'
        + 'role_arn = "arn:aws:iam::123456789012:role/fs"\n'
        + f'offline_s3_uri = "s3://{name}-bucket/fs"\n'
    )
    example = root / "featuredefs" / "example.py"
    example.write_text(example.read_text().replace('"user-activity"', f'"{group}"'))
    return root


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FeatureStoreServer]:
    host = tmp_path / "serve-host"
    assert cli("init", str(host), "--name", "serve-host")[0] == 0
    served = serve_in_thread(load_config(host), load(host), port=0)
    try:
        yield served
    finally:
        served.shutdown()
        served.server_close()
        served.runtime.store.close()


def summary(text: str) -> str:
    return re.findall(r"^(Plan: .*|No changes\..*)$", text, re.M)[-1]


def test_two_projects_on_one_fsgen_serve(tmp_path: Path, server: FeatureStoreServer) -> None:
    alpha = init(tmp_path / "alpha", "alpha", "alpha-activity", server.url)
    beta = init(tmp_path / "beta", "beta", "beta-activity", server.url)
    aws = ("--backend", "aws")
    assert cli("--project", str(alpha), *aws, "apply", "--auto-approve")[0] == 0
    code, out, err = cli("--project", str(beta), *aws, "plan", "--detailed-exitcode")
    assert code == 2, err
    assert summary(out) == "Plan: 1 to add, 0 to change, 0 to replace, 0 to destroy."
    assert cli("--project", str(beta), *aws, "apply", "--auto-approve")[0] == 0
    code, out, _ = cli("--project", str(alpha), *aws, "plan", "--detailed-exitcode")
    assert code == 0 and summary(out).startswith("No changes.")
    code, out, _ = cli("--project", str(alpha), *aws, "destroy", "--auto-approve")
    assert code == 0
    assert (
        'Destroy complete! Resources: 1 destroyed.\n  - feature_group "alpha-activity": '
        "deleted, with its online store records\nOffline history kept: SageMaker does not "
        "delete a group's offline store (its S3 objects and the Glue table stay)"
    ) in out
    code, out, _ = cli("--project", str(beta), *aws, "plan", "--detailed-exitcode")
    assert code == 0 and summary(out).startswith("No changes.")  # beta's group survived

    gamma = init(tmp_path / "gamma", "gamma", "beta-activity", server.url)
    code, _, err = cli("--project", str(gamma), *aws, "plan")
    assert code == 1
    assert "FS301: feature group 'beta-activity' already exists on the aws backend" in err
    assert "belongs to fsgen project 'beta'" in err
