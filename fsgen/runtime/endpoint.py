"""What a generated SageMaker endpoint handler (``feature_sets/<set>/inference.py``) runs:
request parsing, one BatchGetRecord for the records a request needs, the feature vector built
by the set's generated parser, and a model evaluated in pure Python.

Standard library only (boto3 is imported when no record source is given), so the handler
imports in a serving image that has nothing but boto3 and the featuredefs package.

The model format is ``fsgen.linear/1``: a JSON document with a linear model's intercept and
terms (standardized numeric columns, one-hot string values), trained by ``fsgen.train`` with
scikit-learn and evaluated here without it. JSON rather than a pickled estimator because the
serving image then needs neither scikit-learn nor numpy, loading a model runs no code, and the
model file is reviewable; the evaluation is tested against scikit-learn's own
``predict_proba``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fsgen.runtime.inference import FeatureSetRuntime, RequestError, Value

MODEL_FORMAT = "fsgen.linear/1"
MODEL_FILE = "model.json"
#: SageMaker's BatchGetRecord takes at most this many record identifiers per group.
BATCH_LIMIT = 100
#: Environment variable naming a featurestore-runtime endpoint (e.g. ``fsgen serve``).
ENDPOINT_ENV = "FSGEN_RUNTIME_ENDPOINT_URL"

Request = dict[str, object]


class RecordSource(Protocol):
    """Anything answering BatchGetRecord like boto3's sagemaker-featurestore-runtime client."""

    def batch_get_record(self, **params: Any) -> Mapping[str, Any]: ...


class ModelError(ValueError):
    """The model file is missing, malformed or made for another feature set."""


class FeatureStoreError(RuntimeError):
    """BatchGetRecord answered with an error for a record (not a missing record)."""


# ------------------------------------------------------------------------------ the model


@dataclass(frozen=True)
class Term:
    """One linear term: ``weight * (x - mean) / scale`` for a numeric column, or ``weight``
    when a string column equals ``value`` (one-hot)."""

    column: int
    weight: float
    mean: float = 0.0
    scale: float = 1.0
    value: str | None = None


@dataclass(frozen=True)
class LinearModel:
    """A logistic (``link="logit"``) or plain linear model over a feature vector."""

    feature_set: str
    columns: tuple[str, ...]
    intercept: float
    terms: tuple[Term, ...]
    link: str = "logit"
    threshold: float = 0.5
    label: str = "label"

    def score(self, vector: Sequence[Value]) -> float:
        """The linear predictor; a missing value (None) contributes nothing (it sits at the
        training mean, and matches no one-hot value)."""
        z = self.intercept
        for term in self.terms:
            x = vector[term.column]
            if term.value is not None:
                z += term.weight if x == term.value else 0.0
            elif x is not None:
                z += term.weight * ((float(x) - term.mean) / term.scale)  # type: ignore[arg-type]
        return z

    def predict(self, vector: Sequence[Value]) -> dict[str, object]:
        z = self.score(vector)
        if self.link != "logit":
            return {"score": z}
        p = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
        return {"probability": p, self.label: int(p >= self.threshold)}

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], source: str) -> LinearModel:
        if doc.get("format") != MODEL_FORMAT:
            raise ModelError(f"{source}: format {doc.get('format')!r} is not {MODEL_FORMAT!r}")
        try:
            columns = tuple(str(c) for c in doc["columns"])
            index = {c: i for i, c in enumerate(columns)}
            terms = tuple(
                Term(
                    column=index[str(t["column"])],
                    weight=float(t["weight"]),
                    mean=float(t.get("mean", 0.0)),
                    scale=float(t.get("scale", 1.0)) or 1.0,
                    value=None if t.get("value") is None else str(t["value"]),
                )
                for t in doc["terms"]
            )
            return cls(
                feature_set=str(doc["feature_set"]),
                columns=columns,
                intercept=float(doc["intercept"]),
                terms=terms,
                link=str(doc.get("link", "logit")),
                threshold=float(doc.get("threshold", 0.5)),
                label=str(doc.get("label", "label")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{source}: malformed model document: {exc!r}") from None


def load_model(
    path: str | os.PathLike[str], feature_set: str, columns: Sequence[str]
) -> LinearModel:
    """The model in ``path`` (a ``model.json`` file, or a model directory holding one),
    checked against the feature set it must read: same name, same columns in the same order."""
    where = Path(path)
    file = where / MODEL_FILE if where.is_dir() else where
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelError(f"cannot read model {file}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ModelError(f"{file}: not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ModelError(f"{file}: expected a JSON object")
    model = LinearModel.from_document(doc, str(file))
    if model.feature_set != feature_set or list(model.columns) != list(columns):
        raise ModelError(
            f"{file}: trained on feature set {model.feature_set!r} with columns "
            f"{list(model.columns)}, but this handler serves {feature_set!r} with columns "
            f"{list(columns)}; retrain the model on the current feature set"
        )
    return model


# ------------------------------------------------------------------------------ requests


def parse_requests(
    body: str | bytes | bytearray, content_type: str = "application/json"
) -> list[Request]:
    """A JSON object (one request), a list of objects, or ``{"instances": [...]}``."""
    kind = (content_type or "application/json").split(";")[0].strip().lower()
    if kind not in ("application/json", "application/jsonlines", "*/*", ""):
        raise RequestError("Content-Type", f"unsupported {content_type!r}; send application/json")
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise RequestError("body", f"not JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("instances"), list):
        data = data["instances"]
    items = data if isinstance(data, list) else [data]
    if not items:
        raise RequestError("body", "no requests")
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise RequestError(f"instances[{position}]", "each request must be a JSON object")
    return items


def runtime_client() -> RecordSource:
    """boto3's sagemaker-featurestore-runtime client. The endpoint comes from
    ``FSGEN_RUNTIME_ENDPOINT_URL`` when set (e.g. ``fsgen serve``), else from boto3's own
    configuration (``AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME``, region, credentials)."""
    import boto3

    from fsgen.runtime.local_aws import local_client_kwargs

    url = os.environ.get(ENDPOINT_ENV) or None
    client: RecordSource = boto3.client(
        "sagemaker-featurestore-runtime",
        endpoint_url=url,
        **local_client_kwargs(url, service="sagemaker-featurestore-runtime"),
    )
    return client


# ------------------------------------------------------------------------------ endpoint


class Endpoint:
    """A feature set's serving logic: requests in, (vector, prediction) out.

    ``clock`` returns the instant TTL expiry is judged at (default: the wall clock); the
    record source's own expiry filter should use the same clock.
    """

    def __init__(
        self,
        runtime: FeatureSetRuntime,
        model: LinearModel | None,
        source: RecordSource,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.runtime = runtime
        self.model = model
        self.source = source
        self.clock = clock or time.time
        self.columns = tuple(c.name for c in runtime.columns)

    def fetch(
        self, requests: Sequence[Mapping[str, object]]
    ) -> list[dict[str, Mapping[str, object] | None]]:
        """Each request's records per group, read with as few BatchGetRecord calls as the
        100-identifier limit allows. A record the store lacks is None (the set's missing-value
        policy decides); an error answer raises."""
        ids = [self.runtime.record_ids(r) for r in requests]
        found: dict[tuple[str, str], Mapping[str, object]] = {}
        wanted = {g.name: list(dict.fromkeys(i[g.name] for i in ids)) for g in self.runtime.groups}
        for start in range(0, max((len(v) for v in wanted.values()), default=0), BATCH_LIMIT):
            end = start + BATCH_LIMIT
            identifiers: list[dict[str, object]] = [
                {
                    "FeatureGroupName": g,
                    "RecordIdentifiersValueAsString": v[start:end],
                    "FeatureNames": self.runtime.feature_names(g),
                }
                for g, v in wanted.items()
                if v[start:end]
            ]
            for item in self._batch_get(identifiers):
                found[
                    (
                        str(item.get("FeatureGroupName")),
                        str(item.get("RecordIdentifierValueAsString")),
                    )
                ] = item
        return [{g: found.get((g, i[g])) for g in i} for i in ids]

    def _batch_get(self, identifiers: list[dict[str, object]]) -> list[Mapping[str, object]]:
        records: list[Mapping[str, object]] = []
        for _attempt in range(5):
            response = self.source.batch_get_record(
                Identifiers=identifiers, ExpirationTimeResponse="Enabled"
            )
            records.extend(response.get("Records") or [])
            errors = response.get("Errors") or []
            if errors:
                first = errors[0]
                raise FeatureStoreError(
                    f"BatchGetRecord failed for {first.get('FeatureGroupName')} "
                    f"{first.get('RecordIdentifierValueAsString')!r}: "
                    f"{first.get('ErrorCode')}: {first.get('ErrorMessage')}"
                )
            identifiers = list(response.get("UnprocessedIdentifiers") or [])
            if not identifiers:
                return records
            time.sleep(0.05 * (2**_attempt))
        raise FeatureStoreError("BatchGetRecord left identifiers unprocessed after 5 attempts")

    def vectors(
        self, requests: Sequence[Mapping[str, object]], now: float | None = None
    ) -> list[list[Value]]:
        """The ordered feature vector of each request (what the model receives)."""
        moment = self.clock() if now is None else now
        out = []
        for request, items in zip(requests, self.fetch(requests), strict=True):
            # a group with no record decodes too: an aggregation group's absent state is the
            # empty state (counts 0), as in training; a row group's is None
            stored = {
                g: self.runtime.decode(
                    g,
                    None if item is None else item.get("Record"),  # type: ignore[arg-type]
                    None if item is None else item.get("ExpiresAt"),
                    moment,
                )
                for g, item in items.items()
            }
            out.append(self.runtime.vector(stored, request))
        return out

    def predict(self, requests: Sequence[Mapping[str, object]]) -> list[dict[str, object]]:
        """One answer per request: the prediction and the features it was made from."""
        answers = []
        for vector in self.vectors(requests):
            answer: dict[str, object] = {} if self.model is None else self.model.predict(vector)
            answer["features"] = dict(zip(self.columns, vector, strict=True))
            answers.append(answer)
        return answers


def dump_predictions(
    predictions: Sequence[Mapping[str, object]], accept: str = "application/json"
) -> str:
    """``{"predictions": [...]}``; floats in shortest round-trip form, so a client decodes the
    feature values bit for bit."""
    kind = (accept or "application/json").split(";")[0].strip().lower()
    if kind not in ("application/json", "*/*", ""):
        raise RequestError("Accept", f"unsupported {accept!r}; accept application/json")
    return json.dumps({"predictions": list(predictions)}, allow_nan=False)


__all__ = [
    "BATCH_LIMIT",
    "ENDPOINT_ENV",
    "MODEL_FILE",
    "MODEL_FORMAT",
    "Endpoint",
    "FeatureStoreError",
    "LinearModel",
    "ModelError",
    "RecordSource",
    "Request",
    "Term",
    "dump_predictions",
    "load_model",
    "parse_requests",
    "runtime_client",
]
