"""One rule for String event times. Batch files and stream records may carry any ISO-8601 form
(a date alone, an offset, milliseconds): ingestion normalises it to the canonical
``yyyy-MM-ddTHH:mm:ssZ`` / ``.SSSZ`` in UTC before anything is stored, on every backend, so the
local store and PutRecord (``fsgen serve``, SageMaker) store the same value. PutRecord itself
takes only the canonical forms, as SageMaker does."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from fsgen.cli import main
from fsgen.config import ProjectConfig
from fsgen.server import FeatureStoreServer
from fsgen.spec import ProjectSpec

ENV = {"COLUMNS": "80", "NO_COLOR": "1"}
HEADER = "customer_id,last_updated_time,birth_date,total_spend,tenure_months,membership_tier\n"


def cli(root: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--project", str(root), *args], env=ENV)
    return result.exit_code, result.stdout, result.stderr


def test_both_backends_store_the_same_normalised_event_time(
    example: tuple[ProjectConfig, ProjectSpec],
    served: FeatureStoreServer,
    deploy: Callable[[Path], None],
    tmp_path: Path,
) -> None:
    config, _ = example
    local = tmp_path / "local"
    shutil.copytree(config.root, local, ignore=shutil.ignore_patterns(".fsgen", "__pycache__"))
    deploy(local)
    pyproject = config.root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "[tool.fsgen.aws]\n", f'[tool.fsgen.aws]\nendpoint_url = "{served.url}"\n'
        )
    )
    code, _, err = cli(config.root, "--backend", "aws", "apply", "--auto-approve")
    assert code == 0, err
    day = time.strftime("%Y-%m-%d", time.gmtime())  # within the group's 30-day TTL
    forms = {
        "E1": (day, f"{day}T00:00:00Z"),
        "E2": (f"{day}T02:00:00+02:00", f"{day}T00:00:00Z"),
        "E3": (f"{day}T00:00:00.000Z", f"{day}T00:00:00Z"),
        "E4": (f"{day}T00:00:00.250+00:00", f"{day}T00:00:00.250Z"),
    }
    source = tmp_path / "forms.csv"
    source.write_text(
        HEADER
        + "".join(f"{cid},{given},1990-01-01,100.0,4,prime\n" for cid, (given, _) in forms.items())
    )
    stored: dict[str, dict[str, str]] = {"local": {}, "aws": {}}
    for backend, root in (("local", local), ("aws", config.root)):
        code, _, err = cli(root, "--backend", backend, "ingest", "customer-features", str(source))
        assert code == 0, err
        assert "read 4, written 4, rejected 0" in err
        for cid in forms:
            code, out, err = cli(
                root, "--backend", backend, "get", "customer-features", cid, "--json"
            )
            assert code == 0, err
            stored[backend][cid] = json.loads(out)["last_updated_time"]
    assert stored["local"] == stored["aws"] == {cid: want for cid, (_, want) in forms.items()}

    runtime = boto3.client(
        "sagemaker-featurestore-runtime", region_name="us-east-1", endpoint_url=served.url
    )
    with pytest.raises(ClientError, match="must be formatted as"):
        runtime.put_record(  # PutRecord is SageMaker's: only the canonical forms
            FeatureGroupName="customer-features",
            Record=[
                {"FeatureName": "customer_id", "ValueAsString": "E5"},
                {"FeatureName": "last_updated_time", "ValueAsString": day},
                {"FeatureName": "age", "ValueAsString": "30"},
            ],
        )
