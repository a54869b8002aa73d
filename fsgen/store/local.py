"""``LocalStore``: the embedded feature store's Python API (contracts.md 1).

Write protocol, per chunk of records (ingestion chunk, ``put_records`` call or delete), all
under the store's write lock (``<store>/.lock``, fcntl.flock; a second writer waits and says
so):

1. write the chunk's Parquet files into ``offline/<group>/_staging/``;
2. one SQLite transaction: the online upserts plus a journal row naming the staged files;
   its COMMIT is the chunk's commit point;
3. ``os.replace`` each staged file into ``offline/<group>/data/...``;
4. delete the journal row.

A kill before 2 commits leaves only staging files, which recovery deletes: the chunk never
happened. A kill after it leaves a journal row, and recovery finishes step 3 (roll forward):
the chunk happened, in both stores. Recovery runs whenever the lock is taken, so every writer
(and ``LocalStore.open``) first repairs what a killed one left. Re-running an ingestion appends
the same (identifier, event time) again with a later ``api_invocation_time``; readers see only
that latest write (see :mod:`fsgen.store.offline`), and the online store
takes it because its event time is equal (semantics 3: ties, later write wins). So a re-run
adds no visible record.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import queue
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fsgen import audit
from fsgen.errors import IngestError, NotFound, StoreError
from fsgen.runtime.bulk import BlockResult, process_many
from fsgen.runtime.encoding import FRACTIONAL, format_event_time, parse_event_time
from fsgen.runtime.pipeline import GroupRuntime, RecordError, coerce
from fsgen.store import offline
from fsgen.store.ingest import IngestResult, Processed, RejectSink, ingest_chunks, read_source
from fsgen.store.online import OnlineStore, latest_rows

if TYPE_CHECKING:
    import sqlite3

    import pandas as pd
    import pyarrow as pa

    from fsgen.config import ProjectConfig
    from fsgen.spec import GroupSpec, ProjectSpec


@dataclass(frozen=True)
class DeleteResult:
    """What a DeleteRecord did: ``online_applied`` is False when a newer record was kept
    (SoftDelete with an older event time); a tombstone is always written then."""

    group: str
    record_id: str
    event_time: object
    hard: bool
    online_applied: bool
    tombstone: bool


class LocalStore:
    """The local feature store rooted at ``root`` (``config.store_path``)."""

    def __init__(
        self,
        root: Path,
        spec: ProjectSpec,
        *,
        clock: Callable[[], float] = time.time,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self.root = Path(root)
        self.spec = spec
        self.clock = clock
        self.on_wait = on_wait or _print_wait
        self.online = OnlineStore(self.root / "online.sqlite", clock=clock)
        self._runtimes: dict[str, GroupRuntime] = {}
        self._groups: dict[str, GroupSpec] = {g.name: g for g in spec.groups}
        self._adopted: dict[str, tuple[bool, bool]] = {}
        """groups served with a runtime of their own (see :meth:`adopt`) -> (online, offline)"""
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._lock_fd: int | None = None
        self._last_api_us = 0
        self._staged = False
        self.root.mkdir(parents=True, exist_ok=True)
        self._init_schema()

    @classmethod
    def open(cls, config: ProjectConfig, spec: ProjectSpec, **kwargs: object) -> LocalStore:
        """Open (creating if needed) the store of a project and repair a killed writer's
        leftovers if no other writer is active."""
        store = cls(config.store_path, spec, **kwargs)  # type: ignore[arg-type]
        store.recover(wait=False)
        return store

    def close(self) -> None:
        self.tidy()
        self.online.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------- groups

    def adopt(self, runtime: GroupRuntime, *, online: bool = True, offline: bool = True) -> None:
        """Store and serve group ``runtime.name`` with ``runtime`` instead of the project's
        definition: a group deployed with a definition of its own (``fsgen serve``'s
        CreateFeatureGroup, or a later UpdateFeatureGroup of it). ``online`` / ``offline``
        say which stores it has. Records written before keep their values; added features
        become new (empty) columns. Its records are read and written through every method
        below, like a declared group's; its runtime has no transformations (records arrive as
        stored values)."""
        with self._thread_lock:
            self._runtimes[runtime.name] = runtime
            self._adopted[runtime.name] = (online, offline)
            self.online.forget(runtime.name)

    def _known(self, group: str) -> None:
        if group not in self._groups and group not in self._adopted:
            self.spec.group(group)  # raises NotFound with the known names

    def _targets(self, group: str) -> tuple[bool, bool]:
        """(online, offline): which stores the group has."""
        if group in self._adopted:
            return self._adopted[group]
        spec = self.group_spec(group)
        return spec.online.enabled, spec.offline.enabled

    def group_spec(self, group: str) -> GroupSpec:
        if group not in self._groups:
            self.spec.group(group)  # raises NotFound with the known names
        return self._groups[group]

    def runtime(self, group: str) -> GroupRuntime:
        rt = self._runtimes.get(group)
        if rt is None:
            from fsgen.bind import group_runtime

            rt = self._runtimes[group] = group_runtime(self.group_spec(group))
        return rt

    def generated_runtime(
        self, group: str, generated_package: str = "generated"
    ) -> tuple[GroupRuntime, str]:
        """The GroupRuntime of the generated batch job (``generated/groups/<g>/batch_job.py``)
        when it exists and matches the definitions, else the one bound from the spec; with a
        note saying which (and why) for the user."""
        import importlib

        bound = self.runtime(group)
        snake = re.sub(r"[^0-9a-zA-Z_]", "_", group).lower()
        snake = f"_{snake}" if snake[:1].isdigit() else snake
        module_name = f"{generated_package}.groups.{snake}.batch_job"
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            return bound, "generated batch job not found; using the definitions directly"
        generated = getattr(module, "RUNTIME", None)
        if not isinstance(generated, GroupRuntime):
            return bound, f"{module_name} has no RUNTIME; using the definitions directly"
        if generated != bound:
            return bound, (
                f"{module_name} is stale (run 'fsgen generate'); using the definitions directly"
            )
        return generated, f"running {module_name}"

    def offline_dir(self, group: str) -> Path:
        """``<store>/offline/<group>``; its files are ``data/year=/month=/day=/hour=/*.parquet``."""
        self._known(group)
        return self.root / "offline" / group

    # -------------------------------------------------------------------------- writes

    def ingest(
        self,
        group: str,
        source: object,
        rejects: str | Path | None = None,
        *,
        runtime: GroupRuntime | None = None,
        chunk_rows: int = 100_000,
        fmt: str | None = None,
        workers: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> IngestResult:
        """Validate, transform and write every record of ``source`` (CSV/Parquet/JSONL path
        or DataFrame). ``runtime`` lets a generated batch job pass its own GroupRuntime.
        Rejections go to ``rejects`` (JSON lines) when given; ``read == written + rejected``.
        ``workers``: processes that validate and transform while this one writes (default:
        one per CPU but one for files over 8 MB, else none); the result does not depend on it.
        """
        rt = runtime or self.runtime(group)
        if rt.name != group:
            raise IngestError(f"runtime is for group {rt.name!r}, not {group!r}")
        self.group_spec(group)
        started = time.perf_counter()
        run_id = offline.new_run_id()
        result = IngestResult(
            group, str(source) if isinstance(source, str | Path) else "<DataFrame>", run_id
        )
        sink = RejectSink(Path(rejects) if rejects is not None else None)
        writer = self.writer(group, run_id, pipelined=True)
        try:
            ingest_chunks(
                rt,
                read_source(source, chunk_rows, fmt),
                writer,
                sink,
                result,
                progress,
                _workers(source, workers),
                close_fds=[self._lock_fd] if self._lock_fd is not None else [],
            )
        except Exception as exc:  # the audit trail records failed runs too, then re-raise
            result.seconds = time.perf_counter() - started
            audit.record_ingest(self.root, result, error=str(exc))
            raise
        finally:
            sink.close()
            writer.close()
        result.rejects_path = sink.path if sink.count else None
        result.seconds = time.perf_counter() - started
        self._log_run(result)
        audit.record_ingest(self.root, result)
        return result

    def writer(self, group: str, run_id: str | None = None, pipelined: bool = False) -> ChunkWriter:
        """A :class:`~fsgen.store.ingest.RecordWriter` committing each chunk atomically
        (``pipelined``: commits run on a background thread, overlapping the next chunk's
        transformation; ``close()`` waits and re-raises a failure)."""
        self._known(group)
        return ChunkWriter(self, run_id or offline.new_run_id(), pipelined)

    def put_records(self, group: str, records: Sequence[dict[str, object]]) -> int:
        """Write already-transformed stored records (as ``GroupRuntime.process`` returns them)
        in order, like PutRecord calls: offline every one, online the latest. Returns the
        number written; a malformed record raises before anything is written."""
        rt = self.runtime(group)
        if not records:
            return 0
        names = [c[0] for c in rt.columns]
        columns: dict[str, list[object]] = {n: [] for n in names}
        seconds: list[float] = []
        for i, record in enumerate(records):
            missing = [k for k in (rt.identifier, *rt.keys, rt.event_time) if record.get(k) is None]
            if missing:
                raise StoreError(f"record {i}: {missing[0]!r} is missing")
            try:
                seconds.append(rt.event_seconds(record))
            except (TypeError, ValueError) as exc:
                raise StoreError(f"record {i}: {rt.event_time}: {exc}") from None
            if not offline.MIN_SECONDS <= seconds[-1] <= offline.MAX_SECONDS:
                raise StoreError(f"record {i}: {rt.event_time}: outside years 1..9999")
            for n in names:
                columns[n].append(record.get(n))
        self.writer(group).write(rt, _processed_of(rt, columns, seconds))
        return len(records)

    def put_block(
        self,
        runtime: GroupRuntime,
        block: BlockResult,
        *,
        online_store: bool = True,
        offline_store: bool = True,
    ) -> int:
        """Write the accepted records of a processed column block (what
        :func:`~fsgen.runtime.bulk.process_block` or ``process_many`` returns for
        ``runtime``) as one atomic chunk, like :meth:`put_records` without building a dict
        per record. Returns the number written. An event time outside years 1..9999 raises
        StoreError and nothing is written. ``online_store`` / ``offline_store`` False skip that
        store (PutRecord's TargetStores); the online expiry is ``runtime.ttl_seconds``."""
        if runtime.name not in self._groups:
            self._known(runtime.name)  # NotFound with the known names
        seconds = block.seconds
        if not seconds:
            return 0
        if not (offline.MIN_SECONDS <= min(seconds) and max(seconds) <= offline.MAX_SECONDS) or (
            not all(map(math.isfinite, seconds))
        ):
            raise StoreError(f"{runtime.event_time}: event time outside years 1..9999")
        writer = self.writer(runtime.name)
        writer.targets = (online_store, offline_store)
        writer.write(runtime, _processed_of(runtime, block.columns, seconds))
        return len(seconds)

    def put_raw(self, group: str, rows: Sequence[dict[str, object]]) -> BlockResult:
        """Validate and transform raw rows with the group's runtime and write the accepted ones;
        the result's ``errors`` name the rejected rows (the stream path)."""
        rt = self.runtime(group)
        block = process_many(rt, list(rows))
        bad = [
            j
            for j, sec in enumerate(block.seconds)
            if not offline.MIN_SECONDS <= sec <= offline.MAX_SECONDS
        ]
        if bad:
            block.errors = sorted(
                [
                    *block.errors,
                    *(
                        (
                            block.rows[j],
                            RecordError(rt.event_time, "event time outside years 1..9999"),
                        )
                        for j in bad
                    ),
                ],
                key=lambda e: e[0],
            )
            keep = [j for j in range(len(block.rows)) if j not in set(bad)]
            block.columns = {n: [v[j] for j in keep] for n, v in block.columns.items()}
            block.rows = [block.rows[j] for j in keep]
            block.seconds = [block.seconds[j] for j in keep]
        if block.rows:
            self.writer(group).write(rt, _processed_of(rt, block.columns, block.seconds))
        return block

    def delete_record(
        self, group: str, record_id: str, event_time: object, hard: bool = False
    ) -> DeleteResult:
        """SageMaker's DeleteRecord. The delete applies online when its event time is >= the
        stored record's (ties: the later write wins, as for puts); then SoftDelete keeps a
        deleted marker and HardDelete removes the row. An older SoftDelete leaves the online
        record alone; an older HardDelete is refused (SageMaker: ValidationException) and
        writes nothing. Every delete that is not refused appends a tombstone offline."""
        rt = self.runtime(group)
        record_id = str(record_id)
        canonical, seconds = _event_time_value(rt, event_time)
        keys = _keys_of(rt, record_id)
        columns: dict[str, list[object]] = {c[0]: [None] for c in rt.columns}
        for k, v in keys.items():
            columns[k] = [v]
        columns[rt.identifier] = [keys.get(rt.identifier, record_id)]
        columns[rt.event_time] = [canonical]
        applied: list[bool] = []

        def online_part(con: sqlite3.Connection) -> None:
            stored = self.online.stored_seconds(con, rt, record_id)
            newer_kept = stored is not None and seconds < stored
            if newer_kept and hard:
                raise StoreError(
                    f"{group} {record_id!r}: HardDelete event time {canonical} is older than "
                    "the stored record's; nothing deleted (SageMaker: ValidationException)"
                )
            if not newer_kept:
                if hard:
                    self.online.hard_delete(con, rt, record_id)
                else:
                    self.online.soft_delete(
                        con,
                        rt,
                        record_id,
                        {**keys, rt.identifier: columns[rt.identifier][0]},
                        seconds,
                        canonical,
                    )
            applied.append(not newer_kept)

        self._commit(
            rt,
            offline.new_run_id(),
            0,
            offline.records_table(rt, columns),
            np.asarray([seconds]),
            online_part,
            deleted=True,
        )
        return DeleteResult(group, record_id, canonical, hard, applied[0], True)

    # --------------------------------------------------------------------------- reads

    def get_record(
        self,
        group: str,
        record_id: str,
        feature_names: Sequence[str] | None = None,
        *,
        now: float | None = None,
    ) -> dict[str, object] | None:
        """The online record (native values), or None when missing, expired or deleted."""
        rt = self._runtimes.get(group) or self.runtime(group)
        return self.online.get(rt, str(record_id), feature_names, now)

    def batch_get(
        self,
        group: str,
        record_ids: Sequence[str],
        feature_names: Sequence[str] | None = None,
        *,
        now: float | None = None,
    ) -> list[dict[str, object] | None]:
        """Records in the order of ``record_ids``; None where missing, expired or deleted."""
        rt = self._runtimes.get(group) or self.runtime(group)
        return self.online.batch_get(rt, [str(r) for r in record_ids], feature_names, now)

    def expiry(self, group: str, record_ids: Sequence[str]) -> list[float | None]:
        """The online ExpiresAt (epoch seconds, None without TTL or record) of each record,
        as written (EventTime + the TTL in force at its write, or its own TtlDuration)."""
        rt = self._runtimes.get(group) or self.runtime(group)
        return self.online.expiry(rt, [str(r) for r in record_ids])

    def read_offline(self, group: str, dedup: bool = True) -> pd.DataFrame:
        """Offline records as a DataFrame: the visible ones (latest write per identifier and
        event time), or with ``dedup=False`` every row ever appended."""
        return offline.read_offline(self.runtime(group), self.offline_dir(group), dedup)

    def compact(self, group: str) -> tuple[int, int]:
        """Merge small files per partition without changing any query result; returns
        (files before, files after)."""
        with self.lock(f"compact {group}"):
            return offline.compact(self.runtime(group), self.offline_dir(group))

    def drop_group(self, group: str) -> None:
        """Delete a group's online and offline data (a destroyed or replaced group)."""
        with self.lock(f"drop {group}"):
            self.online.drop(group)
            shutil.rmtree(self.root / "offline" / group, ignore_errors=True)

    def runs(self, group: str | None = None) -> list[dict[str, object]]:
        """Completed ingestion runs, newest first."""
        con = self.online.connection()
        sql = (
            "SELECT run_id, grp, source, started, finished, read, written, rejected FROM "
            "_fsgen_runs" + (" WHERE grp = ?" if group else "") + " ORDER BY finished DESC"
        )
        cols = ("run_id", "group", "source", "started", "finished", "read", "written", "rejected")
        return [
            dict(zip(cols, r, strict=True)) for r in con.execute(sql, (group,) if group else ())
        ]

    # ------------------------------------------------------------------ commit protocol

    def _commit(
        self,
        rt: GroupRuntime,
        run_id: str,
        chunk: int,
        table: pa.Table,
        seconds: np.ndarray,
        online_part: Callable[[sqlite3.Connection], None] | None,
        deleted: bool = False,
        targets: tuple[bool, bool] = (True, True),
    ) -> None:
        has_online, has_offline = self._targets(rt.name)
        has_online, has_offline = has_online and targets[0], has_offline and targets[1]
        with self.lock(f"write {rt.name}"):
            api_us = self._next_api(table.num_rows)
            write_us = max(time.time_ns() // 1000, int(api_us[-1]) + 1)
            pairs: list[tuple[Path, Path]] = []
            gdir = self.root / "offline" / rt.name
            if has_offline:
                full = offline.with_sagemaker_columns(table, api_us, write_us, deleted)
                pairs = offline.write_staged(
                    gdir, run_id, chunk, offline.split_by_hour(full, seconds), write_us
                )
            con = self.online.connection()
            try:
                con.execute("BEGIN IMMEDIATE")
                if online_part is not None and has_online:
                    online_part(con)
                con.execute(
                    "INSERT INTO _fsgen_journal VALUES (?, ?, ?, ?)",
                    (
                        run_id,
                        chunk,
                        rt.name,
                        json.dumps(
                            [
                                [str(s.relative_to(self.root)), str(f.relative_to(self.root))]
                                for s, f in pairs
                            ]
                        ),
                    ),
                )
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                for staged, _ in pairs:
                    staged.unlink(missing_ok=True)
                raise
            offline.publish(pairs)
            con.execute(
                "DELETE FROM _fsgen_journal WHERE run_id = ? AND chunk = ?", (run_id, chunk)
            )
            self._staged = self._staged or bool(pairs)

    def _next_api(self, n: int) -> np.ndarray:
        """Strictly increasing api_invocation_time (µs) per record, so the latest write of an
        (identifier, event time) is always identifiable, also within one chunk."""
        base = max(int(self.clock() * 1_000_000), self._last_api_us + 1)
        self._last_api_us = base + n - 1
        return np.arange(base, base + n, dtype="int64")

    def recover(self, wait: bool = True) -> int:
        """Finish or discard what a killed writer left; returns the chunks rolled forward."""
        try:
            with self.lock("recover", wait=wait):
                return self._recover_locked(tidy=True)
        except _Busy:
            return 0

    def tidy(self) -> None:
        """Remove the (empty) staging directories this store's writes left, if no other
        writer is active; a later writer's recovery removes them otherwise."""
        if self._staged:
            self.recover(wait=False)
            self._staged = False

    def _recover_locked(self, tidy: bool = False) -> int:
        con = self.online.connection()
        rows = con.execute("SELECT run_id, chunk, files FROM _fsgen_journal").fetchall()
        for run_id, chunk, files in rows:
            offline.publish([(self.root / s, self.root / f) for s, f in json.loads(files)])
            con.execute(
                "DELETE FROM _fsgen_journal WHERE run_id = ? AND chunk = ?", (run_id, chunk)
            )
        for staging in (self.root / "offline").glob("*/_staging"):
            # an empty staging directory is what every commit leaves (writers reuse it):
            # removing it on each lock would cost two directory operations per chunk
            if tidy or _has_entries(staging):
                shutil.rmtree(staging, ignore_errors=True)
        return len(rows)

    # ---------------------------------------------------------------------------- lock

    @contextmanager
    def lock(self, what: str, wait: bool = True) -> Iterator[None]:
        """The store's write lock: one writer at a time across threads and processes. A
        writer that has to wait says who holds it (``on_wait``), then waits."""
        with self._thread_lock:
            if self._depth == 0:
                self._acquire(what, wait)
                try:
                    self._recover_locked()
                except BaseException:
                    self._release()
                    raise
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._release()

    def _acquire(self, what: str, wait: bool) -> None:
        if self._lock_fd is None:
            self._lock_fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        fd = self._lock_fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise _Busy from None
            holder = os.pread(fd, 500, 0).decode("utf-8", "replace").strip() or "another process"
            self.on_wait(f"waiting for the store lock on {self.root} (held by {holder})")
            fcntl.flock(fd, fcntl.LOCK_EX)
        info = f"pid {os.getpid()}: {what} since {time.strftime('%H:%M:%S')}".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, info, 0)

    def _release(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    # -------------------------------------------------------------------------- schema

    def _init_schema(self) -> None:
        con = self.online.connection()
        con.execute(
            "CREATE TABLE IF NOT EXISTS _fsgen_journal (run_id TEXT NOT NULL, "
            "chunk INTEGER NOT NULL, grp TEXT NOT NULL, files TEXT NOT NULL, "
            "PRIMARY KEY (run_id, chunk))"
        )
        con.execute(
            "CREATE TABLE IF NOT EXISTS _fsgen_runs (run_id TEXT PRIMARY KEY, "
            "grp TEXT NOT NULL, source TEXT NOT NULL, started REAL NOT NULL, "
            "finished REAL NOT NULL, read INTEGER NOT NULL, written INTEGER NOT NULL, "
            "rejected INTEGER NOT NULL)"
        )

    def _log_run(self, result: IngestResult) -> None:
        now = self.clock()
        self.online.connection().execute(
            "INSERT OR REPLACE INTO _fsgen_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                result.run_id,
                result.group,
                result.source,
                now - result.seconds,
                now,
                result.read,
                result.written,
                result.rejected,
            ),
        )


def _workers(source: object, workers: int | None) -> int:
    if workers is not None:
        return workers
    cpus = os.cpu_count() or 1
    if cpus < 2 or not isinstance(source, str | Path):
        return 0
    try:
        big = Path(source).stat().st_size > 8 << 20
    except OSError:
        return 0
    return cpus - 1 if big else 0  # this process is busy writing: one CPU is its


class _Busy(Exception):
    """The lock is held and the caller asked not to wait."""


class ChunkWriter:
    """Commits each block as one chunk (see the module docstring), in order."""

    def __init__(self, store: LocalStore, run_id: str, pipelined: bool) -> None:
        self.store = store
        self.run_id = run_id
        self.chunks = 0
        self.targets = (True, True)
        """(online, offline) for the chunks written next (PutRecord's TargetStores)"""
        self._queue: queue.Queue[tuple[GroupRuntime, Processed] | None] | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if pipelined:
            self._queue = queue.Queue(maxsize=1)
            self._thread = threading.Thread(target=self._run, name="fsgen-writer", daemon=True)
            self._thread.start()

    def write(self, rt: GroupRuntime, processed: Processed) -> None:
        if self._queue is None:
            self._commit(rt, processed)
            return
        if self._error is not None:
            raise self._error
        self._queue.put((rt, processed))

    def _commit(self, rt: GroupRuntime, processed: Processed) -> None:
        chunk = self.chunks
        self.chunks += 1
        online = self.store.online

        def online_part(con: sqlite3.Connection) -> None:
            online.upsert(
                con, rt, online.rows_at(rt, processed.table, processed.seconds, processed.online)
            )

        self.store._commit(
            rt,
            self.run_id,
            chunk,
            processed.table,
            processed.seconds,
            online_part,
            targets=self.targets,
        )

    def _run(self) -> None:
        assert self._queue is not None
        while True:
            item = self._queue.get()
            if item is None:
                self.store.online.close()  # this thread's connection
                return
            if self._error is None:
                try:
                    self._commit(*item)
                except BaseException as exc:  # re-raised in the caller thread
                    self._error = exc

    def close(self) -> None:
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None
        if self._error is not None:
            raise self._error
        self.store.tidy()


def _processed_of(
    rt: GroupRuntime, columns: dict[str, list[object]], seconds: Sequence[float]
) -> Processed:
    table = offline.records_table(rt, columns)
    secs = np.asarray(seconds, dtype="float64")
    return Processed(table, secs, latest_rows(rt, table, secs), [], table.num_rows)


def _has_entries(directory: Path) -> bool:
    try:
        with os.scandir(directory) as entries:
            return next(entries, None) is not None
    except OSError:
        return False


def _print_wait(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _event_time_value(rt: GroupRuntime, value: object) -> tuple[object, float]:
    """(canonical stored event time, epoch seconds) of a user-given event time."""
    try:
        if rt.event_time_kind == FRACTIONAL:
            number = coerce("float", value)
            seconds = parse_event_time(FRACTIONAL, number)
        else:
            seconds = parse_event_time(rt.event_time_kind, value)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{rt.name}: event time {value!r}: {exc}") from None
    return format_event_time(rt.event_time_kind, seconds), seconds


def _keys_of(rt: GroupRuntime, record_id: str) -> dict[str, object]:
    """Key values from a record identifier (composite identifiers are length-prefixed)."""
    parts = [record_id] if len(rt.keys) == 1 else _split_composite(record_id)
    if len(parts) != len(rt.keys):
        raise NotFound(
            f"{rt.name}: {record_id!r} is not a record identifier of this group "
            f"(expected {len(rt.keys)} key parts)"
        )
    types = {f.name: f.type for f in rt.fields}
    out: dict[str, object] = {}
    for key, part in zip(rt.keys, parts, strict=True):
        try:
            out[key] = coerce(types.get(key, "str"), part)
        except ValueError as exc:
            raise StoreError(f"{rt.name}: record identifier {key}: {exc}") from None
    if len(rt.keys) > 1:
        out[rt.identifier] = record_id
    return out


def _split_composite(text: str) -> list[str]:
    parts: list[str] = []
    i = 0
    while i < len(text):
        colon = text.find(":", i)
        if colon < 0 or not text[i:colon].isdigit():
            return []
        size = int(text[i:colon])
        parts.append(text[colon + 1 : colon + 1 + size])
        i = colon + 1 + size
        if text[i : i + 1] != ";":
            return []
        i += 1
    return parts


__all__ = ["ChunkWriter", "DeleteResult", "LocalStore"]
