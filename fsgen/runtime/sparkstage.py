"""The staged Spark job ``fsgen ingest --engine spark`` runs (:func:`stage`): each task
validates and transforms its splits (:mod:`fsgen.runtime.sparktasks`) and writes every
chunk's stored records (Arrow IPC) and rejects (JSON lines) to a staging directory; the
driver then commits them through the local store's sink in source order
(:mod:`fsgen.store.spark`), so the store's commit protocol (one writer, atomic chunks) holds
and the store, the rejects file and the counts equal ``fsgen ingest``'s. Nothing is committed
before every task has finished: a failed task leaves the store as it was.

The job is a plain RDD of splits (``mapPartitions``) returning one small row per chunk: no
Spark SQL plan, schema parsing or Arrow exchange, which on a fresh JVM cost more than the
tasks themselves at a million rows.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fsgen.runtime.sources import Reject, SourceError
from fsgen.runtime.sparktasks import (
    CHUNK_ROWS,
    ChunkOutput,
    S3Access,
    Split,
    TaskError,
    collect,
    load_runtime,
    plan_splits,
    process_split,
    splits_rdd,
    task_error,
    task_runtime,
)

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class Staged:
    """One chunk's output in the staging directory (paths None when empty)."""

    order: int
    chunk: int
    read: int
    accepted: int
    rejected: int
    records: str | None
    rejects: str | None

    def table(self) -> pa.Table | None:
        if self.records is None:
            return None
        import pyarrow as pa

        with pa.memory_map(self.records) as source:
            return pa.ipc.open_file(source).read_all()

    def reject_list(self) -> list[Reject]:
        if self.rejects is None:
            return []
        with open(self.rejects, encoding="utf-8") as fh:
            return [Reject(**json.loads(line)) for line in fh]


def _stage_partition(
    root: str | None,
    module: str,
    chunk_rows: int,
    staging: str,
    s3: S3Access,
    splits: Iterator[Split],
) -> Iterator[dict[str, object]]:
    rt = task_runtime(root, module)
    for split in splits:
        for out in process_split(rt, split, chunk_rows, s3):
            try:
                staged = _write(out, os.path.join(staging, f"{out.order:06d}-{out.chunk:09d}"))
            except TaskError:
                raise
            except Exception as exc:
                raise task_error(f"{out.where}: staging", exc) from None
            yield asdict(staged)


def _write(out: ChunkOutput, stem: str) -> Staged:
    import pyarrow as pa

    records = rejects = None
    if out.records is not None:
        records = stem + ".arrow"
        with pa.OSFile(records, "wb") as sink:
            with pa.ipc.new_file(sink, out.records.schema) as writer:
                writer.write_table(out.records)
    if out.rejects:
        rejects = stem + ".rejects.jsonl"
        with open(rejects, "w", encoding="utf-8", errors="backslashreplace") as fh:
            fh.writelines(json.dumps(r.to_json(), allow_nan=True) + "\n" for r in out.rejects)
    accepted = out.records.num_rows if out.records is not None else 0
    return Staged(out.order, out.chunk, out.read, accepted, len(out.rejects), records, rejects)


def stage(
    spark: SparkSession,
    module: str,
    sources: Sequence[str],
    staging: str | os.PathLike[str],
    *,
    root: str | None = None,
    fmt: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    parts: int | None = None,
    s3: S3Access | None = None,
) -> list[Staged]:
    """Run the job's splits into ``staging`` (a directory every Spark task can write: local
    mode); returns each chunk's output in source order. Raises SourceError before any task
    runs when a source is not there, SparkJobError (one line) when a task fails."""
    load_runtime(root, module)  # the module imports here, before a task does
    s3 = s3 or S3Access.from_environment()
    splits = plan_splits(sources, fmt, spark.sparkContext.defaultParallelism, parts, s3)
    for s in splits:
        if not s.source.startswith("s3://") and not Path(s.source).is_file():
            raise SourceError(f"{s.source}: no such file")
    Path(staging).mkdir(parents=True, exist_ok=True)
    fn = functools.partial(_stage_partition, root, module, chunk_rows, str(staging), s3)
    rows = collect(splits_rdd(spark, splits).mapPartitions(fn).collect)
    return sorted((Staged(**r) for r in rows), key=lambda s: (s.order, s.chunk))  # type: ignore[arg-type]


__all__ = ["Staged", "stage"]
