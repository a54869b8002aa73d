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
    """Every bad cell of the label time and key columns is found before any is reported, so
    one run names them all, in file order (see :func:`refusal`)."""
    frame, name = _read(source, plan)
    check_columns(list(frame.columns), plan, name)
    problems: list[Problem] = []
    micros = time_micros(frame[plan.label_time], plan.label_time, problems)
    keys: dict[str, pa.Array] = {}
    for join in plan.all_joins:
        for column, key in zip(join.label_keys, join.keys, strict=True):
            if column not in keys:
                keys[column] = _key_array(
                    frame[column],
                    key.dtype.scalar,
                    column,
                    f"{join.group.name}'s key {key.name!r}",
                    problems,
                )
    if problems:
        raise refusal(problems, name, len(frame), list(frame.columns))
    return Labels(frame=frame.reset_index(drop=True), source=name, micros=micros, keys=keys)


@dataclass(frozen=True)
class Problem:
    """One bad label cell: its row (0-based position; -1 for the whole column), its column and
    what is wrong with it, worded after ``label row N:``."""

    row: int
    column: str
    text: str


SHOWN = 5  # bad cells named in a refusal; the rest are counted


def refusal(problems: list[Problem], source: str, rows: int, columns: list[str]) -> PitError:
    """One error (one line) for every bad label cell: how many cells and rows in all, then the
    first :data:`SHOWN` in file order (row, then column) with their row numbers (1 = the first
    label row; a CSV header is no row)."""
    order = {str(c): i for i, c in enumerate(columns)}
    ranked = sorted(problems, key=lambda p: (p.row, order.get(p.column, len(order))))
    lines = [_where(p) for p in ranked]
    if len(lines) == 1:
        return PitError(f"{source}: {lines[0]}")
    bad_rows = len({p.row for p in ranked if p.row >= 0})
    what = f"in {bad_rows} of {rows} label rows" if bad_rows else "columns"
    shown = "; ".join(lines[:SHOWN])
    more = f"; and {len(lines) - SHOWN} more" if len(lines) > SHOWN else ""
    return PitError(f"{source}: {len(ranked)} bad label values {what}: {shown}{more}")


def _where(problem: Problem) -> str:
    return problem.text if problem.row < 0 else f"label row {problem.row + 1}: {problem.text}"


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
    """Label times as epoch microseconds, or a :class:`PitError` naming every bad one."""
    problems: list[Problem] = []
    micros = time_micros(series, column, problems)
    if problems:
        raise refusal(problems, source, len(series), [column])
    return micros


def time_micros(series: pd.Series, column: str, problems: list[Problem]) -> np.ndarray:
    """Label times as epoch microseconds: ISO-8601 text (a naive time is UTC; ``t``/``z`` as
    ``T``/``Z``), epoch seconds (int or float), or datetimes (each with its own offset; naive =
    UTC). Each missing or unreadable time is added to ``problems`` with its row (its slot in
    the result is then 0, never used: the caller refuses the labels)."""
    out = np.zeros(len(series), dtype="int64")
    nulls = series.isna().to_numpy()
    for row in np.flatnonzero(nulls):
        problems.append(Problem(int(row), column, f"label time {column!r} is empty"))
    where = np.flatnonzero(~nulls)
    present = series.iloc[where] if len(where) < len(series) else series
    if not len(where):
        return out
    if pd.api.types.is_datetime64_any_dtype(present):
        values = present.dt.tz_localize("UTC") if present.dt.tz is None else present
        out[where] = _datetime_micros(values)
        return out
    if pd.api.types.is_bool_dtype(present):
        problems.append(Problem(-1, column, f"label time column {column!r} holds booleans"))
        return out
    if pd.api.types.is_numeric_dtype(present):
        out[where] = _seconds(present.to_numpy(dtype="float64"), where, column, problems)
        return out
    fast = _iso_micros_fast(present)
    if fast is not None:
        out[where] = fast
        return out
    values = present.tolist()
    if all(_is_seconds(v) for v in values):
        out[where] = _seconds(np.asarray(values, dtype="float64"), where, column, problems)
        return out
    text = pd.Series([_iso_text(v) for v in values], dtype=object)
    fast = _iso_micros_fast(text)
    if fast is not None:
        out[where] = fast
        return out
    parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    bad = parsed.isna().to_numpy()
    good = np.flatnonzero(~bad)
    first = f" (label row {int(where[good[0]]) + 1} holds {values[good[0]]!r})" if len(good) else ""
    for i in np.flatnonzero(bad):
        value = values[i]
        if _is_seconds(value) or (isinstance(value, str) and _is_number(value) and len(good)):
            why = (
                f"{column} {value!r} is epoch seconds in a column of ISO-8601 timestamps"
                f"{first}; give one column's label times in one form"
            )
        elif isinstance(value, str | datetime):
            why = (
                f"{column} {value!r} is not an ISO-8601 timestamp like 2024-01-31T12:00:00Z "
                "or epoch seconds"
            )
        else:
            why = f"{column} {value!r} is not an ISO-8601 timestamp or epoch seconds"
        problems.append(Problem(int(where[i]), column, why))
    if len(good):
        out[where[good]] = _datetime_micros(parsed.iloc[good])
    return out


def _is_seconds(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def _iso_text(value: object) -> str:
    """ISO-8601 text in the form both parsers read: letters upper-cased (ingestion accepts
    ``t`` and ``z``), a datetime written with its own offset (naive = UTC), so a column of
    datetimes with different offsets is one column of instants."""
    if isinstance(value, str):
        return value.upper()
    if isinstance(value, datetime):
        return value.isoformat()
    return ""  # no time: not parsed, reported by its kind


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


def _seconds(
    seconds: np.ndarray, rows: np.ndarray, column: str, problems: list[Problem]
) -> np.ndarray:
    """Epoch *seconds* as µs. A value past the year 5000 is almost surely milliseconds or
    microseconds, which would silently match nothing; an infinite one is no time."""
    bad = ~np.isfinite(seconds) | (np.abs(seconds) > 1e11)
    for i in np.flatnonzero(bad):
        value = float(seconds[i])
        hint = " (milliseconds? divide by 1000)" if np.isfinite(value) else ""
        value = int(value) if value.is_integer() else value  # as a CSV gave it
        problems.append(
            Problem(int(rows[i]), column, f"{column} {value!r} is not epoch seconds{hint}")
        )
    # Round half away from zero, as Athena's and DuckDB's round() do.
    scaled = np.where(bad, 0.0, seconds) * MICROS
    return (np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)).astype("int64")


def _key_array(
    series: pd.Series, scalar: Scalar, column: str, what: str, problems: list[Problem]
) -> pa.Array:
    """Label key values in the entity key's type. A missing key matches no record; a value
    that cannot be the key is added to ``problems`` (its slot is then null)."""
    fast = _key_fast(series, scalar)
    if fast is not None:
        return fast
    out: list[object] = []
    for row, value in enumerate(series.tolist()):
        key, why = _key_value(value, scalar)
        out.append(key)
        if why:
            problems.append(Problem(row, column, f"{column} {value!r} cannot be {what}, {why}"))
    return pa.array(out, type=pa.string() if scalar is Scalar.STRING else pa.int64())


def _key_value(value: object, scalar: Scalar) -> tuple[object, str]:
    """The key in its type and "" -- or None and why the value cannot be one."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None, ""
    if scalar is Scalar.STRING:
        if isinstance(value, str):
            return value, ""
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value), ""
        return None, "which is a String"
    try:
        number = _as_int(value)
    except ValueError:
        return None, "which is Integral"
    if not -(2**63) <= number < 2**63:
        return None, "which is Integral: it does not fit SageMaker's 64-bit Integral"
    return number, ""


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
