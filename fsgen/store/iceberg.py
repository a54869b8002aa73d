"""Iceberg offline tables in the local store: ``Offline(table_format="Iceberg")``.

On SageMaker an Iceberg group's offline store is an Iceberg table (Glue catalog, data and
``metadata/`` under the group's S3 prefix). Locally it is an Iceberg table too, through pyiceberg
(the ``fsgen[iceberg]`` extra, imported only for Iceberg groups) with a SQL catalog::

    <store>/offline/_catalog.db                       the catalog (SQLite), namespace "fsgen"
    <store>/offline/<group>/metadata/                 table metadata, manifests, snapshots
    <store>/offline/<group>/data/<event time>_trunc=YYYY-MM-DD/<stamp>_<run>_<chunk>.parquet

One table per group, with the columns of a Glue-format group (the feature definitions, then
``write_time``, ``api_invocation_time``, ``is_deleted``) and SageMaker's partitioning: the
first ten characters of a String event time (``truncate(10)``, the UTC day of its canonical
form, partition field ``<event time>_trunc``). Iceberg cannot truncate a double, so a group
with a Fractional event time is unpartitioned (its files sit in ``data/``).

**Writes** go through the store's write protocol (:mod:`fsgen.store.commit`) unchanged: files
staged, one SQLite transaction with the online upserts and a journal row as the commit point,
then publish. Publishing an Iceberg chunk moves its files into ``data/`` and commits one
Iceberg append of them (:func:`append`); the journal row says the chunk is Iceberg's, so a
roll-forward after a kill appends the files the table does not reference yet: exactly once,
and never an online record whose offline row is lost. Files in ``data/`` that the table does
not reference are invisible (a killed compaction's output) and compaction removes them.

**Reads** take the current snapshot's data files from pyiceberg's scan plan and read them with
DuckDB's ``read_parquet``, sorted by path like a Glue group's files: the rows of one
(identifier, event time) lie in one partition under both layouts and the files of a partition
are named alike, so the point-in-time tie-break (file order, then row) picks the same row.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import urllib.parse
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from fsgen.errors import StoreError
from fsgen.store import offline

if TYPE_CHECKING:
    import pandas as pd

    from fsgen.runtime.pipeline import GroupRuntime

ICEBERG = "Iceberg"
NAMESPACE = "fsgen"
CATALOG_FILE = "_catalog.db"
TRUNCATE = 10
"""SageMaker partitions an Iceberg group by the first ten characters of its String event time."""

PROPERTIES = {
    # every chunk is one append: merge manifests (a scan plan then reads a bounded number of
    # them) and keep the last few metadata files only
    "commit.manifest-merge.enabled": "true",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "10",
}

_catalogs: dict[tuple[int, int, str], Any] = {}
_guard = threading.Lock()


def require(group: str) -> None:
    """Raise a clear StoreError when pyiceberg is not installed."""
    try:
        import pyiceberg.catalog.sql  # noqa: F401
    except ImportError:
        raise StoreError(
            f"feature group {group!r} keeps its offline store as an Iceberg table "
            '(Offline(table_format="Iceberg")), which the local store writes with pyiceberg; '
            "it is not installed: pip install 'fsgen[iceberg]'"
        ) from None


def catalog(store: Path, group: str) -> Any:
    """The store's SQL catalog (``<store>/offline/_catalog.db``), one per process and thread
    (SQLite connections stay in the thread that opened them)."""
    require(group)
    from pyiceberg.catalog.sql import SqlCatalog

    base = (Path(store) / "offline").absolute()
    key = (os.getpid(), threading.get_ident(), base.as_posix())
    with _guard:
        found = _catalogs.get(key)
        if found is None:
            base.mkdir(parents=True, exist_ok=True)
            found = SqlCatalog(
                NAMESPACE, uri=f"sqlite:///{base / CATALOG_FILE}", warehouse=base.as_uri()
            )
            found.create_namespace_if_not_exists(NAMESPACE)
            _catalogs[key] = found
    return found


def table_id(group: str) -> tuple[str, str]:
    return (NAMESPACE, group)


def has_table(group_dir: Path) -> bool:
    """Whether ``group_dir`` holds an Iceberg table (its ``metadata/``): cheap, no catalog."""
    return (group_dir / "metadata").is_dir()


def has_glue_files(group_dir: Path) -> bool:
    return any((group_dir / "data").glob("year=*"))


def check_layout(group_dir: Path, group: str, table_format: str) -> None:
    """Refuse to mix layouts: a group deployed in one table format and declared in the other
    (a table-format change is a replace that ``fsgen apply`` has not run yet)."""
    if table_format == ICEBERG and not has_table(group_dir) and has_glue_files(group_dir):
        found, declared = "Glue-format (Hive-partitioned) files", "an Iceberg table"
    elif table_format != ICEBERG and has_table(group_dir):
        found, declared = "an Iceberg table", "Glue format"
    else:
        return
    raise StoreError(
        f"feature group {group!r}: its offline store in {group_dir} holds {found}, but the "
        f"group is declared with {declared}; a table-format change replaces the group: run "
        "`fsgen plan` and `fsgen apply --allow-replace` first"
    )


# ------------------------------------------------------------------------------- tables


def definitions_schema(description: dict[str, Any]) -> pa.Schema:
    """The offline columns of a DescribeFeatureGroup / CreateFeatureGroup request: the
    FeatureDefinitions in order, then SageMaker's three columns (as
    :func:`fsgen.store.offline.arrow_schema` for the group's runtime)."""
    fields = []
    for d in description["FeatureDefinitions"]:
        typ = offline._ARROW[d["FeatureType"]]
        fields.append(pa.field(d["FeatureName"], pa.list_(typ) if d.get("CollectionType") else typ))
    fields += [
        pa.field("write_time", offline.TS),
        pa.field("api_invocation_time", offline.TS),
        pa.field("is_deleted", pa.bool_()),
    ]
    return pa.schema(fields)


def create_for(store: Path, description: dict[str, Any]) -> None:
    """The empty table of a group being created (CreateFeatureGroup with an Iceberg offline
    store); nothing for any other group."""
    config = description.get("OfflineStoreConfig") or {}
    if config.get("TableFormat") != ICEBERG:
        return
    name = str(description["FeatureGroupName"])
    event_time = str(description["EventTimeFeatureName"])
    kinds = {d["FeatureName"]: d["FeatureType"] for d in description["FeatureDefinitions"]}
    ensure_table(store, name, definitions_schema(description), event_time, kinds[event_time])


def ensure_table(
    store: Path, group: str, schema: pa.Schema, event_time: str, event_kind: str
) -> Any:
    """The group's table, created (atomically, partition spec included) when missing, its
    schema widened by name when ``schema`` has columns it lacks (features added in place)."""
    cat = catalog(store, group)
    from pyiceberg.exceptions import NoSuchTableError
    from pyiceberg.transforms import TruncateTransform

    try:
        table = cat.load_table(table_id(group))
    except NoSuchTableError:
        location = (Path(store) / "offline" / group).absolute().as_posix()
        tx = cat.create_table_transaction(
            table_id(group), schema=schema, location=location, properties=PROPERTIES
        )
        if event_kind == "String":
            with tx.update_spec() as spec:
                spec.add_field(event_time, TruncateTransform(TRUNCATE), f"{event_time}_trunc")
        return tx.commit_transaction()
    known = {f.name for f in table.schema().fields}
    if any(name not in known for name in schema.names):
        with table.update_schema() as update:
            update.union_by_name(schema)
        table = cat.load_table(table_id(group))
    return table


def ensure_for(store: Path, rt: GroupRuntime) -> Any:
    return ensure_table(store, rt.name, offline.arrow_schema(rt), rt.event_time, rt.event_time_kind)


def split_by_partition(rt: GroupRuntime, table: pa.Table) -> list[tuple[str, pa.Table]]:
    """(partition dir, rows) per partition value in ascending order, rows in their order."""
    if rt.event_time_kind != "String" or table.num_rows == 0:
        return [("data", table)] if table.num_rows else []
    import pyarrow.compute as pc

    sliced = pc.utf8_slice_codeunits(table.column(rt.event_time), 0, TRUNCATE)
    encoded = pc.dictionary_encode(sliced).combine_chunks()
    values = encoded.dictionary.to_pylist()
    rank = np.empty(len(values), dtype="int64")
    rank[np.argsort(np.asarray(values, dtype=object), kind="stable")] = np.arange(len(values))
    parts = rank[encoded.indices.to_numpy(zero_copy_only=False)]
    order = np.argsort(parts, kind="stable")
    ordered = parts[order]
    cuts = np.flatnonzero(np.diff(ordered)) + 1
    taken = table.take(pa.array(order))
    by_rank = {int(r): v for v, r in zip(values, rank, strict=True)}
    out = []
    for start, stop in zip(np.r_[0, cuts], np.r_[cuts, len(ordered)], strict=True):
        value = by_rank[int(ordered[start])]
        directory = f"data/{rt.event_time}_trunc={urllib.parse.quote(value, safe='-')}"
        out.append((directory, taken.slice(int(start), int(stop - start))))
    return out


def append(store: Path, group: str, paths: Sequence[str], chunk: str, *, recover: bool) -> None:
    """Commit published files to the table as one Iceberg append. ``recover``: skip the files
    the table references already (a roll-forward after a kill between this commit and the
    journal row's removal), so a chunk is appended exactly once."""
    if not paths:
        return
    table = catalog(store, group).load_table(table_id(group))
    todo = list(paths)
    if recover:
        known = set(current_files(table))
        todo = [p for p in todo if p not in known]
        if not todo:
            return
    table.add_files(todo, snapshot_properties={"fsgen.chunk": chunk}, check_duplicate_files=False)


def current_files(table: Any) -> list[str]:
    return [str(task.file.file_path) for task in table.scan().plan_files()]


def data_file_names(store: Path, group: str) -> list[str]:
    """The current snapshot's data files, sorted (as a Glue group's published files are).
    A group without a table has none, unless it holds Glue-format files: then the layouts are
    mixed and this raises (see :func:`check_layout`)."""
    group_dir = Path(store) / "offline" / group
    if not has_table(group_dir):
        check_layout(group_dir, group, ICEBERG)
        return []
    cat = catalog(store, group)
    from pyiceberg.exceptions import NoSuchTableError

    try:
        table = cat.load_table(table_id(group))
    except NoSuchTableError:
        return []
    return sorted(current_files(table))


def forget(store: Path, group: str) -> None:
    """Remove the group's table from the catalog (its files are archived or deleted by the
    caller). Plain SQLite on the catalog's own table, so destroying a group never needs
    pyiceberg."""
    path = Path(store) / "offline" / CATALOG_FILE
    if not path.exists():
        return
    con = sqlite3.connect(path, timeout=60.0)
    try:
        with con:
            con.execute(
                "DELETE FROM iceberg_tables WHERE table_namespace = ? AND table_name = ?",
                (NAMESPACE, group),
            )
    except sqlite3.OperationalError:  # no table of that name yet: nothing to forget
        pass
    finally:
        con.close()
    with _guard:
        _catalogs.clear()


# -------------------------------------------------------------------------------- reads


def read_offline(
    rt: GroupRuntime, store: Path, dedup: bool = True, con: Any = None, also: Sequence[str] = ()
) -> pd.DataFrame:
    """:func:`fsgen.store.offline.read_offline` for an Iceberg group."""
    import duckdb

    files = data_file_names(store, rt.name)
    if not files:
        return offline.arrow_schema(rt).empty_table().to_pandas()
    con = con or duckdb.connect()
    source = offline.files_source_sql(files)
    sql = (
        offline.visible_sql(source, rt.identifier, rt.event_time, also)
        if dedup
        else f"SELECT * FROM {source}"
    )
    order = (
        f"{offline._q(rt.event_time)}, {offline._q(rt.identifier)}, api_invocation_time, write_time"
    )
    return con.execute(f"SELECT * FROM ({sql}) ORDER BY {order}").df()


# --------------------------------------------------------------------------- compaction


def compact(rt: GroupRuntime, store: Path, min_files: int = 2) -> tuple[int, int]:
    """Rewrite each partition with at least ``min_files`` data files into one file, as one
    Iceberg overwrite commit (Athena's ``OPTIMIZE ... REWRITE DATA USING BIN_PACK``), then
    delete the replaced files (what ``VACUUM`` does once they leave the retention window;
    locally no older snapshot is read). Files in ``data/`` the table does not reference (what
    a compaction killed before its commit wrote) are removed first. Rows keep their (file,
    row) order and only exact copies go, as for a Glue group. The caller holds the write
    lock. Returns (files before, files after)."""
    import duckdb

    group_dir = Path(store) / "offline" / rt.name
    if not has_table(group_dir):
        return 0, 0
    table = catalog(store, rt.name).load_table(table_id(rt.name))
    from pyiceberg.io.pyarrow import parquet_file_to_data_file

    tasks = list(table.scan().plan_files())
    referenced = {os.path.realpath(str(t.file.file_path)) for t in tasks}
    for path in (group_dir / "data").rglob("*.parquet"):
        if os.path.realpath(path) not in referenced:
            path.unlink(missing_ok=True)
    by_dir: dict[str, list[Any]] = {}
    for task in sorted(tasks, key=lambda t: str(t.file.file_path)):
        by_dir.setdefault(str(Path(task.file.file_path).parent), []).append(task.file)
    before = len(tasks)
    after = 0
    replaced: list[Any] = []
    written: list[str] = []
    con = duckdb.connect()
    try:
        for part, files in sorted(by_dir.items()):
            if len(files) < min_files:
                after += len(files)
                continue
            paths = [str(f.file_path) for f in files]
            merged = _merged(con, paths, offline.arrow_schema(rt))
            newest = max(Path(p).name.split("_", 1)[0] for p in paths)
            final = Path(part) / f"{newest}_compacted-{uuid.uuid4().hex[:8]}.parquet"
            offline.write_parquet(merged, final)
            written.append(final.as_posix())
            replaced.extend(files)
            after += 1
    finally:
        con.close()
    if not written:
        return before, after
    try:
        with table.transaction() as tx:
            new = [parquet_file_to_data_file(table.io, tx.table_metadata, p) for p in written]
            snapshot = tx.update_snapshot(snapshot_properties={"fsgen.operation": "compact"})
            with snapshot.overwrite() as overwrite:
                for data_file in replaced:
                    overwrite.delete_data_file(data_file)
                for data_file in new:
                    overwrite.append_data_file(data_file)
    except BaseException:
        for p in written:
            with contextlib.suppress(OSError):
                os.unlink(p)
        raise
    for data_file in replaced:
        with contextlib.suppress(OSError):
            os.unlink(str(data_file.file_path))
    # the replaced files are gone, so are the snapshots that read them (VACUUM's job)
    table = catalog(store, rt.name).load_table(table_id(rt.name))
    current = table.current_snapshot()
    older = [
        s.snapshot_id for s in table.snapshots() if current and s.snapshot_id != current.snapshot_id
    ]
    if older:
        table.maintenance.expire_snapshots().by_ids(older).commit()
    return before, after


def _merged(con: Any, paths: list[str], schema: pa.Schema) -> pa.Table:
    """The rows of ``paths`` in (file, row) order with exact copies dropped (the last copy
    kept, so a complete tie is won by the same row as before), in the store's schema. Rows
    are picked by position, so no value passes through a grouping key (a -0.0 stays -0.0)."""
    source = (
        f"read_parquet({_listed(paths)}, union_by_name = true, hive_partitioning = false, "
        "file_row_number = true)"
    )
    names = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    columns = ", ".join(offline._q(n) for n in names if n != "file_row_number")
    positioned = f"(SELECT *, (file_index::BIGINT << 40) | file_row_number AS __pos FROM {source})"
    table = con.sql(
        f"SELECT {columns} FROM {positioned} WHERE __pos IN (SELECT max(__pos) FROM "
        f"{positioned} GROUP BY {columns}) ORDER BY __pos"
    ).to_arrow_table()
    arrays = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(table.num_rows, type=f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _listed(paths: Sequence[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


__all__ = [
    "CATALOG_FILE",
    "ICEBERG",
    "append",
    "check_layout",
    "compact",
    "create_for",
    "data_file_names",
    "ensure_for",
    "ensure_table",
    "forget",
    "read_offline",
    "require",
    "split_by_partition",
]
