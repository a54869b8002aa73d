"""``build_dataset``: label rows in, training frame out -- the label columns as given, then the
feature set's columns in order.

Whichever engine found the stored values (local DuckDB or Athena), :func:`finish` does the
rest the same way the inference parser does (:mod:`fsgen.runtime.inference`, the same
``FeatureSetRuntime`` code): on-demand features are computed by the featuredefs functions
from request fields and stored values (missing when a stored input is missing), then the
missing-value policy fills, keeps or refuses each missing value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fsgen.bind import on_demand_def, typed_default
from fsgen.config import ProjectConfig
from fsgen.pit.labels import Labels, LabelSource, read_labels
from fsgen.pit.model import INTERNAL, PitError, PitPlan, arrow_type, plan_for, with_ttl_history
from fsgen.runtime.inference import Column, FeatureSetRuntime, RequestError
from fsgen.spec import ProjectSpec
from fsgen.ttl_history import TtlChange, TtlHistoryError, from_tags
from fsgen.types import DType, Scalar

Engine = Literal["local", "athena", "spark"]


def build_dataset(
    config: ProjectConfig,
    spec: ProjectSpec,
    feature_set: str,
    labels: LabelSource,
    knowledge_time: bool = False,
    *,
    engine: Engine = "local",
    store: Path | None = None,
    threads: int | None = None,
    backend: str | None = None,
) -> pd.DataFrame:
    """The point-in-time-correct training frame of ``feature_set`` for ``labels``.

    ``labels``: a CSV or Parquet path, or a DataFrame, holding the set's key columns and label
    time. ``knowledge_time``: only records already written at the label time count.
    ``engine="athena"`` runs the generated Athena SQL through boto3
    (see fsgen.pit.athena_runner); ``engine="spark"`` the same join on Spark SQL over the
    local store (fsgen.pit.spark). ``backend`` (default: the config's) only words the
    warnings: on ``aws`` an empty local store is not "nothing ingested".
    """
    plan = plan_for(spec, feature_set)
    if plan.aggregations and engine == "spark":
        names = ", ".join(i.column for i in plan.aggregated)
        raise PitError(
            f"feature set {feature_set!r} has aggregation features ({names}), which the spark "
            "engine does not compute; use --engine local or --engine athena"
        )
    if plan.aggregations and knowledge_time:
        raise PitError(
            f"feature set {feature_set!r} has aggregation features, which --knowledge-time "
            "does not cover (an event row's write time is not kept per window); build without it"
        )
    rows = read_labels(labels, plan)
    if engine == "athena":
        from fsgen.pit.athena_runner import athena_stored_values

        stored = athena_stored_values(config, spec, plan, rows, knowledge_time)
    elif engine == "spark":
        from fsgen.pit.spark import spark_stored_values

        root = store or config.store_path
        plan = with_ttl_history(plan, local_ttl_history(root, plan))
        stored = spark_stored_values(plan, rows, root, knowledge_time)
    else:
        from fsgen.pit.aggregate_dataset import local_aggregated
        from fsgen.pit.local import stored_values
        from fsgen.store.commit import settled

        root = store or config.store_path
        plan = with_ttl_history(plan, local_ttl_history(root, plan))
        with settled(root, "dataset"):  # a consistent snapshot; a killed writer's chunk finished
            stored = (
                stored_values(plan, rows, root, knowledge_time, threads=threads)
                if plan.joins
                else _row_numbers(len(rows.frame))
            )
            for column, values in local_aggregated(plan, rows, root).items():
                stored = stored.append_column(column, values)
    frame = finish(plan, rows, stored)
    local = None if engine == "athena" else (store or config.store_path)
    frame.attrs["warnings"] = keyless_warnings(plan, rows) + empty_group_warnings(
        plan, stored, local, knowledge_time, backend or config.backend
    )
    return frame


def keyless_warnings(plan: PitPlan, labels: Labels) -> list[dict[str, str]]:
    """One warning per label key column with empty cells: such a row matches no record of the
    group (its values follow the missing-value policy), which a set over several entities may
    mean, but a labels export with a lost column usually does not; so it is said, with rows."""
    out: list[dict[str, str]] = []
    for join in plan.all_joins:
        for column in join.label_keys:
            empty = np.flatnonzero(labels.keys[column].is_null().to_numpy(zero_copy_only=False))
            if not len(empty) or any(w["columns"] == column for w in out):
                continue
            rows = ", ".join(str(int(r) + 1) for r in empty[:5])
            rows = f"label row{'s' if len(empty) > 1 else ''} {rows}"
            more = f" and {len(empty) - 5} more" if len(empty) > 5 else ""
            reason = f"{len(empty)} of {len(labels.frame)} label rows have no {column}"
            out.append(
                {
                    "group": join.group.name,
                    "columns": column,
                    "reason": reason,
                    "hint": f"fill in {column} where a row is meant to have its values",
                    "message": (
                        f"{labels.source}: {reason} ({rows}{more}): they match no "
                        f"record of feature group {join.group.name!r}, so its values there "
                        "follow the missing-value policy"
                    ),
                }
            )
    return out


def local_ttl_history(store: Path, plan: PitPlan) -> dict[str, tuple[TtlChange, ...]]:
    """Each group's TTL history as the local registry holds it (the ``fsgen:ttl-history``
    tag ``fsgen apply`` keeps; fsgen.ttl_history), so every record is judged by the TTL in
    force when it was written -- the ExpiresAt its online record was stamped with."""
    from fsgen.backends.registry import Registry

    if not (store / "registry.json").is_file():
        return {}
    groups = Registry(store).snapshot()["groups"]
    out: dict[str, tuple[TtlChange, ...]] = {}
    for join in plan.joins:
        entry = groups.get(join.group.name)
        if entry is None:
            continue
        try:
            out[join.group.name] = from_tags(entry.get("tags", []))
        except TtlHistoryError as exc:
            raise PitError(f"feature group {join.group.name!r}: {exc}") from None
    return out


def _row_numbers(n: int) -> pa.Table:
    """The engines' result when the set has no row-feature group: just the row numbers."""
    return pa.table({f"{INTERNAL}row": pa.array(np.arange(n, dtype="int64"))})


def empty_group_warnings(
    plan: PitPlan,
    stored: pa.Table,
    store: Path | None,
    knowledge_time: bool,
    backend: str = "local",
) -> list[dict[str, str]]:
    """One warning per feature group that contributed no stored value to any label row: its
    columns are all missing (then filled by the missing-value policy), which is almost never
    what a training set should be. ``store`` (the local engine's store) lets the warning say
    why: no offline data (not ingested yet), or history only in the archive (the group was
    replaced or destroyed); ``backend``: on the aws backend ingestion never writes that store."""
    if stored.num_rows == 0:
        return []
    by_group: dict[str, list[str]] = {}
    for item in plan.values:
        by_group.setdefault(item.group, []).append(item.column)
    aggregation_groups = {join.group.name for join in plan.aggregations}
    out: list[dict[str, str]] = []
    for group, columns in by_group.items():
        if group in aggregation_groups:
            # an empty window is a value (count 0), so a group without events is told by its
            # store: no event history at all (not ingested, or destroyed and archived)
            if store is None or _has_offline_data(store, group):
                continue
            reason, hint = _why_empty(group, store, knowledge_time, backend)
            fills = "empty-window values (count 0, sum 0, mean missing, ...)"
            what = "no events"
        else:
            if any(stored.column(c).null_count < stored.num_rows for c in columns):
                continue
            reason, hint = _why_empty(group, store, knowledge_time, backend)
            fills, what = "missing-value fills", "no stored value"
        out.append(
            {
                "group": group,
                "columns": ", ".join(columns),
                "reason": reason,
                "hint": hint,
                "message": (
                    f"feature group {group!r} has {what} for any of the "
                    f"{stored.num_rows} label rows ({reason}); its columns "
                    f"({', '.join(columns)}) are all {fills}. {hint}"
                ),
            }
        )
    return out


def _has_offline_data(store: Path, group: str) -> bool:
    offline = store / "offline" / group
    return offline.is_dir() and any(offline.rglob("*.parquet"))


def _why_empty(
    group: str, store: Path | None, knowledge_time: bool, backend: str = "local"
) -> tuple[str, str]:
    if store is not None:
        has_data = _has_offline_data(store, group)
        if not has_data and backend == "aws":
            return (
                f"--engine local and spark read the local store {store}, which the aws backend "
                "never writes: this project's records are in SageMaker's offline store",
                "build the training set from it with --engine athena",
            )
        if not has_data and (store / "archive" / group).is_dir():
            return (
                "it was replaced or destroyed: its history is in "
                f"{store / 'archive' / group}, the new group has no records",
                f"re-ingest it (`fsgen ingest {group} SOURCE`) before building the dataset",
            )
        if not has_data:
            return (
                "nothing has been ingested into it yet",
                f"ingest it first (`fsgen ingest {group} SOURCE`)",
            )
    if knowledge_time:
        return (
            "no record at or before the label times was written by then (--knowledge-time)",
            "check the label times against when the group was ingested",
        )
    return (
        "no record at or before the label times within the TTL",
        "check the label times, the keys and the group's TTL",
    )


def finish(plan: PitPlan, labels: Labels, stored: pa.Table) -> pd.DataFrame:
    """Label frame + on-demand features + missing-value policy, columns in the set's order."""
    if stored.num_rows != len(labels.frame):
        raise PitError(
            f"the engine returned {stored.num_rows} rows for {len(labels.frame)} label rows"
        )
    values: dict[str, pa.Array | list[object]] = {
        i.column: stored.column(i.column).combine_chunks() for i in plan.values
    }
    dtypes = {i.column: i.dtype for i in plan.values}
    for od in plan.on_demand:
        values[od.name] = _on_demand(plan, od.name, labels, values)
        dtypes[od.name] = od.dtype
    fs = plan.feature_set
    out: dict[str, object] = {}
    for item in fs.items:
        dtype = dtypes[item.column]
        array = _as_arrow(values[item.column], dtype)
        array = _apply_policy(plan, item.column, array, dtype, labels)
        out[item.column] = _to_pandas(array, dtype)
    features = pd.DataFrame(out, index=labels.frame.index)
    return pd.concat([labels.frame, features], axis=1)


OUTPUT_SUFFIXES = (".parquet", ".pq", ".csv")


def check_output(path: Path) -> None:
    """Refuse an output :func:`write_frame` cannot write, before any work is done: a name
    that is no Parquet or CSV file, a directory, or a path under a file."""
    from fsgen.runtime.ingest import check_output_path
    from fsgen.runtime.sources import SourceError

    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise PitError(f"{path}: output must be .parquet or .csv")
    try:
        check_output_path(path, "output")
    except SourceError as exc:
        raise PitError(str(exc).removeprefix("output ")) from None


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """Parquet or CSV by the name's suffix; written to a temp name, then moved into place."""
    import os

    check_output(path)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    if suffix == ".csv":
        csv_cells(frame).to_csv(temp, index=False)
    else:
        frame.to_parquet(temp, index=False)
    os.replace(temp, path)


def csv_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with collection values (List, Set, Vector) as JSON arrays, the encoding
    ingestion reads from a CSV cell, so a dataset written to CSV can be read back (pandas
    would write Python's repr: ``['a', 'b']``)."""
    import json

    import numpy as np

    def cell(value: object) -> object:
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if isinstance(value, list | tuple):
            return json.dumps(list(value), ensure_ascii=False, default=_json_scalar)
        return value

    out = frame
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object and column.map(_is_collection).any():
            out = out.copy() if out is frame else out
            out[name] = column.map(cell)
    return out


def _is_collection(value: object) -> bool:
    import numpy as np

    return isinstance(value, list | tuple | np.ndarray)


def _json_scalar(value: object) -> object:
    item = getattr(value, "item", None)  # a NumPy scalar
    if callable(item):
        return item()
    raise TypeError(f"not JSON: {value!r}")


# ---------------------------------------------------------------------------- on-demand


def _on_demand(
    plan: PitPlan, name: str, labels: Labels, values: dict[str, pa.Array | list[object]]
) -> list[object]:
    """Call the featuredefs function row by row through the inference runtime's own code."""
    od = next(o for o in plan.on_demand if o.name == name)
    runtime = FeatureSetRuntime(
        name=plan.feature_set.name,
        columns=(Column(name=od.name, kind="on_demand", group=None, feature=od.name),),
        groups=(),
        on_demand=(on_demand_def(od),),
        missing="null",
    )
    columns = {i.column: i for i in plan.stored}
    inputs: list[tuple[str, str, list[object]]] = []
    for _, ref in od.stored_inputs:
        column = next(
            c for c, i in columns.items() if i.group == ref.group and i.feature == ref.feature
        )
        array = values[column]
        inputs.append(
            (
                ref.group,
                ref.feature,
                array.to_pylist() if isinstance(array, pa.Array) else list(array),
            )
        )
    requests = {
        r.name: [_plain(v) for v in labels.frame[r.name].tolist()] for r in od.request_fields
    }
    result: list[object] = []
    for row in range(len(labels.frame)):
        stored: dict[str, dict[str, object]] = {}
        for group, feature, column_values in inputs:
            stored.setdefault(group, {})[feature] = column_values[row]
        request = {field: column_values[row] for field, column_values in requests.items()}
        try:
            result.append(runtime.vector(stored, request)[0])  # type: ignore[arg-type]
        except RequestError as exc:
            raise PitError(f"{labels.source}: label row {row + 1}: {exc}") from None
        except Exception as exc:  # the user's function: reported with its label row
            raise PitError(
                f"{labels.source}: label row {row + 1}: on-demand feature "
                f"{od.name!r} ({od.location}) raised {type(exc).__name__}: "
                f"{exc}"
            ) from exc
    return result


def _plain(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


# ---------------------------------------------------------------------------- missing values


def _as_arrow(values: pa.Array | Sequence[object], dtype: DType) -> pa.Array:
    if isinstance(values, pa.Array):
        return values if values.type == arrow_type(dtype) else values.cast(arrow_type(dtype))
    return pa.array(list(values), type=arrow_type(dtype))


def _apply_policy(
    plan: PitPlan, column: str, array: pa.Array, dtype: DType, labels: Labels
) -> pa.Array:
    fs = plan.feature_set
    if array.null_count == 0 or fs.missing == "null":
        return array
    if fs.missing == "default":
        default = typed_default(dtype, fs.defaults.get(column))
        if default is None:
            return array
        return pc.fill_null(array, pa.scalar(default, type=array.type))
    row = int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
    raise PitError(
        f"{labels.source}: label row {row + 1}: feature set {fs.name!r} has "
        f"missing='error' and {column!r} has no value (no record at or before the "
        "label time within the TTL, a delete, or an empty value)"
    )


def _to_pandas(array: pa.Array, dtype: DType) -> object:
    if dtype.is_collection:
        return pd.Series(array.to_pylist(), dtype=object)
    if dtype.scalar is Scalar.INTEGRAL:
        if array.null_count:
            data = pc.fill_null(array, pa.scalar(0, type=array.type)).to_numpy()
            mask = array.is_null().to_numpy(zero_copy_only=False)
            return pd.arrays.IntegerArray(data.astype("int64"), mask)
        return array.to_numpy(zero_copy_only=False).astype("int64", copy=False)
    if dtype.scalar is Scalar.FRACTIONAL:
        return array.to_numpy(zero_copy_only=False).astype("float64", copy=False)
    return array.to_pandas()


__all__ = ["INTERNAL", "Engine", "build_dataset", "finish", "typed_default", "write_frame"]
