"""The Spark SQL point-in-time engine: the local engine's semantics on Spark, over the same
offline Parquet files (``<store>/offline/<group>/data/year=/month=/day=/hour=/*.parquet``).

Spark 3.5 has no ASOF join, and a labels x history inequality join grows with the history
per entity. Instead each group is one sort: the group's records and the label rows are put
in one relation, partitioned by the real key columns (never a concatenation) and ordered by
``(instant, kind)`` -- a record's event time (knowledge-time mode: ``greatest(event, write)``,
the moment it became both true and known), a label's time T; records (kind 0) before labels
(kind 1) at the same instant, so a record at exactly T counts. For each label row a running
``max_by(record, order)`` over the rows before it picks the greatest record by
``order = (event µs, api_invocation µs, write µs, is_deleted, file, row in file)``: the same
total order as the local engine's ASOF key, down to the file (its path, which sorts as the
local engine's sorted file list) and the row's position in its file (``_metadata.row_index``),
so even rows that agree on every timestamp give the same answer. A NULL api_invocation or
write time orders above every value, as in DuckDB's struct comparison.

TTL and deletes apply to the chosen record, exactly as locally: a tombstone, or a record
older than the TTL (``T - event > ttl``; exactly TTL old still counts), yields missing
values, so a tombstone at D hides older records for label times >= D only. The TTL is the
one in force at the record's api_invocation_time (the group's TTL history, carried in the
chosen record as ``a``).

Instants are integer epoch microseconds throughout. Label times arrive already converted by
:mod:`fsgen.pit.labels` (the local engine's own code), so sub-millisecond label times are
exact; String event times go through ``unix_micros(CAST(.. AS TIMESTAMP))`` with the session
time zone UTC for the query, Fractional ones ``round(seconds * 1e6)`` -- never
``unix_timestamp``, which truncates to whole seconds. Labels travel to Spark and results
back as Parquet files in a temporary directory, so types (nullable integers, lists, -0.0,
NaN) survive unchanged, and the rows are put back in label order by their row number.

Needs the ``spark`` extra (``pip install 'fsgen[spark]'``: pyspark 3.5) and Java 17; neither
is imported or started unless this engine runs. An active SparkSession is used as it is;
otherwise one is started with ``FSGEN_SPARK_MASTER`` (default ``local[*]``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fsgen.pit.labels import Labels, key_alias
from fsgen.pit.local import group_files, in_label_order
from fsgen.pit.model import INTERNAL, GroupJoin, PitError, PitPlan, arrow_type
from fsgen.types import Scalar

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: Orders a NULL api_invocation/write time above every value (DuckDB's struct order).
LAST = "9223372036854775807L"
ROW = f"{INTERNAL}row"
T = f"{INTERNAL}t"
GROUP = f"{INTERNAL}group"


def b(name: str) -> str:
    """A Spark SQL identifier, backquoted (names come from a validated spec)."""
    return "`" + name.replace("`", "``") + "`"


def k(j: int) -> str:
    return f"{INTERNAL}k{j}"


def v(n: int) -> str:
    return f"{INTERNAL}v{n}"


# ---------------------------------------------------------------------------- the session


def find_java() -> None:
    """Make sure Spark's launcher finds a Java (see :func:`fsgen.runtime.sparktasks.find_java`:
    ``JAVA_HOME``, ``java`` on PATH, or a JDK under /usr/lib/jvm, 17 first)."""
    from fsgen.runtime.sparktasks import SparkUnavailable
    from fsgen.runtime.sparktasks import find_java as find

    try:
        find()
    except SparkUnavailable as exc:
        raise PitError(str(exc)) from None


def spark_session() -> SparkSession:
    """The active SparkSession, or a new local one (UI off, a few shuffle partitions)."""
    from fsgen.runtime.sparktasks import SparkUnavailable, session

    cores = os.cpu_count() or 2
    try:
        return session(
            app="fsgen-dataset",
            default_master="local[*]",
            config={"spark.sql.shuffle.partitions": str(2 * cores)},
            log_level="ERROR",
        )
    except SparkUnavailable as exc:
        raise PitError(str(exc)) from None


# ---------------------------------------------------------------------------- the query


def read_schema(join: GroupJoin) -> str:
    """The columns the join reads, as a DDL schema: a file lacking one (a feature added
    later) reads it as NULL, like the local engine's ``union_by_name``."""
    group = join.group
    columns = {key.name: key.dtype.glue_type for key in join.keys}
    columns[group.event_time.name] = group.event_time.dtype.glue_type
    for item in join.inputs:
        columns[item.feature] = item.dtype.glue_type
    columns |= {
        "write_time": "timestamp",
        "api_invocation_time": "timestamp",
        "is_deleted": "boolean",
    }
    return ", ".join(f"{b(name)} {typ}" for name, typ in columns.items())


def event_micros(join: GroupJoin) -> str:
    column = b(join.group.event_time.name)
    if join.group.event_time.dtype.scalar is Scalar.STRING:
        return f"unix_micros(CAST({column} AS TIMESTAMP))"
    return f"CAST(round(CAST({column} AS DOUBLE) * 1000000D) AS BIGINT)"


def history(spark: SparkSession, join: GroupJoin, files: list[str]) -> DataFrame:
    """One row per offline record: keys, event/write/api µs, delete flag, the file's path
    (``_metadata.file_path`` is a percent-encoded URI: decoded, it is the listed path, so it
    sorts as the local engine's file index) and the row's position in its file, and the
    needed values."""
    keys = [
        f"CAST({b(key.name)} AS {key.dtype.glue_type}) AS {k(j)}" for j, key in enumerate(join.keys)
    ]
    values = [
        f"CAST({b(item.feature)} AS {item.dtype.glue_type}) AS {v(n)}"
        for n, item in enumerate(join.inputs)
    ]
    # url_decode reads '+' as a space; a '+' in a URI path is a plus
    uri = "regexp_replace(_metadata.file_path, '^file:(//)?', '')"
    path = f"url_decode(replace({uri}, '+', '%2B'))"
    present = " AND ".join(
        ["__e IS NOT NULL", *(f"{k(j)} IS NOT NULL" for j in range(len(join.keys)))]
    )
    return (
        spark.read.schema(read_schema(join))
        .parquet(*files)
        .selectExpr(
            *keys,
            f"{event_micros(join)} AS __e",
            "unix_micros(write_time) AS __w",
            "unix_micros(api_invocation_time) AS __a",
            "coalesce(is_deleted, false) AS __d",
            f"{path} AS __f",
            "_metadata.row_index AS __r",
            *values,
        )
        .where(present)
    )


def group_values(
    join: GroupJoin, records: DataFrame, labels: DataFrame, knowledge_time: bool
) -> DataFrame:
    """Row number and the group's stored values (NULL when missing) for every label row whose
    keys are all present (a missing key matches no record)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    n_keys = len(join.keys)
    instant = "greatest(__e, __w)" if knowledge_time else "__e"
    payload = ", ".join(
        [
            "__e AS e",
            "__a AS a",
            "__d AS d",
            *(f"{v(n)} AS {v(n)}" for n in range(len(join.inputs))),
        ]
    )
    left = records.selectExpr(
        *(k(j) for j in range(n_keys)),
        f"{instant} AS __s",
        "0 AS __kind",
        f"struct(__e, coalesce(__a, {LAST}), coalesce(__w, {LAST}), __d, __f, __r) AS __o",
        f"struct({payload}) AS __p",
    )
    right = labels.selectExpr(
        *(f"{b(key_alias(join.index, j))} AS {k(j)}" for j in range(n_keys)),
        f"{T} AS __s",
        "1 AS __kind",
        ROW,
        T,
    ).where(" AND ".join(f"{k(j)} IS NOT NULL" for j in range(n_keys)))
    window = (
        Window.partitionBy(*(k(j) for j in range(n_keys)))
        .orderBy("__s", "__kind")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    best = (
        left.unionByName(right, allowMissingColumns=True)
        .withColumn("__b", F.max_by("__p", "__o").over(window))
        .where("__kind = 1")
    )
    gone = "__b IS NULL OR __b.d"
    expired = join.expired_sql(T, "__b.e", "__b.a")  # the TTL in force at the record's write
    if expired is not None:
        gone += f" OR {expired}"
    return best.selectExpr(
        f"{join.index} AS {GROUP}",
        ROW,
        *(
            f"CASE WHEN {gone} THEN NULL ELSE __b.{v(n)} END AS {b(item.column)}"
            for n, item in enumerate(join.inputs)
        ),
    )


# ---------------------------------------------------------------------------- the engine


def spark_stored_values(
    plan: PitPlan, labels: Labels, store: Path, knowledge_time: bool = False
) -> pa.Table:
    """Row number plus every stored value of every label row (NULL when missing), in label
    order: what :func:`fsgen.pit.local.stored_values` returns, computed by Spark."""
    n = len(labels.frame)
    listed = {join.index: group_files(store.absolute(), join.group) for join in plan.joins}
    found: dict[int, pa.Table] = {}
    queried = [j for j in plan.joins if listed[j.index]]
    if n and queried:
        with tempfile.TemporaryDirectory(prefix="fsgen-spark-") as scratch:
            found = _run(plan, labels, queried, listed, knowledge_time, Path(scratch))
    columns: dict[str, pa.Array] = {ROW: pa.array(np.arange(n, dtype="int64"))}
    for join in plan.joins:
        placed = _place(found.get(join.index), n)
        for item in join.inputs:
            typ = arrow_type(item.dtype)
            if placed is None:
                columns[item.column] = pa.nulls(n, type=typ)
            else:
                columns[item.column] = placed.column(item.column).combine_chunks().cast(typ)
    return in_label_order(pa.table(columns))


def _run(
    plan: PitPlan,
    labels: Labels,
    joins: list[GroupJoin],
    listed: dict[int, list[str]],
    knowledge_time: bool,
    scratch: Path,
) -> dict[int, pa.Table]:
    """One Spark job for every group with files: the union of their per-group values,
    written once and split by group here."""
    spark = spark_session()
    zone = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    try:
        pq.write_table(labels.join_table(plan), scratch / "labels.parquet")
        label_frame = spark.read.parquet(str(scratch / "labels.parquet"))
        parts = [
            group_values(j, history(spark, j, listed[j.index]), label_frame, knowledge_time)
            for j in joins
        ]
        result = parts[0]
        for part in parts[1:]:
            result = result.unionByName(part, allowMissingColumns=True)
        result.write.parquet(str(scratch / "values"))
    except Exception as exc:
        if isinstance(exc, PitError):
            raise
        raise PitError(f"the spark engine failed: {_first_line(exc)}") from exc
    finally:
        if zone is None:
            spark.conf.unset("spark.sql.session.timeZone")
        else:
            spark.conf.set("spark.sql.session.timeZone", zone)
    table = pq.read_table(scratch / "values")
    groups = table.column(GROUP).to_numpy()
    return {j.index: table.filter(pa.array(groups == j.index)) for j in joins}


def _place(table: pa.Table | None, n: int) -> pa.Table | None:
    """The group's rows at their label positions (NULL for label rows it did not return:
    those with a missing key); each row at most once."""
    if table is None:
        return None
    rows = table.column(ROW).to_numpy()
    if len(rows) and (rows.min() < 0 or rows.max() >= n or len(np.unique(rows)) != len(rows)):
        raise PitError("the spark engine returned a label row more than once")
    at = np.full(n, -1, dtype="int64")
    at[rows] = np.arange(len(rows), dtype="int64")
    return table.take(pa.array(at, mask=at < 0))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


__all__ = ["group_values", "history", "read_schema", "spark_session", "spark_stored_values"]
