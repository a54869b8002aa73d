"""A failing step through a real mechanism: an HTTP endpoint in front of ``fsgen serve`` that
answers one CreateFeatureGroup with AWS's ResourceLimitExceeded error. Apply must stop with a
clear message, record the failure, and leave a state the next plan describes truthfully."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from fsgen.config import ProjectConfig
from fsgen.plan.apply import ApplyFailed, apply_plan, compute_plan, read_history
from fsgen.server import FeatureStoreServer
from fsgen.spec import ProjectSpec

Example = tuple[ProjectConfig, ProjectSpec]
FAIL_GROUP = "merchant-features"


def failing_proxy(
    upstream: str,
    code: str = "ResourceLimitExceeded",
    times: int | None = None,
    puts_before_failure: int | None = None,
) -> ThreadingHTTPServer:
    """Answers CreateFeatureGroup of FAIL_GROUP with ``code`` (``times`` times, or always);
    with ``puts_before_failure``, relays that many PutRecord calls and answers every later
    one with AccessForbidden (not retried: a policy revoked part-way through a run)."""
    target = urlsplit(upstream)
    left = [times]
    puts = [0]

    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _relay(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            op = self.headers.get("X-Amz-Target", "")
            if puts_before_failure is not None and self.command == "PUT":
                puts[0] += 1
                if puts[0] > puts_before_failure:
                    payload = json.dumps({"message": "access revoked"}).encode()
                    self.send_response(403)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("x-amzn-ErrorType", "AccessForbidden")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
            if (
                op == "SageMaker.CreateFeatureGroup"
                and left[0] != 0
                and json.loads(body).get("FeatureGroupName") == FAIL_GROUP
            ):
                if left[0] is not None:
                    left[0] -= 1
                seen.append(code)
                payload = json.dumps(
                    {
                        "__type": code,
                        "message": "The account-level service limit 'Feature groups' "
                        "is 1 FeatureGroups"
                        if code == "ResourceLimitExceeded"
                        else "Rate exceeded",
                    }
                ).encode()
                self.send_response(400)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
            conn.request(self.command, self.path, body, dict(self.headers))
            response = conn.getresponse()
            data = response.read()
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            conn.close()

        do_POST = do_GET = do_PUT = do_DELETE = _relay

    seen: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    server.seen = seen  # type: ignore[attr-defined]
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def proxy(served: FeatureStoreServer) -> Iterator[str]:
    server = failing_proxy(served.url)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_failed_stage_stops_and_next_plan_is_truthful(
    example: Example, proxy: str, served: FeatureStoreServer, make_backend: Any
) -> None:
    config, spec = example
    flaky = make_backend(proxy, config)
    plan = compute_plan(config, spec, flaky, artifacts=False)
    with pytest.raises(ApplyFailed) as info:
        apply_plan(config, spec, flaky, plan, regenerate=False)
    message = str(info.value)
    assert "create feature group merchant-features" in message
    assert "ResourceLimitExceeded" in message
    assert "run 'fsgen plan'" in message
    (entry,) = read_history(flaky.state_dir)
    assert entry["result"] == "failed" and "ResourceLimitExceeded" in str(entry["error"])
    # the group created before the failure stays, complete; the next plan creates the others
    direct = make_backend(served.url, config)
    after = compute_plan(config, spec, direct, artifacts=False)
    assert [(c.group, c.action) for c in after.changes] == [
        (FAIL_GROUP, "create"),
        ("purchases", "create"),
    ]
    apply_plan(config, spec, direct, after, regenerate=False)
    assert not compute_plan(config, spec, direct, artifacts=False).stages


def test_throttling_is_retried_with_back_off(
    example: Example, served: FeatureStoreServer, make_backend: Any
) -> None:
    config, spec = example
    proxy = failing_proxy(served.url, code="ThrottlingException", times=1)
    try:
        backend = make_backend(f"http://127.0.0.1:{proxy.server_address[1]}", config)
        plan = compute_plan(config, spec, backend, artifacts=False)
        apply_plan(config, spec, backend, plan, regenerate=False)
        assert proxy.seen == ["ThrottlingException"]  # type: ignore[attr-defined]
        assert not compute_plan(config, spec, backend, artifacts=False).stages
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_a_putrecord_failing_part_way_says_how_much_was_written(
    example: Example, served: FeatureStoreServer, make_backend: Any, tmp_path: Any
) -> None:
    """``--backend aws ingest`` whose PutRecord starts failing after 3 records: the error
    says 3 records of the run were written, and so does the audit record (it said 0 written
    and 0 rejected although the rejects file held the bad row)."""
    import time

    from click.testing import CliRunner

    from fsgen.audit import AUDIT_FILE, read_lines
    from fsgen.cli import main

    config, spec = example
    apply_plan(
        config,
        spec,
        make_backend(served.url, config),
        compute_plan(config, spec, make_backend(served.url, config), artifacts=False),
        regenerate=False,
    )
    server = failing_proxy(served.url, puts_before_failure=3)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    pyproject = config.root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "[tool.fsgen.aws]\n", f'[tool.fsgen.aws]\nendpoint_url = "{url}"\n'
        )
    )
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    header = "customer_id,last_updated_time,birth_date,total_spend,tenure_months,membership_tier"
    rows = [f"C{i},{now},1990-01-01,10.0,3,basic" for i in range(6)]
    rows[1] = rows[1].replace("10.0", "ten")
    source = tmp_path / "six.csv"
    source.write_text(header + "\n" + "\n".join(rows) + "\n")
    try:
        result = CliRunner().invoke(
            main,
            [
                "--project",
                str(config.root),
                "--backend",
                "aws",
                "ingest",
                "customer-features",
                str(source),
            ],
            env={"NO_COLOR": "1"},
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 1, result.output
    assert "error: PutRecord failed: AccessForbidden: access revoked" in result.stderr
    assert "(3 record(s) of this run were written before it; none after)" in result.stderr
    lines = read_lines(config.store_path / AUDIT_FILE)
    (entry,) = [e for e in lines if e.get("kind") == "ingest"]
    details: Any = entry["details"]
    assert (details["written"], details["rejected"]) == (3, 1), entry
