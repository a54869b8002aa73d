"""``fsgen ingest GROUP PATH --engine spark``: the group's generated Spark job
(``generated/groups/<g>/spark_job.py``) on a local Spark (``local[2]``), into the local store.

The Spark tasks validate and transform (:func:`fsgen.runtime.sparkstage.stage`: the batch
pipeline's reader, block transform and featuredefs functions, per chunk); this process then
commits their chunks in source order through the store's own sink, so the store's commit
protocol (one writer at a time, every chunk atomic across offline and online) is the same as
``fsgen ingest``'s and the stored records, the rejects file (same rows, same order) and the
counts are too. Staged chunks live under ``<store>/_spark/<run>/`` until the run ends.

Nothing is committed before every task has finished, so a failed task (an unreadable file,
the featuredefs not importing on a worker, a staging write failing) leaves the store as it
was and is reported as one :class:`~fsgen.errors.IngestError` line naming the file, chunk
and rows and the cause. The commits run in the store's pipelined writer (a background
thread), so reading the next staged chunk overlaps the commit of the one before.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsgen.errors import IngestError
from fsgen.runtime.ingest import IngestResult, RejectSink
from fsgen.runtime.sources import SourceError
from fsgen.store import offline
from fsgen.store.commit import Processed
from fsgen.store.online import latest_rows

if TYPE_CHECKING:
    from fsgen.config import ProjectConfig
    from fsgen.runtime.pipeline import GroupRuntime
    from fsgen.spec import GroupSpec
    from fsgen.store.local import LocalStore


def job_module(config: ProjectConfig, group: GroupSpec) -> str:
    """The generated Spark job's module name, after checking that it exists and that its
    header's spec hash is the definitions' (the Spark tasks import it, not the definitions)."""
    from fsgen.bind import package_name
    from fsgen.codegen.views import group_header
    from fsgen.generated_imports import generated_module_name

    module = f"groups.{package_name(group.name)}.spark_job"
    name = generated_module_name(config, module)
    path = config.generated_path / (module.replace(".", "/") + ".py")
    if not path.is_file():
        raise IngestError(f"{name} does not exist; run 'fsgen generate'")
    with path.open(encoding="utf-8") as fh:
        head = [fh.readline() for _ in range(5)]
    if f"# spec-hash: {group_header(group).spec_hash}\n" not in head:
        raise IngestError(f"{name} is stale; run 'fsgen generate'")
    return name


def ingest(
    config: ProjectConfig,
    store: LocalStore,
    runtime: GroupRuntime,
    source: str | Path,
    rejects: str | Path | None = None,
    *,
    spark: Any = None,
    fmt: str | None = None,
    chunk_rows: int | None = None,
    parts: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    run_id: str | None = None,
) -> IngestResult:
    """Ingest ``source`` with the Spark job into ``store`` (see the module docstring);
    ``spark``: a session to use (default: the active one or a new ``local[2]``)."""
    from fsgen.runtime import sparkstage, sparktasks

    module = job_module(config, store.group_spec(runtime.name))
    started = time.perf_counter()
    run_id = run_id or offline.new_run_id()
    result = IngestResult(runtime.name, str(source), run_id=run_id)
    sink_rejects = RejectSink(rejects)
    staging = store.root / "_spark" / run_id
    try:
        session = spark if spark is not None else sparktasks.session()
        try:
            staged = sparkstage.stage(
                session,
                module,
                [str(source)],
                staging,
                root=str(config.root),
                fmt=fmt,
                chunk_rows=chunk_rows or sparktasks.CHUNK_ROWS,
                parts=parts,
            )
        except (SourceError, sparktasks.SparkJobError) as exc:
            raise IngestError(str(exc)) from None
        sink = store.writer(runtime.name, run_id, pipelined=True)
        for out in staged:
            for reject in out.reject_list():
                sink_rejects.add(reject)
            table = out.table()
            if table is not None:
                seconds = table.column(sparktasks.SECONDS).to_numpy()
                records = table.drop_columns([sparktasks.SECONDS])
                sink.write(
                    runtime, Processed(records, seconds, latest_rows(runtime, records, seconds))
                )
                result.written += out.accepted
            result.read += out.read
            result.valid += out.accepted
            if progress is not None:
                progress(out.read, out.rejected)
        sink.close()
    except BaseException as exc:
        _finish(result, sink_rejects, started)
        if isinstance(exc, Exception):
            store.finish_run(result, str(exc))
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _finish(result, sink_rejects, started)
    store.finish_run(result, None)
    return result


def _finish(result: IngestResult, rejects: RejectSink, started: float) -> None:
    result.rejected = rejects.count
    result.samples = list(rejects.samples)
    result.rejects_path = rejects.close()
    result.seconds = time.perf_counter() - started
