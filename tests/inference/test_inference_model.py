"""The model side: the pure-Python ``fsgen.linear/1`` evaluation against scikit-learn's own
``predict_proba``, model loading errors, request parsing, ``fsgen train`` and
``fsgen serve-model`` from the command line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from inference_helpers import FEATURE_SET, REPO, Project

from fsgen.cli import main
from fsgen.loader import load
from fsgen.runtime.endpoint import (
    MODEL_FORMAT,
    LinearModel,
    ModelError,
    load_model,
    parse_requests,
)
from fsgen.runtime.inference import RequestError
from fsgen.train import TrainError, fit, write_model

SPEC = load(REPO)
COLUMNS = list(SPEC.feature_set(FEATURE_SET).columns)
CATEGORIES = ["travel", "electronics", "grocery", "jewelry"]


def synthetic_frame(seed: int, rows: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 90, rows),
            "avg_monthly_spend": rng.uniform(0, 5000, rows),
            "is_prime_member": rng.integers(0, 2, rows),
            "category": rng.choice(CATEGORIES, rows),
            "chargeback_rate": rng.uniform(0, 0.1, rows),
            "avg_ticket": rng.lognormal(4, 1, rows),
            "is_high_risk": rng.integers(0, 2, rows),
            "amount_to_monthly_spend": rng.exponential(1.0, rows),
        }
    )
    frame["is_fraud"] = (
        rng.uniform(0, 1, rows)
        < 0.2 + 0.5 * frame["is_high_risk"] * (frame["category"] == "travel")
    ).astype(int)
    frame.loc[0, "is_fraud"], frame.loc[1, "is_fraud"] = 0, 1
    return frame


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.01, 100.0))
def test_pure_python_model_equals_sklearn_predict_proba(seed: int, c: float) -> None:
    frame = synthetic_frame(seed)
    document, estimator, matrix = fit(frame, SPEC, FEATURE_SET, c=c)
    model = LinearModel.from_document(json.loads(json.dumps(document)), "model")
    expected = estimator.predict_proba(matrix)[:, list(estimator.classes_).index(1)]
    vectors = frame[COLUMNS].astype(object).to_numpy().tolist()
    got = [
        model.predict([v.item() if hasattr(v, "item") else v for v in vector]) for vector in vectors
    ]
    assert np.allclose([g["probability"] for g in got], expected, rtol=1e-9, atol=1e-12)
    assert [g["is_fraud"] for g in got] == estimator.predict(matrix).tolist()


def test_unseen_category_and_missing_values_score_at_the_baseline() -> None:
    document, _, _ = fit(synthetic_frame(1), SPEC, FEATURE_SET)
    model = LinearModel.from_document(document, "model")
    means = [
        next((t["mean"] for t in document["terms"] if t["column"] == c and "mean" in t), None)
        for c in COLUMNS
    ]
    unseen = [m if m is not None else "never-seen" for m in means]
    missing = [None] * len(COLUMNS)
    assert model.score(unseen) == pytest.approx(document["intercept"], abs=1e-12)
    assert model.score(missing) == document["intercept"]


def test_training_refuses_a_single_class() -> None:
    frame = synthetic_frame(2)
    frame["is_fraud"] = 0
    with pytest.raises(TrainError, match="single class"):
        fit(frame, SPEC, FEATURE_SET)
    with pytest.raises(TrainError, match="no label column 'nope'"):
        fit(frame, SPEC, FEATURE_SET, "nope")


def test_training_without_a_declared_label_names_the_candidate_columns() -> None:
    frame = synthetic_frame(2)
    unlabelled = SPEC.model_copy(
        update={
            "feature_sets": tuple(
                fs.model_copy(update={"labels": ()}) if fs.name == FEATURE_SET else fs
                for fs in SPEC.feature_sets
            )
        }
    )
    with pytest.raises(TrainError, match="declares no labels: pass --label COLUMN") as raised:
        fit(frame, unlabelled, FEATURE_SET)
    assert "is_fraud" in str(raised.value)
    assert not any(c in str(raised.value) for c in COLUMNS)


def test_the_columns_a_model_leaves_out_are_named() -> None:
    """A linear model has no term for a collection column: train says which it leaves out
    instead of dropping them silently (the rides set has a Vector and a List feature)."""
    from fsgen.train import unused_columns

    rides = load(Path(__file__).resolve().parents[1] / "golden" / "rides")
    assert unused_columns(rides, "dispatch-model") == ["route_embedding"]
    assert unused_columns(SPEC, FEATURE_SET) == []


def test_load_model_checks_format_and_columns(tmp_path: Path) -> None:
    document, _, _ = fit(synthetic_frame(3), SPEC, FEATURE_SET)
    path = write_model(document, tmp_path / "m")
    assert load_model(tmp_path / "m", FEATURE_SET, COLUMNS).columns == tuple(COLUMNS)
    assert load_model(path, FEATURE_SET, COLUMNS).feature_set == FEATURE_SET
    with pytest.raises(ModelError, match="retrain the model"):
        load_model(path, FEATURE_SET, [*COLUMNS[1:], COLUMNS[0]])
    with pytest.raises(ModelError, match="retrain the model"):
        load_model(path, "other-model", COLUMNS)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**document, "format": "pickle"}))
    with pytest.raises(ModelError, match=f"is not '{MODEL_FORMAT}'"):
        load_model(bad, FEATURE_SET, COLUMNS)
    bad.write_text(json.dumps({**document, "terms": [{"column": "age"}]}))
    with pytest.raises(ModelError, match="malformed"):
        load_model(bad, FEATURE_SET, COLUMNS)
    bad.write_text("{")
    with pytest.raises(ModelError, match="not JSON"):
        load_model(bad, FEATURE_SET, COLUMNS)
    with pytest.raises(ModelError, match="cannot read model"):
        load_model(tmp_path / "absent.json", FEATURE_SET, COLUMNS)


def test_parse_requests_shapes_and_errors() -> None:
    one = {"customer_id": "C1", "merchant_id": "M1", "amount": 1.5}
    assert parse_requests(json.dumps(one)) == [one]
    assert parse_requests(json.dumps([one, one]).encode()) == [one, one]
    assert parse_requests(json.dumps({"instances": [one]}), "application/json; charset=utf-8") == [
        one
    ]
    for body, content_type, field in (
        ("{", "application/json", "body"),
        ("[]", "application/json", "body"),
        ("[1]", "application/json", "instances[0]"),
        ("{}", "text/csv", "Content-Type"),
    ):
        with pytest.raises(RequestError) as info:
            parse_requests(body, content_type)
        assert info.value.field == field


# ------------------------------------------------------------------------------ command line


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_cli_train_then_serve_model(project: Project, tmp_path: Path) -> None:
    model = tmp_path / "out" / "model.json"
    result = CliRunner().invoke(
        main,
        [
            "--project",
            str(project.root),
            "train",
            FEATURE_SET,
            "--labels",
            str(project.labels),
            "--output",
            str(model),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(model.read_text())["format"] == MODEL_FORMAT
    port = free_port()
    as_of = datetime.fromtimestamp(project.as_of, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fsgen.cli",
            "--project",
            str(project.root),
            "serve-model",
            FEATURE_SET,
            "--model",
            str(model),
            "--port",
            str(port),
            "--as-of",
            as_of,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):  # wait for the server to come up (not a timing assertion)
            try:
                with urllib.request.urlopen(url + "/ping", timeout=1) as response:
                    assert response.status == 200
                    break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(f"serve-model exited: {process.stderr.read()}")  # type: ignore[union-attr]
                time.sleep(0.1)
        else:
            pytest.fail("serve-model did not answer /ping")
        request = urllib.request.Request(
            url + "/invocations",
            data=json.dumps({"customer_id": "C000", "merchant_id": "M00", "amount": 3.0}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
        features = answer["predictions"][0]["features"]
        assert features["avg_monthly_spend"] == 0.1 + 0.2 and features["avg_ticket"] == 0.1 + 0.2
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_cli_serve_model_refuses_a_model_of_another_set(project: Project, tmp_path: Path) -> None:
    document, _, _ = fit(synthetic_frame(4), SPEC, FEATURE_SET)
    path = write_model({**document, "feature_set": "churn-model"}, tmp_path / "m.json")
    result = CliRunner().invoke(
        main,
        [
            "--project",
            str(project.root),
            "serve-model",
            FEATURE_SET,
            "--model",
            str(path),
            "--port",
            "0",
        ],
    )
    assert result.exit_code == 1
    assert "trained on feature set 'churn-model'" in result.output
