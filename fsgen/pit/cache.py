"""A local read cache of a group's offline history, keyed by its file list.

The published offline store keeps SageMaker's layout: hourly partitions of small Parquet files
whose String event times are ISO-8601 text. Reading that on every build pays per file (footers,
~720 of them for a month) and per string (parsing each event time). The cache is one Parquet
file per group, ``<group>/_fsgen_cache/history-v<N>-<key>.parquet``, outside ``data/`` (so no
reader of the published layout sees it), holding every column of every published file (schemas
unified by name) plus what the point-in-time join computes per record: ``__fsgen_e`` (event µs,
parsed once), ``__fsgen_w`` / ``__fsgen_a`` (write / api invocation µs), ``__fsgen_x`` (the
tie: delete flag, index in the sorted file list, row in the file) and ``__fsgen_d`` (deleted).
Rows without an event time are left out, as the join leaves them out.

``key`` hashes the sorted file names with their sizes and modification times and the event
time's parse rule, so any write, compaction or delete that changes a file makes a new cache on
the next build; a build then writes it atomically (temp name, ``os.replace``) and removes the
older ones. A store that cannot be written, or a cache that cannot be built, means reading the
published files directly, as before. The cache costs one copy of the group's history on disk
(columnar, compressed) and one extra scan-and-write on the first build after a change.
``FSGEN_PIT_CACHE=off`` turns it off.

The cache holds no TTL: the join judges each record by the TTL in force at its write from the
cached ``__fsgen_a`` and the group's TTL history (fsgen.ttl_history), so a TTL change needs no
new cache and the key does not include one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from pathlib import Path

import duckdb

from fsgen.pit.model import INTERNAL

CACHE_DIR = "_fsgen_cache"
VERSION = 1
ENV = "FSGEN_PIT_CACHE"
COMPUTED = ("e", "w", "a", "x", "d")


def enabled() -> bool:
    return os.environ.get(ENV, "on").strip().lower() not in ("off", "0", "false", "no")


def fingerprint(files: list[str], salt: str = "") -> str:
    """A hash of the file list with each file's size and modification time."""
    h = hashlib.sha256(salt.encode())
    for name in files:
        st = os.stat(name)
        h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def listed(files: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in files) + "]"


def cached_history(
    con: duckdb.DuckDBPyConnection,
    group_dir: Path,
    files: list[str],
    event_column: str,
    event_sql: str,
) -> str | None:
    """The path of the group's history cache for ``files`` (built now if missing), or None.

    ``event_sql``: the expression of the event time in µs over ``event_column`` (quoted)."""
    if not files or not enabled():
        return None
    directory = group_dir / CACHE_DIR
    name = f"history-v{VERSION}-{fingerprint(files, event_sql)[:32]}.parquet"
    path = directory / name
    if path.is_file():
        return path.as_posix()
    temp = directory / f".{name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
    tie = (
        "(CAST(coalesce(is_deleted, false) AS BIGINT) << 62) "
        "| (CAST(file_index AS BIGINT) << 40) | file_row_number"
    )
    select = (
        f"SELECT * EXCLUDE (file_row_number), {event_sql} AS {INTERNAL}e, "
        f"epoch_us(write_time) AS {INTERNAL}w, epoch_us(api_invocation_time) AS {INTERNAL}a, "
        f"{tie} AS {INTERNAL}x, coalesce(is_deleted, false) AS {INTERNAL}d "
        f"FROM read_parquet({listed(files)}, union_by_name = true, hive_partitioning = false, "
        f"file_row_number = true) WHERE {event_column} IS NOT NULL"
    )
    target = temp.as_posix().replace("'", "''")
    try:
        directory.mkdir(exist_ok=True)
        con.execute(f"COPY ({select}) TO '{target}' (FORMAT parquet)").fetchall()
        os.replace(temp, path)
    except (OSError, duckdb.Error):
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
        return None
    for old in directory.glob("history-*.parquet"):
        if old.name != name:
            old.unlink(missing_ok=True)
    return path.as_posix()


__all__ = ["CACHE_DIR", "cached_history", "enabled", "fingerprint"]
