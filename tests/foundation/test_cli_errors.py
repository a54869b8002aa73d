"""Every command, given the bad input users typically give it, answers with one ``error: ...``
line and exit status 1: never a traceback, never click's three-line usage block, never the
last-resort 'unexpected ...' message that marks an unanticipated exception as a bug.

The table below must name every command the CLI has (a new command without a case fails
``test_every_command_has_a_bad_input_case``). AWS cases run real boto3 without credentials,
or against ``fsgen serve`` on a free loopback port where the group was never applied.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from fsgen.cli import main
from fsgen.cli._app import describe_error, per_second

REPO = Path(__file__).resolve().parents[2]
NO_CREDENTIALS = "Unable to locate credentials"


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    expect: str
    """A substring of the error line."""
    serve: bool = False
    """Point [tool.fsgen.aws] endpoint_url at a running ``fsgen serve`` (with credentials)."""


CASES: list[Case] = [
    Case(("init", "{file}"), "is a file"),
    Case(("--project", "{empty}", "validate"), "no pyproject.toml with a [tool.fsgen] table"),
    Case(("--project", "{empty}", "generate", "--check"), "no pyproject.toml"),
    Case(("demo", "--workdir", "{file}"), "'--workdir'"),
    Case(("plan", "--out", "{missing}/plan.json"), "No such file or directory"),
    Case(("plan", "--detailed-exitcode", "--jsn"), "No such option '--jsn'"),
    Case(("apply", "{garbage}"), "cannot read plan file"),
    Case(("--backend", "aws", "destroy", "--auto-approve"), NO_CREDENTIALS),
    Case(("history", "--limit", "ten"), "'--limit': 'ten' is not a valid integer"),
    Case(("freshness", "--now", "yesterday"), "'--now': expected an ISO-8601 timestamp"),
    Case(("freshness", "--publish"), NO_CREDENTIALS),
    Case(("catalog", "--output", "{file}"), "is a file"),
    Case(("ingest", "no-such-group", "data/customers.csv"), "no feature group named"),
    Case(("ingest", "customer-features", "{file}"), "cannot tell the format"),
    Case(("--backend", "aws", "ingest", "customer-features", "data/customers.csv"), NO_CREDENTIALS),
    Case(
        ("--backend", "aws", "ingest", "customer-features", "data/customers.csv"),
        "ResourceNotFound",
        serve=True,
    ),
    Case(("get", "customer-features", "C0001", "--as-of", "yesterday"), "'--as-of'"),
    Case(("get", "customer-features"), "missing record id: give RECORD_ID or --key customer_id="),
    Case(("backfill", "customer-features"), "not an aggregation group"),
    Case(("--backend", "aws", "backfill", "purchases"), "cannot read back"),
    Case(
        ("delete-record", "customer-features", "C0001", "--event-time", "soon"),
        "event time 'soon'",
    ),
    Case(
        (
            "dataset",
            "fraud-model",
            "--labels",
            "data/labels.csv",
            "--output",
            "{out}/t.parquet",
            "--engine",
            "athena",
        ),
        "Athena and stages the labels in S3, which need AWS credentials, and boto3 found none",
    ),
    Case(
        ("dataset", "fraud-model", "--labels", "data/customers.csv", "--output", "{out}/t.csv"),
        "labels lack column(s)",
    ),
    Case(("dataset", "fraud-model", "--engine", "duck", "--sql"), "'--engine'"),
    Case(("serve", "--port", "99999"), "'--port': 99999 is not in the range"),
    Case(("serve-model", "fraud-model", "--model", "{missing}"), "does not exist"),
    Case(("skew-check", "no-such-set"), "no feature set named"),
    Case(
        ("skew-check", "fraud-model", "--labels", "data/customers.csv"),
        "labels lack column(s) 'merchant_id', 'amount' (the keys and request fields of "
        "feature set 'fraud-model'; the file has customer_id,",
    ),
    Case(("stream", "replay", "no-such-group", "data/customer_updates.jsonl"), "no feature group"),
    Case(
        ("stream", "consume", "customer-features", "--stream", "s", "--idle-timeout", "0"),
        NO_CREDENTIALS,  # the region comes from [tool.fsgen.aws], so no NoRegionError
    ),
    Case(("package", "lambda", "no-such-group"), "no feature group named"),
    Case(("package", "glue", "no-such-group"), "no feature group named"),
    Case(
        ("train", "fraud-model", "--labels", "{missing}", "--output", "{out}/m"), "does not exist"
    ),
]


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> set[str]:
    names: set[str] = set()
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            names |= _commands(cmd, (*prefix, name))
        else:
            names.add(" ".join((*prefix, name)))
    return names


def _command_of(args: tuple[str, ...]) -> str:
    words = [
        a
        for i, a in enumerate(args)
        if not a.startswith("-") and args[i - 1] not in ("--project", "--backend")
    ]
    return " ".join(words[:2]) if words[0] in ("stream", "package") else words[0]


def test_every_command_has_a_bad_input_case() -> None:
    assert {_command_of(c.args) for c in CASES} == _commands(main)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, deploy: Callable[[Path], None]) -> Path:
    root = tmp_path_factory.mktemp("errors") / "example"
    root.mkdir()
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(
        REPO / "featuredefs", root / "featuredefs", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(REPO / "data", root / "data")
    deploy(root)  # records go only to deployed groups: the cases test the input, not that
    shutil.rmtree(root / "generated")
    (root / "a-file").write_text("not a directory, not a dataset\n")
    (root / "garbage.json").write_text("{ not json")
    (root.parent / "empty").mkdir()  # outside any project
    return root


@pytest.fixture(scope="module")
def served(project: Path) -> Iterator[Path]:
    """A second copy whose [tool.fsgen.aws] endpoint_url is a running ``fsgen serve``."""
    from fsgen.config import load_config
    from fsgen.loader import load
    from fsgen.server import make_server

    root = project.parent / "served"
    shutil.copytree(project, root, ignore=shutil.ignore_patterns(".fsgen"))  # nothing deployed
    server = make_server(load_config(root), load(root), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "[tool.fsgen.aws]\n", f'[tool.fsgen.aws]\nendpoint_url = "{server.url}"\n'
        )
    )
    try:
        yield root
    finally:
        server.shutdown()
        server.server_close()


def _env(monkeypatch: pytest.MonkeyPatch, credentials: bool) -> None:
    """No AWS configuration from the machine: no credentials, no region, no endpoint."""
    import boto3

    # boto3's default session caches the credentials an earlier test in this process found
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "FSGEN_DEBUG",
        "FSGEN_BACKEND",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    if credentials:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.mark.parametrize("case", CASES, ids=lambda c: " ".join(c.args))
def test_bad_input_gives_one_error_line(
    case: Case, project: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    root: Path = request.getfixturevalue("served") if case.serve else project
    _env(monkeypatch, credentials=case.serve)
    monkeypatch.chdir(root)
    names = {
        "file": str(root / "a-file"),
        "empty": str(root.parent / "empty"),
        "missing": str(root / "no-such-dir"),
        "garbage": str(root / "garbage.json"),
        "out": str(root / "out"),
    }
    args = [a.format(**names) for a in case.args]
    result = CliRunner(env={"COLUMNS": "80", "NO_COLOR": "1"}).invoke(main, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code == 1, result.output
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "Usage:" not in output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert result.stderr.rstrip("\n").splitlines()[-1] == errors[0]
    assert case.expect in errors[0], errors[0]
    assert "unexpected" not in errors[0]


def test_an_unanticipated_exception_is_one_line_named_as_a_bug() -> None:
    line = describe_error(ZeroDivisionError("division by zero\nsecond line"))
    assert line == (
        "unexpected ZeroDivisionError: division by zero second line (a bug in fsgen: rerun "
        "with --debug for the traceback, and please report it)"
    )


def test_debug_shows_the_traceback(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, credentials=False)
    monkeypatch.setenv("FSGEN_DEBUG", "")  # --debug sets it; monkeypatch removes it after
    monkeypatch.chdir(project)
    result = CliRunner().invoke(main, ["--debug", "freshness", "--publish"])
    assert type(result.exception).__name__ == "NoCredentialsError"


def test_rates_read_as_english() -> None:
    assert per_second(1, 1.0) == "1 row/s"
    assert per_second(404, 0.64) == "631 rows/s"
    assert per_second(1_000_000, 3.9) == "256,410 rows/s"
    assert per_second(3, 2.0) == "1.5 rows/s"
    assert per_second(5, 0.0) == "- rows/s"
