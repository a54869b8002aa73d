"""The offline store: every record, append-only Parquet, laid out like SageMaker's S3 offline
store and read with DuckDB.

Layout (contracts.md 1)::

    <store>/offline/<group>/data/year=YYYY/month=MM/day=DD/hour=HH/<stamp>_<run>_<chunk>.parquet
    <store>/offline/<group>/_staging/<run>_<chunk>_<n>.parquet   written, not yet published

Columns: the group's stored columns (Integral int64, Fractional double, String string,
collections list<...>; the event time keeps its declared type), then ``write_time`` and
``api_invocation_time`` (timestamp[us, UTC]) and ``is_deleted`` (bool). Partitions are by the
record's event time in UTC.

Every file is written under ``_staging`` first and moved into ``data/`` with ``os.replace``,
so a reader globbing ``data/*/*/*/*/*.parquet`` sees whole files or nothing.

Visible records: a re-run ingestion appends the same (identifier, event time) again. Readers
keep, per (identifier, event time), the row with the latest ``api_invocation_time`` (then
``write_time``): :func:`read_offline` does, and so does any point-in-time join that breaks ties
that way (DESIGN semantics 5). Compaction merges a partition's files into one and drops exactly
the rows that rule hides, so no query result changes.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fsgen.runtime.pipeline import GroupRuntime

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

    from fsgen.runtime.aggregate import Value
    from fsgen.runtime.aggwrite import AggregationRuntime

_ARROW = {"Integral": pa.int64(), "Fractional": pa.float64(), "String": pa.string()}
TS = pa.timestamp("us", tz="UTC")
GLOB = "data/*/*/*/*/*.parquet"
MIN_SECONDS = -62135596800.0  # 0001-01-01T00:00:00Z
MAX_SECONDS = 253402300799.0  # 9999-12-31T23:59:59Z


def arrow_schema(rt: GroupRuntime) -> pa.Schema:
    fields = []
    for name, kind, collection, _ in rt.columns:
        typ = _ARROW[kind]
        fields.append(pa.field(name, pa.list_(typ) if collection else typ))
    fields += [
        pa.field("write_time", TS),
        pa.field("api_invocation_time", TS),
        pa.field("is_deleted", pa.bool_()),
    ]
    return pa.schema(fields)


def records_table(rt: GroupRuntime, columns: dict[str, list[object]]) -> pa.Table:
    """Processed records (column lists) as an Arrow table of the stored columns."""
    schema = arrow_schema(rt)
    fields = list(schema)[: len(rt.columns)]
    return pa.Table.from_arrays(
        [_arrow(columns[f.name], f.type) for f in fields], schema=pa.schema(fields)
    )


def _arrow(values: list[object], typ: pa.DataType) -> pa.Array | pa.ChunkedArray:
    """``values`` as Arrow; a column passed through from the reader (a record identifier,
    an event time: :class:`fsgen.runtime.bulk.PlainColumn`) is its Arrow column itself."""
    source = getattr(values, "source", None)
    if isinstance(source, pa.ChunkedArray | pa.Array) and source.type == typ:
        if len(source) == len(values):
            return source
    return pa.array(values, type=typ)


def with_sagemaker_columns(
    table: pa.Table, api_us: np.ndarray, write_us: int, deleted: bool = False
) -> pa.Table:
    """Append SageMaker's ``write_time``, ``api_invocation_time`` and ``is_deleted``."""
    n = table.num_rows
    table = table.append_column(
        pa.field("write_time", TS), pa.array(np.full(n, write_us, dtype="int64")).cast(TS)
    )
    table = table.append_column(
        pa.field("api_invocation_time", TS), pa.array(api_us.astype("int64")).cast(TS)
    )
    return table.append_column(
        pa.field("is_deleted", pa.bool_()), pa.array(np.full(n, deleted, dtype=bool))
    )


def partition_dir(seconds: float) -> str:
    t = datetime.fromtimestamp(int(seconds // 3600) * 3600, tz=UTC)
    return f"data/year={t.year:04d}/month={t.month:02d}/day={t.day:02d}/hour={t.hour:02d}"


def split_by_hour(
    table: pa.Table, seconds: Sequence[float] | np.ndarray
) -> list[tuple[str, pa.Table]]:
    """(partition dir, rows of that event-time hour) in ascending hour order; the order of
    rows within a partition is kept."""
    return [(partition_dir(h * 3600.0), part) for h, part, _ in hour_parts(table, seconds)]


HourPart = tuple[int, pa.Table, np.ndarray]
"""(hour since the epoch, the rows of that event-time hour, their indexes in the table)"""


def hour_parts(table: pa.Table, seconds: Sequence[float] | np.ndarray) -> list[HourPart]:
    """The rows of each event-time hour, in ascending hour order, with their indexes in
    ``table`` (ascending: the order of rows within an hour is kept). One stable sort of the
    hours and one ``take``, then a zero-copy slice per hour."""
    hours = np.floor(np.asarray(seconds, dtype="float64") / 3600.0).astype("int64")
    if len(hours) == 0:
        return []
    if (hours == hours[0]).all():
        return [(int(hours[0]), table, np.arange(len(hours), dtype="int64"))]
    order = np.argsort(hours, kind="stable")
    ordered = hours[order]
    cuts = np.flatnonzero(np.diff(ordered)) + 1
    taken = table.take(pa.array(order))
    return [
        (int(ordered[start]), taken.slice(int(start), int(stop - start)), order[start:stop])
        for start, stop in zip(np.r_[0, cuts], np.r_[cuts, len(ordered)], strict=True)
    ]


def merge_hour_parts(blocks: Sequence[tuple[list[HourPart], int]]) -> list[HourPart]:
    """The hour parts of blocks concatenated in order (each block's parts with the offset
    of its first row): per hour the blocks' rows in block order, which is what
    :func:`hour_parts` of the concatenated table gives."""
    by_hour: dict[int, list[tuple[pa.Table, np.ndarray]]] = {}
    for parts, offset in blocks:
        for hour, part, index in parts:
            by_hour.setdefault(hour, []).append((part, index + offset))
    merged: list[HourPart] = []
    for hour in sorted(by_hour):
        pieces = by_hour[hour]
        table = pieces[0][0] if len(pieces) == 1 else pa.concat_tables([t for t, _ in pieces])
        merged.append((hour, table, np.concatenate([i for _, i in pieces])))
    return merged


def sagemaker_parts(
    parts: Sequence[HourPart], api_us: np.ndarray, write_us: int, deleted: bool = False
) -> list[tuple[str, pa.Table]]:
    """(partition dir, rows with SageMaker's columns) of each hour part: ``api_us`` is per
    row of the table the parts index."""
    return [
        (
            partition_dir(hour * 3600.0),
            with_sagemaker_columns(part, api_us[index], write_us, deleted),
        )
        for hour, part, index in parts
    ]


def stamp(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1e6, tz=UTC).strftime("%Y%m%dT%H%M%S%fZ")


def write_staged(
    group_dir: Path, run_id: str, chunk: int, parts: list[tuple[str, pa.Table]], write_us: int
) -> list[tuple[Path, Path]]:
    """Write each partition's rows to ``_staging`` and return (staged, final) pairs.

    Staged files sit side by side in the one ``_staging`` directory (names unique per run,
    chunk and partition), so a chunk costs no directory creation or removal there; the
    directory itself is removed by recovery, under the write lock."""
    pairs: list[tuple[Path, Path]] = []
    name = f"{stamp(write_us)}_{run_id}_{chunk:06d}.parquet"
    staging = group_dir / "_staging"
    staging.mkdir(parents=True, exist_ok=True)
    for i, (part_dir, table) in enumerate(parts):
        staged = staging / f"{run_id}_{chunk:06d}_{i:04d}.parquet"
        write_parquet(table, staged)
        pairs.append((staged, group_dir / part_dir / name))
    return pairs


def write_parquet(table: pa.Table, path: Path) -> None:
    """One offline file: Snappy, plain encoding. Dictionary pages pay off only for a few
    low-cardinality columns; for identifiers, event times and measures they are built and
    then abandoned, which made writes about a third slower and files no smaller."""
    pq.write_table(table, path, compression="snappy", use_dictionary=False)


def publish(pairs: Sequence[tuple[Path, Path]]) -> None:
    """Move staged files into place; idempotent (a file already moved is skipped)."""
    for staged, final in pairs:
        if staged.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, final)


def data_files(group_dir: Path) -> list[Path]:
    """Published files, sorted (names start with the write stamp: write order)."""
    return sorted(p for p in group_dir.glob(GLOB) if not p.name.startswith((".", "_")))


# --------------------------------------------------------------------------------- reads


def _source_sql(group_dir: Path) -> str:
    pattern = str(group_dir / GLOB).replace("'", "''")
    return f"read_parquet('{pattern}', union_by_name = true, hive_partitioning = false)"


def files_source_sql(files: Sequence[str]) -> str:
    """``read_parquet`` of a listed set of files (an Iceberg group's current data files)."""
    listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    return f"read_parquet([{listed}], union_by_name = true, hive_partitioning = false)"


def dedup_sql(group_dir: Path, identifier: str, event_time: str, also: Sequence[str] = ()) -> str:
    """SQL of the visible records: one row per (identifier, event time), the latest write;
    per (identifier, event time, ``also``...) with ``also`` (an aggregation group's event
    sequence and hash: events at one time are distinct events, copies of one are one, and a
    version of one a backfill retracted is the tombstone, see :data:`EVENT_VERSION`)."""
    return visible_sql(_source_sql(group_dir), identifier, event_time, also)


def visible_sql(source: str, identifier: str, event_time: str, also: Sequence[str] = ()) -> str:
    """The visible records of the rows ``source`` reads (see :func:`dedup_sql`)."""
    keys = ", ".join(_q(c) for c in (identifier, event_time, *also))
    return (
        f"SELECT * EXCLUDE (_fsgen_rank) FROM (SELECT *, row_number() OVER ("
        f"PARTITION BY {keys} ORDER BY api_invocation_time DESC, write_time DESC"
        f") AS _fsgen_rank FROM {source}) WHERE _fsgen_rank = 1"
    )


def read_offline(
    rt: GroupRuntime,
    group_dir: Path,
    dedup: bool = True,
    con: duckdb.DuckDBPyConnection | None = None,
    also: Sequence[str] = (),
) -> pd.DataFrame:
    """The offline records of a group as a DataFrame (visible records unless ``dedup=False``,
    ``also`` as in :func:`dedup_sql`), ordered by event time, identifier and write."""
    import duckdb

    if not data_files(group_dir):
        return arrow_schema(rt).empty_table().to_pandas()
    con = con or duckdb.connect()
    sql = (
        dedup_sql(group_dir, rt.identifier, rt.event_time, also)
        if dedup
        else (f"SELECT * FROM {_source_sql(group_dir)}")
    )
    order = f"{_q(rt.event_time)}, {_q(rt.identifier)}, api_invocation_time, write_time"
    return con.execute(f"SELECT * FROM ({sql}) ORDER BY {order}").df()


#: the order of the rows of one version of an aggregation event (entity, event time, sequence,
#: hash), latest first: the version is an event unless the first row is a tombstone
#: (``is_deleted``), which a backfill writes for a version it recomputed with other values
#: (:func:`recomputed_events`). The engines' ``history`` queries (fsgen.pit.aggregate) and
#: every reader here follow it.
EVENT_VERSION = "api_invocation_time DESC, write_time DESC, is_deleted DESC"


def event_history(
    art: AggregationRuntime, group_dir: Path, ids: Sequence[str]
) -> dict[str, list[tuple[int, int, str, tuple[Value | None, ...]]]]:
    """The events of an aggregation group's entities ``ids``, as
    ``fsgen.runtime.aggwrite.History``: (event time µs, sequence, hash, values), one per
    version (copies are one) that no later tombstone retracted (:data:`EVENT_VERSION`)."""
    import duckdb
    import pyarrow as pa

    from fsgen.runtime.encoding import parse_event_time

    rt = art.group
    out: dict[str, list[tuple[int, int, str, tuple[Value | None, ...]]]] = {i: [] for i in ids}
    if not ids or not data_files(group_dir):
        return out
    con = duckdb.connect()
    con.register("wanted", pa.table({"id": pa.array(list(ids), pa.string())}))
    values = ", ".join(_q(d.value_column) for d in art.definitions)
    ident = _q(rt.identifier)
    rows = con.execute(
        f"SELECT * EXCLUDE (is_deleted) FROM (SELECT CAST({ident} AS VARCHAR), "
        f"{_q(rt.event_time)}, event_sequence, event_hash, {values}, is_deleted FROM "
        f"{_source_sql(group_dir)} WHERE event_sequence IS NOT NULL AND CAST({ident} AS VARCHAR) "
        f"IN (SELECT id FROM wanted) QUALIFY row_number() OVER (PARTITION BY {ident}, "
        f"{_q(rt.event_time)}, event_sequence, event_hash ORDER BY {EVENT_VERSION}) = 1) "
        "WHERE NOT is_deleted"
    ).fetchall()
    kind = rt.event_time_kind
    for record_id, when, seq, content_hash, *vals in rows:
        micros = round(parse_event_time(kind, when) * 1_000_000)
        clean = tuple(None if isinstance(v, float) and math.isnan(v) else v for v in vals)
        out[record_id].append((micros, int(seq), str(content_hash), clean))
    return out


def event_entities(art: AggregationRuntime, group_dir: Path) -> dict[str, tuple[object, ...]]:
    """Every entity of an aggregation group's offline event history (record id -> its key
    values, sorted by record id): the entities a full backfill rebuilds."""
    import duckdb

    rt = art.group
    if not data_files(group_dir):
        return {}
    keys = "".join(f", {_q(k)}" for k in rt.keys)
    ident = _q(rt.identifier)
    rows = (
        duckdb.connect()
        .execute(
            f"SELECT DISTINCT CAST({ident} AS VARCHAR) AS fsgen_id{keys} FROM "
            f"{_source_sql(group_dir)} WHERE NOT is_deleted AND event_sequence IS NOT NULL "
            "ORDER BY fsgen_id"
        )
        .fetchall()
    )
    out: dict[str, tuple[object, ...]] = {}
    for record_id, *values in rows:
        out.setdefault(str(record_id), tuple(values))
    return out


def seen_events(
    art: AggregationRuntime, group_dir: Path, events: Sequence[tuple[str, str, int]]
) -> list[tuple[int, int, bool]]:
    """Which of a batch run's events (record id, event hash, sequence; the hash covers the
    entity, the event time and the values) the group's offline history already holds from
    an earlier ingestion, as (position in ``events``, the earliest write time in µs of the
    events they match, whether it is a copy of the very same row), by position.

    One anti-join in DuckDB over the history of the run's entities: an event whose (id, hash,
    sequence) is in the history is the very same row ingested again (a copy: one event with
    it, so harmless); of the others, per (id, hash) the first k in the run's order are seen, k being
    the history's events of that (id, hash) no copy matched -- so a re-export (rows shifted,
    reordered, split over files) is seen whole, and a run holding one more real repeat of
    an event than the history does adds exactly that one."""
    import duckdb

    if not events or not data_files(group_dir):
        return []
    con = _with_run(
        duckdb.connect(), [e[0] for e in events], [e[1] for e in events], [e[2] for e in events]
    )
    ident = _q(art.group.identifier)
    rows = con.execute(
        f"""
        WITH rows AS (
            SELECT CAST({ident} AS VARCHAR) AS id, event_hash AS h, event_sequence AS seq,
                   write_time, is_deleted,
                   first_value(is_deleted) OVER (
                       PARTITION BY {ident}, {_q(art.group.event_time)}, event_sequence,
                           event_hash
                       ORDER BY {EVENT_VERSION}
                   ) AS retracted
            FROM {_source_sql(group_dir)}
            WHERE event_sequence IS NOT NULL
              AND CAST({ident} AS VARCHAR) IN (SELECT DISTINCT id FROM run)
        ),
        old AS (  -- the events: no version a backfill retracted
            SELECT id, h, seq, min(epoch_us(write_time)) AS wt FROM rows
            WHERE NOT is_deleted AND NOT retracted
            GROUP BY 1, 2, 3
        ),
        fresh AS (
            SELECT r.* FROM run r ANTI JOIN old o ON r.id = o.id AND r.h = o.h AND r.seq = o.seq
        ),
        left_old AS (
            SELECT o.id, o.h, count(*) AS n, min(o.wt) AS wt
            FROM old o ANTI JOIN run r ON r.id = o.id AND r.h = o.h AND r.seq = o.seq
            GROUP BY 1, 2
        ),
        ranked AS (
            SELECT f.pos, f.id, f.h,
                   row_number() OVER (PARTITION BY f.id, f.h ORDER BY f.pos) AS k
            FROM fresh f
        )
        SELECT r.pos, l.wt, false AS copy FROM ranked r
        JOIN left_old l ON r.id = l.id AND r.h = l.h WHERE r.k <= l.n
        UNION ALL
        SELECT r.pos, o.wt, true FROM run r
        JOIN old o ON r.id = o.id AND r.h = o.h AND r.seq = o.seq
        ORDER BY 1
        """
    ).fetchall()
    return [(int(pos), int(wt), bool(copy)) for pos, wt, copy in rows]


def _with_run(
    con: duckdb.DuckDBPyConnection, ids: list[str], hashes: list[str], sequences: list[int]
) -> duckdb.DuckDBPyConnection:
    """``con`` with a batch run's events registered as ``run`` (pos, id, h, seq)."""
    con.register(
        "run",
        pa.table(
            {
                "pos": pa.array(range(len(ids)), pa.int64()),
                "id": pa.array(ids, pa.string()),
                "h": pa.array(hashes, pa.string()),
                "seq": pa.array(sequences, pa.int64()),
            }
        ),
    )
    return con


class Recomputed(NamedTuple):
    """A version of an event the history holds that a batch run's event recomputes: same
    entity, event time and sequence (row number), other hash (values)."""

    position: int
    """of the run's event, in the run's events"""
    event_time: object
    """the stored version's event time, as stored"""
    content_hash: str
    values: tuple[Value | None, ...]
    written: int
    """its write time, µs"""


def recomputed_events(
    art: AggregationRuntime, group_dir: Path, events: Sequence[tuple[str, int, int, str]]
) -> list[Recomputed]:
    """The versions of events the history holds (not retracted) that a batch run's events
    (record id, sequence, event time µs, hash) recompute: same entity, event time and
    sequence, another hash -- the same row ingested before with values the definitions
    computed then (the caller decides, by the earlier run's source, whether it is the same
    row). One query over the history of the run's entities."""
    import duckdb

    from fsgen.runtime.encoding import parse_event_time

    if not events or not data_files(group_dir):
        return []
    con = _with_run(
        duckdb.connect(), [e[0] for e in events], [e[3] for e in events], [e[1] for e in events]
    )
    rt = art.group
    ident, when = _q(rt.identifier), _q(rt.event_time)
    source = _source_sql(group_dir)
    present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    # an aggregation declared since the last ingestion has no column yet: its values are none
    stored = ", ".join(
        _q(d.value_column) if d.value_column in present else f"NULL AS {_q(d.value_column)}"
        for d in art.definitions
    )
    values = ", ".join(f"v.{_q(d.value_column)}" for d in art.definitions)
    rows = con.execute(
        f"""
        WITH versions AS (
            SELECT CAST({ident} AS VARCHAR) AS id, {when} AS t, event_sequence AS seq,
                   event_hash AS h, {stored}, epoch_us(write_time) AS wt, is_deleted
            FROM {source}
            WHERE event_sequence IS NOT NULL
              AND CAST({ident} AS VARCHAR) IN (SELECT DISTINCT id FROM run)
            QUALIFY row_number() OVER (
                PARTITION BY {ident}, {when}, event_sequence, event_hash ORDER BY {EVENT_VERSION}
            ) = 1
        )
        SELECT r.pos, v.t, v.h, {values}, v.wt FROM run r
        JOIN versions v ON v.id = r.id AND v.seq = r.seq AND v.h <> r.h
        WHERE NOT v.is_deleted
        ORDER BY 1, v.wt
        """
    ).fetchall()
    kind = rt.event_time_kind
    out = []
    for pos, t, h, *vals, wt in rows:
        if round(parse_event_time(kind, t) * 1_000_000) != events[pos][2]:
            continue  # the same row number at another time: another event
        clean = tuple(None if isinstance(v, float) and math.isnan(v) else v for v in vals)
        out.append(Recomputed(int(pos), t, str(h), clean, int(wt)))
    return out


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------------------- compaction


def compact(rt: GroupRuntime, group_dir: Path, min_files: int = 2) -> tuple[int, int]:
    """Merge each partition with at least ``min_files`` files into one file. Returns (files
    before, files after). The caller holds the store's write lock.

    Every distinct row is kept, including rows a later write of the same (identifier, event
    time) hides: knowledge-time datasets (records written by T) still need them. Only exact
    copies go, which a compaction killed between its rename and its unlinks leaves behind."""
    import duckdb

    before = after = 0
    by_dir: dict[Path, list[Path]] = {}
    for path in data_files(group_dir):
        by_dir.setdefault(path.parent, []).append(path)
    con = duckdb.connect()
    for part, files in sorted(by_dir.items()):
        before += len(files)
        if len(files) < min_files:
            after += len(files)
            continue
        listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        # rows stay in (file, row) order, the last tie-break of a point-in-time join; of exact
        # copies the last is kept, so a complete tie is won by the same row as before
        source = (
            f"read_parquet([{listed}], union_by_name = true, hive_partitioning = false, "
            "file_row_number = true)"
        )
        names = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
        columns = ", ".join(_q(n) for n in names if n != "file_row_number")
        # (the kept rows are picked by position, so no value passes through a grouping key,
        # which would turn a -0.0 into 0.0)
        positioned = (
            f"(SELECT *, (file_index::BIGINT << 40) | file_row_number AS __pos FROM {source})"
        )
        table = con.sql(
            f"SELECT {columns} FROM {positioned} WHERE __pos IN (SELECT max(__pos) FROM "
            f"{positioned} GROUP BY {columns}) ORDER BY __pos"
        ).to_arrow_table()
        table = conform(table, arrow_schema(rt))
        newest = max(f.name.split("_", 1)[0] for f in files)
        final = part / f"{newest}_compacted-{uuid.uuid4().hex[:8]}.parquet"
        temp = part / f".{final.name}.tmp"
        write_parquet(table, temp)
        os.replace(temp, final)
        for f in files:
            f.unlink()
        after += 1
    return before, after


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` in the store's exact Arrow schema: columns cast, missing ones null (DuckDB's
    output, files written before a column was added)."""
    arrays = []
    for f in schema:
        if f.name in table.column_names:
            arrays.append(table.column(f.name).cast(f.type))
        else:
            arrays.append(pa.nulls(table.num_rows, type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


__all__ = [
    "GLOB",
    "arrow_schema",
    "compact",
    "conform",
    "data_files",
    "dedup_sql",
    "hour_parts",
    "merge_hour_parts",
    "publish",
    "read_offline",
    "records_table",
    "sagemaker_parts",
    "split_by_hour",
    "with_sagemaker_columns",
    "write_staged",
]
