"""The compacted layer: a group's offline history merged into a few large files for the local
engines, beside the published hourly layout (which stays exactly as SageMaker writes it).

SageMaker's offline layout -- ``data/year=/month=/day=/hour=/*.parquet``, partitioned by the
record's event hour -- is the published format: Athena, Glue and anything reading the S3
prefix rely on it, and a file holding several hours' rows inside one ``hour=`` directory would
break partition pruning. So compaction does not rewrite it into larger files; it adds a local
layer next to it::

    <store>/offline/<group>/_compacted/manifest.json
    <store>/offline/<group>/_compacted/<id>-<n>.parquet

The layer's files hold every row of the published files the manifest names (each with its
size and modification time), in the published order (sorted path, then row) and with the
store's exact schema: no row is dropped or changed, so rows a later write hides are still
there for knowledge-time datasets. :func:`read_files` gives the local engines (DuckDB
point-in-time joins and their history cache, the Spark job) the layer's files followed by the
published files written after it; when the manifest no longer matches the published files (a
file it names changed or is gone, or a later file sorts before a covered one in its partition)
it gives the published files, as if there were no layer.

Why the order is the same answer: the point-in-time join's last tie-break is (file, row in
file), and records that tie on everything before it share an event time, hence a partition.
Within a partition the layer keeps the covered files' rows in their order, and every file
written later sorts after them (names start with the write stamp) and comes after the layer.

Commit protocol (under the store's write lock, as every writer): the layer's files are written
under temporary names and renamed; ``manifest.json`` is replaced atomically (the commit point);
then files no manifest names are removed. A kill before the replace leaves unnamed files that
the next compaction removes; readers never see a half-written layer.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fsgen.store.offline import conform

LAYER = "_compacted"
MANIFEST = "manifest.json"
FORMAT = 1
#: rows per layer file: large enough that a month of hourly files becomes a handful, small
#: enough that DuckDB scans several in parallel
FILE_ROWS = 4_000_000
#: rows gathered before one row group is written
GROUP_ROWS = 262_144


def published_files(group_dir: Path) -> list[str]:
    """The published files, sorted POSIX paths: what ``group_dir.glob(GLOB)`` finds (temp and
    staging names, with a leading '.' or '_', skipped), by a directory walk without pathlib's
    per-entry objects (hundreds of hourly partitions)."""
    level = [(group_dir / "data").as_posix()]
    for _ in range(4):  # year=, month=, day=, hour=
        level = [entry.path for d in level for entry in _entries(d) if entry.is_dir()]
    return sorted(
        entry.path
        for d in level
        for entry in _entries(d)
        if entry.name.endswith(".parquet") and not entry.name.startswith((".", "_"))
    )


def _entries(directory: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as it:
            return list(it)
    except OSError:  # absent, or not a directory
        return []


def _stat(path: str) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def _relative(group_dir: Path, path: str) -> str:
    base = group_dir.as_posix() + "/"
    if not path.startswith(base):
        raise ValueError(f"{path} is not under {base}")
    return path[len(base) :]


def build(group_dir: Path, published: Sequence[str]) -> int:
    """Write the layer for ``published`` (sorted paths of every published file); returns the
    layer's file count (0: no layer, when there is nothing to merge or the files' schemas do
    not unify). The caller holds the store's write lock.

    The layer's schema is the published files' schemas unified by name, as the readers'
    ``union_by_name`` sees them: a file without a column (written before a feature was
    added) has nulls there."""
    if not published:
        remove(group_dir)
        return 0
    try:
        schema = pa.unify_schemas([pq.read_schema(p) for p in published])
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        remove(group_dir)  # a column whose type changed: the readers unify, not the layer
        return 0
    directory = group_dir / LAYER
    directory.mkdir(exist_ok=True)
    token = uuid.uuid4().hex[:12]
    outputs: list[str] = []
    writer: pq.ParquetWriter | None = None
    pending: list[pa.Table] = []
    pending_rows = file_rows = 0

    def flush() -> None:
        nonlocal pending, pending_rows
        if pending and writer is not None:
            writer.write_table(pa.concat_tables(pending))
        pending, pending_rows = [], 0

    try:
        for path in published:
            table = conform(pq.read_table(path), schema)
            if writer is None or file_rows >= FILE_ROWS:
                flush()
                if writer is not None:
                    writer.close()
                name = f"{token}-{len(outputs):04d}.parquet"
                outputs.append(name)
                writer = pq.ParquetWriter(
                    directory / f".{name}.tmp", schema, compression="snappy", use_dictionary=False
                )
                file_rows = 0
            pending.append(table)
            pending_rows += table.num_rows
            file_rows += table.num_rows
            if pending_rows >= GROUP_ROWS:
                flush()
        flush()
        if writer is not None:
            writer.close()
            writer = None
        for name in outputs:
            os.replace(directory / f".{name}.tmp", directory / name)
        manifest = {
            "format": FORMAT,
            "files": outputs,
            "covers": [[_relative(group_dir, p), *_stat(p)] for p in published],
        }
        temp = directory / f".{MANIFEST}.{token}.tmp"
        temp.write_text(json.dumps(manifest, sort_keys=True))
        os.replace(temp, directory / MANIFEST)  # the commit point
    finally:
        if writer is not None:
            writer.close()
        for name in outputs:
            with contextlib.suppress(OSError):
                (directory / f".{name}.tmp").unlink(missing_ok=True)
    for entry in directory.iterdir():  # files of earlier layers, or of a killed compaction
        if entry.name != MANIFEST and entry.name not in outputs:
            entry.unlink(missing_ok=True)
    return len(outputs)


def read_files(group_dir: Path, published: list[str]) -> list[str]:
    """The files a local engine reads for ``published`` (the sorted published files): the
    layer's files and the published files written after it, or ``published`` itself when
    there is no valid layer."""
    directory = group_dir / LAYER
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return published
    try:
        if manifest.get("format") != FORMAT:
            return published
        base = group_dir.as_posix()
        covered = {f"{base}/{c[0]}": c[1:] for c in manifest["covers"]}
        layer = [(directory / name).as_posix() for name in manifest["files"]]
    except (AttributeError, KeyError, TypeError, IndexError):
        return published
    present = set(published)
    if not covered.keys() <= present or not all(os.path.isfile(p) for p in layer):
        return published
    try:
        if any(_stat(p) != covered[p] for p in covered):
            return published
    except OSError:
        return published
    newest: dict[str, str] = {}
    for path in covered:
        parent, name = path.rsplit("/", 1)
        newest[parent] = max(newest.get(parent, ""), name)
    later = [p for p in published if p not in covered]
    for path in later:
        parent, name = path.rsplit("/", 1)
        if name < newest.get(parent, ""):
            return published  # written later but sorting before a covered file
    return layer + later


def remove(group_dir: Path) -> None:
    """Drop the layer (the published files are the whole truth without it)."""
    directory = group_dir / LAYER
    with contextlib.suppress(OSError):
        (directory / MANIFEST).unlink(missing_ok=True)
    if directory.is_dir():
        for entry in directory.iterdir():
            entry.unlink(missing_ok=True)


__all__ = ["LAYER", "build", "published_files", "read_files", "remove"]
