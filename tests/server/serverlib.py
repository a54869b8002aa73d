"""Helpers of the ``fsgen serve`` tests: boto3 clients whose every response is checked against
botocore's output shape (:func:`checked`), and ``fsgen serve`` as a process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from botocore.validate import ParamValidator

from fsgen.config import ProjectConfig
from fsgen.server import FeatureStoreServer
from fsgen.spec import ProjectSpec

REPO = Path(__file__).resolve().parents[2]
Example = tuple[ProjectConfig, ProjectSpec]

# DescribeFeatureGroup's model marks NextToken (the token of the next page of feature
# definitions) required; it is sent only when there is a next page.
NOT_ALWAYS_SENT = {"DescribeFeatureGroup": {"NextToken"}}

SEEN: list[tuple[str, str]] = []
"""(service, operation) of every response checked in this test session"""


def stop(server: FeatureStoreServer) -> None:
    server.shutdown()
    server.server_close()
    server.runtime.store.close()


def _body_keys(shape: Any, value: Any, path: str, problems: list[str]) -> None:
    """Every key of the raw JSON body is a member of the output shape, recursively."""
    if shape is None:
        return
    if shape.type_name == "structure" and isinstance(value, dict):
        for key, item in value.items():
            if key not in shape.members:
                problems.append(f"{path}.{key}: not in {shape.name}")
            else:
                _body_keys(shape.members[key], item, f"{path}.{key}", problems)
    elif shape.type_name == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            _body_keys(shape.member, item, f"{path}[{i}]", problems)


def check_response(operation_model: Any, raw: bytes, parsed: dict[str, Any]) -> None:
    """The raw body carries only the model's members and the parsed response satisfies the
    output shape (types, required members, lengths) by botocore's own validator."""
    shape = operation_model.output_shape
    problems: list[str] = []
    if raw:
        _body_keys(shape, json.loads(raw), operation_model.name, problems)
    if shape is not None:
        params = {k: v for k, v in parsed.items() if k != "ResponseMetadata"}
        report = ParamValidator().validate(params, shape)
        if report.has_errors():
            skip = NOT_ALWAYS_SENT.get(operation_model.name, set())
            problems.extend(
                line
                for line in report.generate_report().splitlines()[1:]
                if not any(f'"{s}"' in line and "Missing required" in line for s in skip)
            )
    assert not problems, f"{operation_model.name} response breaks its output shape: {problems}"


def checked(client: Any) -> Any:
    """``client`` with a hook asserting every successful response matches its output shape."""
    raw: dict[str, bytes] = {}

    def before_parse(operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
        raw["body"] = response_dict.get("body") or b""
        raw["status"] = str(response_dict.get("status_code")).encode()

    def after_call(model: Any, parsed: dict[str, Any], http_response: Any, **_: Any) -> None:
        if http_response.status_code == 200:
            check_response(model, raw.get("body", b""), parsed)
            SEEN.append((client.meta.service_model.service_name, model.name))

    client.meta.events.register("before-parse", before_parse)
    client.meta.events.register("after-call", after_call)
    return client


def clients(url: str, region: str = "us-east-1") -> tuple[Any, Any]:
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    sm = boto3.client("sagemaker", region_name=region, endpoint_url=url, **keys)
    rt = boto3.client(
        "sagemaker-featurestore-runtime", region_name=region, endpoint_url=url, **keys
    )
    return checked(sm), checked(rt)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """``fsgen serve`` as a user runs it, in the project's directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServeProcess:
        fsgen = Path(sys.executable).with_name("fsgen")
        self.proc = subprocess.Popen(
            [str(fsgen), "serve", "--port", str(self.port)],
            cwd=self.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"fsgen serve exited: {self.proc.stderr.read()!r}")  # type: ignore[union-attr]
            try:
                urllib.request.urlopen(self.url + "/ping", timeout=1)
            except urllib.error.HTTPError:
                return self  # it answered
            except OSError:
                time.sleep(0.1)
        raise AssertionError("fsgen serve did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None
