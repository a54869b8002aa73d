"""The command line with ``--backend aws`` pointed at ``fsgen serve`` through
``[tool.fsgen.aws] endpoint_url``, and ``fsgen serve`` as its own process."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import boto3
from botocore.exceptions import EndpointConnectionError
from click.testing import CliRunner

from fsgen.cli import main
from fsgen.config import ProjectConfig
from fsgen.server import FeatureStoreServer
from fsgen.spec import ProjectSpec

Example = tuple[ProjectConfig, ProjectSpec]
ENV = {"COLUMNS": "80", "NO_COLOR": "1"}


def test_cli_aws_backend_against_serve(example: Example, served: FeatureStoreServer) -> None:
    config, _ = example
    pyproject = config.root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "[tool.fsgen.aws]\n", f'[tool.fsgen.aws]\nendpoint_url = "{served.url}"\n'
        )
    )
    runner = CliRunner()
    args = ["--project", str(config.root), "--backend", "aws"]
    plan = runner.invoke(main, [*args, "plan", "--json"], env=ENV)
    assert plan.exit_code == 0, plan.output
    assert '"backend": "aws"' in plan.stdout
    applied = runner.invoke(main, [*args, "apply", "--auto-approve"], env=ENV)
    assert applied.exit_code == 0, applied.output
    assert "Apply complete! 2 added" in applied.stdout
    again = runner.invoke(main, [*args, "plan", "--detailed-exitcode"], env=ENV)
    assert again.exit_code == 0, again.output  # apply also wrote generated/
    assert again.stdout == "No changes. Feature store matches the definitions.\n"
    assert (config.root / "generated" / "MANIFEST.json").exists()
    history = runner.invoke(main, [*args, "history"], env=ENV)
    assert "  aws  applied  " in history.stdout


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
