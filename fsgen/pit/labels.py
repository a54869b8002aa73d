"""Label rows in, as given: read CSV/Parquet/DataFrame, check the columns the feature set
needs, and derive what the join uses (row number, label time in epoch microseconds, key
columns in the entity keys' types). The label frame itself is never modified; the dataset
returns it unchanged with the feature columns appended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa

from fsgen.pit.model import INTERNAL, MICROS, PitError, PitPlan
from fsgen.types import Scalar

LabelSource: TypeAlias = str | Path | pd.DataFrame


@dataclass(frozen=True)
class Labels:
    """The label frame as given plus the join inputs derived from it."""

    frame: pd.DataFrame
    source: str
    micros: np.ndarray
    keys: dict[str, pa.Array]

    def join_table(self, plan: PitPlan) -> pa.Table:
        """Row number, label time and each group's key columns (``__fsgen_g<i>k<j>``)."""
        columns: dict[str, pa.Array] = {
            f"{INTERNAL}row": pa.array(np.arange(len(self.frame), dtype="int64")),
            f"{INTERNAL}t": pa.array(self.micros),
        }
        for join in plan.all_joins:
            for j, column in enumerate(join.label_keys):
                columns[key_alias(join.index, j)] = self.keys[column]
        return pa.table(columns)


def key_alias(group_index: int, key_index: int) -> str:
    return f"{INTERNAL}g{group_index}k{key_index}"


def read_labels(source: LabelSource, plan: PitPlan) -> Labels:
    frame, name = _read(source, plan)
    check_columns(list(frame.columns), plan, name)
    micros = label_micros(frame[plan.label_time], plan.label_time, name)
    keys: dict[str, pa.Array] = {}
    for join in plan.all_joins:
        for column, key in zip(join.label_keys, join.keys, strict=True):
            if column not in keys:
                keys[column] = _key_array(
                    frame[column],
                    key.dtype.scalar,
                    column,
                    f"{join.group.name}'s key {key.name!r}",
                    name,
                )
    return Labels(frame=frame.reset_index(drop=True), source=name, micros=micros, keys=keys)


def check_columns(columns: list[str], plan: PitPlan, source: str) -> None:
    have = set(columns)
    needed = {plan.label_time: "the label time: FeatureSet(label_time=...) names it"}
    for join in plan.all_joins:
        for column in join.label_keys:
            needed.setdefault(column, f"a key of group {join.group.name!r}")
    for od in plan.on_demand:
        for field in od.request_fields:
            needed.setdefault(field.name, f"a request field of on-demand feature {od.name!r}")
    missing = [f"{c!r} ({why})" for c, why in needed.items() if c not in have]
    if missing:
        raise PitError(
            f"{source}: labels lack column(s) {', '.join(missing)} needed by feature "
            f"set {plan.feature_set.name!r} (the labels have: "
            f"{', '.join(map(str, columns)) or 'no columns'})"
        )
    output = set(plan.feature_set.columns)
    clashes = sorted(c for c in have if c in output or str(c).startswith(INTERNAL))
    if clashes:
        raise PitError(
            f"{source}: label column(s) {clashes} collide with feature columns of "
            f"{plan.feature_set.name!r} (or fsgen's reserved prefix {INTERNAL!r}); "
            "rename them"
        )


def _read(source: LabelSource, plan: PitPlan) -> tuple[pd.DataFrame, str]:
    if isinstance(source, pd.DataFrame):
        return source, "labels"
    path = Path(source)
    if not path.is_file():
        raise PitError(f"labels file {path} does not exist")
    suffixes = "".join(path.suffixes).lower()
    if ".parquet" in suffixes or suffixes.endswith(".pq"):
        return pd.read_parquet(path), str(path)
    if ".csv" in suffixes:
        # String keys are read as text, so '007' stays '007'.
        text = {
            c
            for j in plan.all_joins
            for c, k in zip(j.label_keys, j.keys, strict=True)
            if k.dtype.scalar is Scalar.STRING
        }
        try:
            return pd.read_csv(path, dtype=dict.fromkeys(text, str)), str(path)
        except pd.errors.EmptyDataError:
            raise PitError(
                f"{path}: the labels file is empty; it needs a header naming the key columns "
                "and the label time, and a row per label"
            ) from None
        except (ValueError, pd.errors.ParserError) as exc:
            raise PitError(f"{path}: cannot read labels: {exc}") from None
    raise PitError(f"{path}: labels must be .csv or .parquet")


def label_micros(series: pd.Series, column: str, source: str) -> np.ndarray:
    """Label times as epoch microseconds: ISO-8601 text (a naive time is UTC; ``t``/``z`` as
    ``T``/``Z``), epoch seconds (int or float), or datetimes (each with its own offset; naive =
    UTC). A missing or unreadable time is an error naming its row."""
    _refuse_nulls(series, column, source, "label time")
    if pd.api.types.is_datetime64_any_dtype(series):
        values = series.dt.tz_localize("UTC") if series.dt.tz is None else series
        return _datetime_micros(values)
    if pd.api.types.is_bool_dtype(series):
        raise PitError(f"{source}: label time column {column!r} holds booleans")
    if pd.api.types.is_numeric_dtype(series):
        return _seconds_micros(_plausible_seconds(series.to_numpy(dtype="float64"), column, source))
    fast = _iso_micros_fast(series)
    if fast is not None:
        return fast
    values = series.tolist()
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return _seconds_micros(
            _plausible_seconds(np.asarray(values, dtype="float64"), column, source)
        )
    for row, value in enumerate(values, start=1):
        if not isinstance(value, str | datetime):
            raise PitError(
                f"{source}: label row {row}: {column} {value!r} is not an ISO-8601 "
                "timestamp or epoch seconds"
            )
    text = pd.Series([_iso_text(v) for v in values], index=series.index, dtype=object)
    fast = _iso_micros_fast(text)
    if fast is not None:
        return fast
    parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        row = int(bad[0])
        good = np.flatnonzero(parsed.notna().to_numpy())
        if _is_number(values[row]) and len(good):
            first = int(good[0])
            raise PitError(
                f"{source}: label row {row + 1}: {column} {values[row]!r} is epoch seconds in a "
                f"column of ISO-8601 timestamps (label row {first + 1} holds "
                f"{values[first]!r}); give one column's label times in one form"
            )
        raise PitError(
            f"{source}: label row {row + 1}: {column} {values[row]!r} is not an "
            "ISO-8601 timestamp like 2024-01-31T12:00:00Z or epoch seconds"
        )
    return _datetime_micros(parsed)


def _is_number(value: object) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def _iso_text(value: str | datetime) -> str:
    """ISO-8601 text in the form both parsers read: letters upper-cased (ingestion accepts
    ``t`` and ``z``), a datetime written with its own offset (naive = UTC), so a column of
    datetimes with different offsets is one column of instants."""
    if isinstance(value, str):
        return value.upper()
    return value.isoformat()


def _iso_micros_fast(series: pd.Series) -> np.ndarray | None:
    """Text label times through Arrow's ISO-8601 parser when every value is text in one of
    the forms it reads (all with a zone offset, or all naive = UTC, at most microseconds).
    Arrow reads a strict subset of what pandas' ISO-8601 parser reads, to the same instant;
    anything else (mixed zones, nanoseconds, surrounding spaces, a bad value) returns None
    and takes the pandas path, which also names the bad row."""
    try:
        text = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)):
        return None
    for zone in ("UTC", None):
        try:
            stamps = text.cast(pa.timestamp("us", tz=zone))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return np.asarray(stamps.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype="int64")
    return None


def _datetime_micros(series: pd.Series) -> np.ndarray:
    utc = series.dt.tz_convert("UTC").dt.tz_localize(None)
    return utc.to_numpy(dtype="datetime64[us]").astype("int64")


def _plausible_seconds(seconds: np.ndarray, column: str, source: str) -> np.ndarray:
    """Epoch *seconds*: a value past the year 5000 is almost surely milliseconds or
    microseconds, which would silently match nothing."""
    far = np.flatnonzero(np.abs(seconds) > 1e11)
    if len(far):
        row = int(far[0])
        raise PitError(
            f"{source}: label row {row + 1}: {column} {seconds[row]!r} is not epoch "
            "seconds (milliseconds? divide by 1000)"
        )
    return seconds


def _seconds_micros(seconds: np.ndarray) -> np.ndarray:
    if not np.isfinite(seconds).all():
        raise PitError("label times must be finite epoch seconds")
    # Round half away from zero, as Athena's and DuckDB's round() do.
    scaled = seconds * MICROS
    return (np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)).astype("int64")


def _refuse_nulls(series: pd.Series, column: str, source: str, what: str) -> None:
    nulls = np.flatnonzero(series.isna().to_numpy())
    if len(nulls):
        raise PitError(f"{source}: label row {int(nulls[0]) + 1}: {what} {column!r} is empty")


def _key_array(series: pd.Series, scalar: Scalar, column: str, what: str, source: str) -> pa.Array:
    """Label key values in the entity key's type. A missing key matches no record."""
    fast = _key_fast(series, scalar)
    if fast is not None:
        return fast
    values = series.tolist()
    out: list[object] = []
    for row, value in enumerate(values, start=1):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            out.append(None)
        elif scalar is Scalar.STRING:
            if isinstance(value, str):
                out.append(value)
            elif isinstance(value, int) and not isinstance(value, bool):
                out.append(str(value))
            else:
                raise PitError(
                    f"{source}: label row {row}: {column} {value!r} cannot be "
                    f"{what}, which is a String"
                )
        else:
            try:
                out.append(_as_int(value))
            except ValueError:
                raise PitError(
                    f"{source}: label row {row}: {column} {value!r} cannot be "
                    f"{what}, which is Integral"
                ) from None
            if not -(2**63) <= out[-1] < 2**63:  # type: ignore[operator]
                raise PitError(
                    f"{source}: label row {row}: {column} {value!r} cannot be {what}, which is "
                    "Integral: it does not fit SageMaker's 64-bit Integral"
                )
    return pa.array(out, type=pa.string() if scalar is Scalar.STRING else pa.int64())


def _key_fast(series: pd.Series, scalar: Scalar) -> pa.Array | None:
    """The common cases without a Python loop: text for String keys, integers for Integral."""
    try:
        if scalar is Scalar.STRING and not pd.api.types.is_numeric_dtype(series):
            return pa.array(series, type=pa.string(), from_pandas=True)
        if scalar is Scalar.INTEGRAL and pd.api.types.is_integer_dtype(series):
            return pa.array(series, type=pa.int64(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return None


def _as_int(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value.strip())
    raise ValueError(value)


__all__ = ["LabelSource", "Labels", "check_columns", "key_alias", "label_micros", "read_labels"]
