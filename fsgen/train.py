"""Train a small model on a point-in-time training set and export it for the endpoint handler.

``train(frame, spec, feature_set)`` fits scikit-learn's LogisticRegression on the feature
set's columns (numeric columns standardized, String columns one-hot encoded) and returns the
model as an ``fsgen.linear/1`` document (see :mod:`fsgen.runtime.endpoint`), which the
generated handler evaluates in pure Python. scikit-learn is needed only here, to train
(``pip install 'fsgen[ml]'``); the serving image needs neither it nor numpy.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsgen.errors import FsgenError
from fsgen.runtime.endpoint import MODEL_FORMAT
from fsgen.spec import ProjectSpec
from fsgen.types import DType, Scalar

if TYPE_CHECKING:
    import pandas as pd

    from fsgen.config import ProjectConfig


class TrainError(FsgenError):
    """The training set cannot train a model (no label, one class, missing sklearn)."""


def _column_kinds(spec: ProjectSpec, feature_set: str) -> dict[str, Scalar]:
    return {c: dtype.scalar for c, dtype in _dtypes(spec, feature_set) if not dtype.is_collection}


def unused_columns(spec: ProjectSpec, feature_set: str) -> list[str]:
    """The set's columns the model leaves out: collections (List, Set, Vector), which a
    linear model has no use for (the handler ignores them too)."""
    return [c for c, dtype in _dtypes(spec, feature_set) if dtype.is_collection]


def _dtypes(spec: ProjectSpec, feature_set: str) -> list[tuple[str, DType]]:
    fs = spec.feature_set(feature_set)
    return [
        (
            item.column,
            spec.on_demand_feature(item.name).dtype
            if item.kind == "on_demand"
            else spec.group(item.group or "").output(item.name).dtype,
        )
        for item in fs.items
    ]


def _moments(values: Any) -> tuple[float, float]:
    """Mean and standard deviation without overflow (values near the largest double): both
    computed on values divided by their largest magnitude. A constant column gets scale 1."""
    import numpy as np

    if not len(values):
        return 0.0, 1.0
    top = float(np.max(np.abs(values)))
    if top == 0.0 or not math.isfinite(top):
        return 0.0, 1.0
    unit = values / top
    mean, scale = top * float(unit.mean()), top * float(unit.std())
    return mean, scale if scale > 0 and math.isfinite(scale) else 1.0


def train(
    frame: pd.DataFrame,
    spec: ProjectSpec,
    feature_set: str,
    label: str | None = None,
    *,
    c: float = 1.0,
) -> dict[str, Any]:
    """A logistic regression on ``frame`` (a ``build_dataset`` result) as a model document."""
    return fit(frame, spec, feature_set, label, c=c)[0]


def fit(
    frame: pd.DataFrame,
    spec: ProjectSpec,
    feature_set: str,
    label: str | None = None,
    *,
    c: float = 1.0,
) -> tuple[dict[str, Any], Any, Any]:
    """(model document, the fitted scikit-learn estimator, its design matrix)."""
    try:
        import numpy as np
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise TrainError("training needs scikit-learn: pip install 'fsgen[ml]'") from None
    fs = spec.feature_set(feature_set)
    label = label or (fs.labels[0] if fs.labels else None)
    not_labels = {*fs.columns, fs.label_time, *(k for keys in fs.keys.values() for k in keys)}
    candidates = [str(c) for c in frame.columns if c not in not_labels] or ["none"]
    if label is None:
        raise TrainError(
            f"feature set {fs.name!r} declares no labels: pass --label COLUMN (label-file "
            f"columns: {', '.join(candidates)}), or declare labels=[...] on the feature set"
        )
    if label not in frame.columns:
        raise TrainError(
            f"no label column {label!r} in the training set of {fs.name!r} (label-file "
            f"columns: {', '.join(candidates)})"
        )
    y = frame[label].to_numpy()
    if len(set(y.tolist())) < 2:
        raise TrainError(f"label {label!r} has a single class in {len(y)} rows; cannot train")
    kinds = _column_kinds(spec, feature_set)
    blocks: list[Any] = []
    terms: list[dict[str, Any]] = []
    for column, scalar in kinds.items():
        values = frame[column]
        if scalar is Scalar.STRING:
            for value in sorted({str(v) for v in values.dropna().tolist()}):
                blocks.append((values == value).to_numpy(dtype="float64"))
                terms.append({"column": column, "value": value})
        else:
            x = values.astype("float64").to_numpy()
            mean, scale = _moments(x[~np.isnan(x)])
            # a missing value sits at the mean: the handler's rule for None
            blocks.append(np.nan_to_num((x - mean) / scale, nan=0.0))
            terms.append({"column": column, "mean": mean, "scale": scale})
    matrix = np.column_stack(blocks)
    estimator = LogisticRegression(C=c, max_iter=1000)
    estimator.fit(matrix, y)
    for term, weight in zip(terms, estimator.coef_[0].tolist(), strict=True):
        term["weight"] = float(weight)
    document = {
        "format": MODEL_FORMAT,
        "feature_set": fs.name,
        "columns": list(fs.columns),
        "label": label,
        "link": "logit",
        "threshold": 0.5,
        "intercept": float(estimator.intercept_[0]),
        "terms": terms,
        "training_rows": len(frame),
        "classes": [
            int(v) if isinstance(v, int | np.integer) else str(v)
            for v in estimator.classes_.tolist()
        ],
    }
    return document, estimator, matrix


def write_model(model: dict[str, Any], path: Path) -> Path:
    """Write ``model.json`` (``path`` is the file, or a directory to hold it), atomically."""
    target = path / "model.json" if path.suffix != ".json" else path
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.tmp")
    temp.write_text(json.dumps(model, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    temp.replace(target)
    return target


def train_from_labels(
    config: ProjectConfig,
    spec: ProjectSpec,
    feature_set: str,
    labels: object,
    output: Path,
    label: str | None = None,
) -> tuple[Path, pd.DataFrame, dict[str, Any]]:
    """Build the point-in-time training set for ``labels``, train, write the model."""
    from fsgen.pit import build_dataset

    frame = build_dataset(config, spec, feature_set, labels)  # type: ignore[arg-type]
    model = train(frame, spec, feature_set, label)
    return write_model(model, output), frame, model


__all__ = ["TrainError", "fit", "train", "train_from_labels", "write_model"]
