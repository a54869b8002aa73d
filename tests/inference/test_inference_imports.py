"""The generated handler in a serving image: it imports nothing beyond the standard library,
boto3, fsgen.runtime and the featuredefs functions, and reads features with boto3's real
featurestore-runtime client over HTTP (here against ``fsgen serve``, the aws backend's
stand-in), giving the same vector as the in-process read of the local store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from inference_helpers import FEATURE_SET, Project

from fsgen.backends.local import LocalBackend
from fsgen.plan.apply import apply_plan, compute_plan
from fsgen.server import serve_in_thread
from fsgen.serving.handler import load_handler
from fsgen.serving.sources import LocalRecordSource, aws_record_source
from fsgen.train import train, write_model

HEAVY = (
    "pandas",
    "duckdb",
    "pyarrow",
    "pydantic",
    "numpy",
    "sklearn",
    "scipy",
    "jinja2",
    "click",
    "rich",
    "sqlglot",
)

#: Runs in a fresh interpreter. featuredefs is imported first (its declarations need fsgen's
#: authoring API, which a serving image replaces with inert stand-ins); then every heavy module
#: and every fsgen module outside fsgen.runtime is dropped from sys.modules and blocked, so any
#: import of one by the handler, the parser or the runtime fails.
SCRIPT = textwrap.dedent("""
    import json, sys
    import featuredefs.fraud
    HEAVY = {heavy!r}
    def banned(name):
        top = name.split(".")[0]
        return top in HEAVY or (
            top == "fsgen" and name != "fsgen" and not name.startswith("fsgen.runtime"))
    for name in [m for m in sys.modules if banned(m)]:
        del sys.modules[name]
    class Block:
        def find_spec(self, name, path=None, target=None):
            if banned(name):
                raise ImportError("the handler imported " + name)
            return None
    sys.meta_path.insert(0, Block())
    module = __import__("generated.feature_sets.fraud_model.inference", fromlist=["x"])
    endpoint = module.model_fn(sys.argv[1])
    requests = module.input_fn(sys.argv[2], "application/json")
    body = module.output_fn(module.predict_fn(requests, endpoint), "application/json")
    loaded = sorted(m for m in sys.modules if banned(m))
    print(json.dumps({{"body": json.loads(body), "banned_loaded": loaded}}))
""").format(heavy=HEAVY)


@pytest.fixture(autouse=True)
def _dummy_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_CONFIG_FILE", os.devnull),
        ("AWS_SHARED_CREDENTIALS_FILE", os.devnull),
    ):
        monkeypatch.setenv(key, value)


def test_handler_imports_light_and_reads_through_boto3(project: Project, tmp_path: Path) -> None:
    from fsgen.pit import build_dataset

    frame = build_dataset(project.config, project.spec, FEATURE_SET, project.labels)
    model_dir = tmp_path / "model"
    write_model(train(frame, project.spec, FEATURE_SET), model_dir)
    backend = LocalBackend(project.config)
    apply_plan(
        project.config,
        project.spec,
        backend,
        compute_plan(project.config, project.spec, backend, artifacts=False),
        regenerate=False,
    )
    server = serve_in_thread(project.config, project.spec, port=0)
    requests = [
        {"customer_id": c, "merchant_id": m, "amount": a}
        for c, m, a in (("C000", "M00", 0.1 + 0.2), ("C011", "M01", 12.0), ("C404", "M02", 5.0))
    ]
    env = {**os.environ, "FSGEN_RUNTIME_ENDPOINT_URL": server.url, "PYTHONPATH": str(project.root)}
    try:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(model_dir), json.dumps(requests)],
            cwd=project.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert result["banned_loaded"] == []
        remote = result["body"]["predictions"]
        # the same handler in process, reading the local store directly
        with project.store() as store:
            local = load_handler(
                project.config, project.spec, FEATURE_SET, model_dir, LocalRecordSource(store)
            )
            expected = json.loads(local.invoke(json.dumps(requests)))["predictions"]
            # and the serve-model aws path: boto3 client from the project's aws profile
            via_profile = load_handler(
                project.config,
                project.spec,
                FEATURE_SET,
                model_dir,
                aws_record_source(project.config, server.url),
            )
            assert json.loads(via_profile.invoke(json.dumps(requests)))["predictions"] == expected
    finally:
        server.shutdown()
        server.server_close()
        server.runtime.store.close()
    assert remote == expected
    assert remote[0]["features"]["amount_to_monthly_spend"] == 0.1 + 0.2
    assert remote[2]["features"]["age"] == -1  # C404 does not exist: the default
