"""The local store's write protocol: one writer at a time, and every chunk atomic across
the offline and online stores, surviving a kill at any moment.

Per chunk of records (ingestion chunk, ``put_records`` call or delete), all under the store's
write lock (``<store>/.lock``, fcntl.flock; a second writer waits and says who holds it):

1. write the chunk's Parquet files into ``offline/<group>/_staging/``;
2. one SQLite transaction: the online upserts plus a journal row naming the staged files;
   its COMMIT is the chunk's commit point;
3. ``os.replace`` each staged file into ``offline/<group>/data/...`` (for a group whose
   offline store is an Iceberg table, then one Iceberg append of those files:
   :mod:`fsgen.store.iceberg`);
4. delete the journal row.

A kill before 2 commits leaves only staging files, which recovery deletes: the chunk never
happened. A kill after it leaves a journal row, and recovery finishes step 3 (roll forward):
the chunk happened, in both stores. Recovery runs whenever the lock is taken, so every writer
(and ``LocalStore.open``) first repairs what a killed one left.

:class:`WriteProtocol` is the part of :class:`fsgen.store.LocalStore` that does this;
:class:`ChunkWriter` is the store's sink (:class:`fsgen.runtime.sinks.Sink`).

The lock stays on ``fcntl.flock`` rather than the filelock package: the store writes who holds
it into the lock file and closes the descriptor in forked transform workers (so a worker that
outlives a killed writer cannot keep the lock); filelock opens the file with O_TRUNC on every
attempt (a waiter would erase the holder's line) and keeps its descriptor private.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fsgen.errors import FsgenError
from fsgen.runtime.bulk import BlockResult
from fsgen.runtime.pipeline import GroupRuntime
from fsgen.runtime.sinks import RecordRejected, check_value_sizes
from fsgen.runtime.sources import DATAFRAME_SOURCE
from fsgen.store import iceberg, offline
from fsgen.store.online import OnlineStore, latest_rows

if TYPE_CHECKING:
    import sqlite3
    from contextlib import ExitStack

    import pyarrow as pa

    from fsgen.runtime.aggwrite import (
        AggregationRuntime,
        Event,
        HeldState,
        History,
        Seen,
        Stored,
        Writes,
    )
    from fsgen.spec import GroupSpec


class WriteProtocol:
    """Lock, commit and recovery over ``root`` (a mixin of LocalStore, which provides
    ``root``, ``online``, ``clock``, ``on_wait`` and ``group_spec``)."""

    root: Path
    online: OnlineStore
    clock: Callable[[], float]
    on_wait: Callable[[str], None]

    def group_spec(self, group: str) -> GroupSpec:
        raise NotImplementedError

    def _known(self, group: str) -> None:
        """Raise NotFound unless the store holds ``group``."""
        self.group_spec(group)

    def _targets(self, group: str) -> tuple[bool, bool]:
        """(online, offline): which stores the group has."""
        spec = self.group_spec(group)
        return spec.online.enabled, spec.offline.enabled

    def table_format(self, group: str) -> str:
        """The group's offline table format, ``Glue`` or ``Iceberg`` (fsgen.store.iceberg)."""
        return self.group_spec(group).offline.table_format

    def _init_writes(self) -> None:
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._lock_fd: int | None = None
        self._last_api_us = 0
        self._staged = False
        self._layout_checked: set[str] = set()
        self._tables: set[tuple[str, tuple[str, ...]]] = set()

    def release_lock_file(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def writer(self, group: str, run_id: str | None = None, pipelined: bool = False) -> ChunkWriter:
        """The store as a :class:`~fsgen.runtime.sinks.Sink`, committing each chunk
        atomically (``pipelined``: commits run on a background thread, overlapping the next
        chunk's transformation; ``close()`` waits and re-raises a failure)."""
        self._known(group)
        return ChunkWriter(self, run_id or offline.new_run_id(), pipelined)

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
        hours: list[offline.HourPart] | None = None,
    ) -> None:
        """Commit one chunk (see the module docstring). ``hours``: the rows of ``table``
        already split by event-time hour (:func:`fsgen.store.offline.hour_parts`), used
        for a Glue-layout group's files instead of splitting here."""
        has_online, has_offline = self._targets(rt.name)
        has_online, has_offline = has_online and targets[0], has_offline and targets[1]
        with self.lock(f"write {rt.name}"):
            api_us = self._next_api(table.num_rows)
            write_us = max(time.time_ns() // 1000, int(api_us[-1]) + 1)
            pairs: list[tuple[Path, Path]] = []
            staging: _Background | None = None
            gdir = self.root / "offline" / rt.name
            is_iceberg = has_offline and self._offline_table(rt, gdir) == iceberg.ICEBERG
            if has_offline:
                if hours is not None and not is_iceberg:
                    parts = offline.sagemaker_parts(hours, api_us, write_us, deleted)
                else:
                    full = offline.with_sagemaker_columns(table, api_us, write_us, deleted)
                    parts = (
                        iceberg.split_by_partition(rt, full)
                        if is_iceberg
                        else offline.split_by_hour(full, seconds)
                    )
                job = _Background(offline.write_staged, gdir, run_id, chunk, parts, write_us)
                if table.num_rows < OVERLAP_ROWS:
                    pairs = job.run()
                else:
                    staging = job.start()
            con = self.online.connection()
            try:
                con.execute("BEGIN IMMEDIATE")
                if online_part is not None and has_online:
                    online_part(con)
                if staging is not None:  # the Parquet files, written meanwhile
                    pairs = staging.result()
                listed = [
                    [str(s.relative_to(self.root)), str(f.relative_to(self.root))] for s, f in pairs
                ]
                con.execute(
                    "INSERT INTO _fsgen_journal VALUES (?, ?, ?, ?)",
                    (
                        run_id,
                        chunk,
                        rt.name,
                        json.dumps(
                            {"format": iceberg.ICEBERG, "group": rt.name, "files": listed}
                            if is_iceberg
                            else listed
                        ),
                    ),
                )
                con.execute("COMMIT")
            except BaseException:
                if staging is not None:  # no file may appear after the clean-up below
                    pairs = staging.settled()
                if con.in_transaction:
                    con.execute("ROLLBACK")
                for staged, _ in pairs:
                    staged.unlink(missing_ok=True)
                raise
            offline.publish(pairs)
            if is_iceberg:
                finals = [os.path.abspath(f) for _, f in pairs]
                iceberg.append(self.root, rt.name, finals, f"{run_id}:{chunk}", recover=False)
            con.execute(
                "DELETE FROM _fsgen_journal WHERE run_id = ? AND chunk = ?", (run_id, chunk)
            )
            self._staged = self._staged or bool(pairs)

    def _offline_table(self, rt: GroupRuntime, gdir: Path) -> str:
        """The group's table format, its on-disk layout checked once per store; an Iceberg
        group's table is created (or widened to new features) before a chunk is staged, so
        publishing it can only append."""
        fmt = self.table_format(rt.name)
        if rt.name not in self._layout_checked:
            iceberg.check_layout(gdir, rt.name, fmt)
            self._layout_checked.add(rt.name)
        if fmt == iceberg.ICEBERG:
            key = (rt.name, tuple(c[0] for c in rt.columns))
            if key not in self._tables:
                iceberg.ensure_for(self.root, rt)
                self._tables.add(key)
        return fmt

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
        rows = roll_forward(con, self.root)
        for staging in (self.root / "offline").glob("*/_staging"):
            # an empty staging directory is what every commit leaves (writers reuse it):
            # removing it on each lock would cost two directory operations per chunk
            if tidy or _has_entries(staging):
                shutil.rmtree(staging, ignore_errors=True)
        return rows

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


OVERLAP_ROWS = 10_000
"""a chunk of at least this many rows writes its Parquet files on a thread of its own while
its online upsert runs (both release the GIL for most of their work); a smaller one (a
stream's batch, a put) writes them first, as starting a thread would cost more"""


class _Background:
    """``fn(*args)`` on a thread of its own once :meth:`start` ed (or here, by :meth:`run`);
    :meth:`result` waits for it and returns its value or raises its exception."""

    def __init__(self, fn: Callable[..., list[tuple[Path, Path]]], *args: object) -> None:
        self._fn, self._args = fn, args
        self._value: list[tuple[Path, Path]] = []
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> _Background:
        self._thread = threading.Thread(target=self._call, name="fsgen-staging", daemon=True)
        self._thread.start()
        return self

    def run(self) -> list[tuple[Path, Path]]:
        """Call it here instead (no thread)."""
        return self._fn(*self._args)

    def _call(self) -> None:
        try:
            self._value = self._fn(*self._args)
        except BaseException as exc:
            self._error = exc

    def result(self) -> list[tuple[Path, Path]]:
        assert self._thread is not None
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value

    def settled(self) -> list[tuple[Path, Path]]:
        """Wait for it; what it wrote ([] when it failed: its partial files are staging
        leftovers, which recovery removes)."""
        if self._thread is not None:
            self._thread.join()
        return self._value


class _Busy(Exception):
    """The lock is held and the caller asked not to wait."""


@dataclass
class Processed:
    """Accepted records laid out for one commit: the stored columns as an Arrow table (types
    of the offline store), their event times, and the rows the online store must apply (see
    :func:`fsgen.store.online.latest_rows`)."""

    table: pa.Table
    seconds: np.ndarray
    online: np.ndarray | None
    """None: not chosen yet (a held block: chosen once for the whole commit group)"""
    hours: list[offline.HourPart] | None = None
    """the rows split by event-time hour, when split ahead of the commit"""

    def latest(self, rt: GroupRuntime) -> np.ndarray:
        if self.online is None:
            self.online = latest_rows(rt, self.table, self.seconds)
        return self.online


@dataclass
class _Lay:
    """A held block for the writer thread to lay out ahead of its commit group's commit."""

    rt: GroupRuntime
    processed: Processed
    targets: tuple[bool, bool]


class ChunkWriter:
    """The local store's sink: commits each block as one chunk (see the module docstring),
    in order. Records the store refuses (an event time outside years 1..9999) raise
    :class:`~fsgen.runtime.sinks.RecordRejected`, which a stream handler dead-letters."""

    def __init__(self, store: WriteProtocol, run_id: str, pipelined: bool) -> None:
        self.store = store
        self.run_id = run_id
        self.chunks = 0
        self.targets = (True, True)
        """(online, offline) for the chunks written next (PutRecord's TargetStores)"""
        self.coalesce = 0
        """when > 0, blocks are held and committed together once this many records are held
        (and by ``flush``/``close``), so many small writes -- a replay's batches, an
        ingestion's chunks -- make one file per event-time hour instead of one per hour per
        batch, and one online upsert per record identifier instead of one per batch"""
        self.coalesce_bytes = 0
        """when > 0 (with ``coalesce``), the held blocks are also committed once their Arrow
        data reaches this many bytes, which bounds the memory a wide group's blocks hold (a
        pipelined writer counts each block twice: its copy sorted by event-time hour too)"""
        self._live: _Live | None = None
        """an aggregation group's stream steps held uncommitted (with ``coalesce``)"""
        self._lost: BaseException | None = None
        """why held stream steps were dropped unwritten (a step failed part-way): every
        later step and flush refuses, so no checkpoint moves past them, until ``discard``"""
        self._held: list[tuple[GroupRuntime, tuple[bool, bool], Processed]] = []
        self._held_rows = 0
        self._held_bytes = 0
        self._queue: (
            queue.Queue[_Lay | tuple[GroupRuntime, list[Processed], tuple[bool, bool]] | None]
            | None
        ) = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if pipelined:
            self._queue = queue.Queue(maxsize=1)
            self._thread = threading.Thread(target=self._run, name="fsgen-writer", daemon=True)
            self._thread.start()

    def prepare(self, rt: GroupRuntime, block: BlockResult) -> Processed:
        """Lay a processed block out (pure; the pipeline runs it in its worker processes)."""
        check_value_sizes(rt, block.columns)  # what SageMaker could not take, nor does this
        try:
            return processed_of(rt, block.columns, block.seconds, latest=self.coalesce <= 0)
        except (TypeError, ValueError, OverflowError) as exc:  # pyarrow: a value beyond int64
            raise RecordRejected(f"{rt.name}: records the store cannot hold: {exc}") from None

    def write(self, rt: GroupRuntime, processed: Processed) -> None:
        self._flush_live()
        secs = processed.seconds
        if len(secs) and not (
            offline.MIN_SECONDS <= secs.min() and secs.max() <= offline.MAX_SECONDS
        ):
            raise RecordRejected(f"{rt.name}: {rt.event_time}: event time outside years 1..9999")
        if self.coalesce > 0:
            if self._held and self._held[0][:2] != (rt, self.targets):
                self._flush_held()
            self._held.append((rt, self.targets, processed))
            self._held_rows += processed.table.num_rows
            self._held_bytes += processed.table.nbytes
            if self._queue is not None:  # the writer thread lays it out while we go on
                self._held_bytes += processed.table.nbytes  # its hour-sorted copy
                self._put(_Lay(rt, processed, self.targets))
            if self._held_rows >= self.coalesce or (0 < self.coalesce_bytes <= self._held_bytes):
                self._flush_held()
            return
        self._submit(rt, [processed], self.targets)

    def _flush_held(self) -> None:
        """Commit the held blocks (see ``coalesce``) as one chunk, in the order written."""
        if not self._held:
            return
        held, self._held = self._held, []
        self._held_rows = self._held_bytes = 0
        self._submit(held[0][0], [p for _, _, p in held], held[0][1])

    def discard(self) -> None:
        """Drop the held blocks and stream steps unwritten (a run that stops on an error)."""
        self._held = []
        self._held_rows = self._held_bytes = 0
        self._lost = None
        live, self._live = self._live, None
        if live is not None:
            live.lock.close()

    def _submit(
        self, rt: GroupRuntime, blocks: list[Processed], targets: tuple[bool, bool]
    ) -> None:
        if self._queue is None:
            self._commit(rt, blocks, targets)
            return
        self._put((rt, blocks, targets))

    def _put(self, item: _Lay | tuple[GroupRuntime, list[Processed], tuple[bool, bool]]) -> None:
        if self._error is not None:
            raise self._error
        assert self._queue is not None
        self._queue.put(item)

    def _lay_out(self, item: _Lay) -> None:
        """A held block's rows split by event-time hour ahead of its commit, on the writer
        thread (Arrow's take releases the GIL, so it overlaps the next block's
        transformation; one block's split also costs less than the whole group's). The
        latest rows per identifier are left to the commit: chosen per block and again among
        their union they cost more than once over the group."""
        rt, processed = item.rt, item.processed
        has_offline = self.store._targets(rt.name)[1] and item.targets[1]
        if has_offline and self.store.table_format(rt.name) != iceberg.ICEBERG:
            processed.hours = offline.hour_parts(processed.table, processed.seconds)

    def _merged(self, rt: GroupRuntime, blocks: list[Processed]) -> Processed:
        """Blocks written in order as one: applying them together leaves the same online
        state as one by one, and the offline store the same rows. The latest record per
        identifier is chosen among the blocks' own latest rows (their union holds the
        latest of all); hour parts split ahead are merged, not split again."""
        if len(blocks) == 1:
            return blocks[0]
        import pyarrow as pa

        table = pa.concat_tables([p.table for p in blocks])
        secs = np.concatenate([p.seconds for p in blocks])
        offsets = np.cumsum([0] + [p.table.num_rows for p in blocks[:-1]])
        among = None
        if all(p.online is not None for p in blocks):
            among = np.concatenate(
                [p.online + offset for p, offset in zip(blocks, offsets, strict=True)]  # type: ignore[operator]
            )
        hours = None
        if all(p.hours is not None for p in blocks):
            hours = offline.merge_hour_parts(
                [(p.hours, int(o)) for p, o in zip(blocks, offsets, strict=True)]  # type: ignore[misc]
            )
        return Processed(table, secs, latest_rows(rt, table, secs, among), hours)

    def _commit(
        self, rt: GroupRuntime, blocks: list[Processed], targets: tuple[bool, bool]
    ) -> None:
        processed = self._merged(rt, blocks)
        chunk = self.chunks
        self.chunks += 1
        online = self.store.online

        def online_part(con: sqlite3.Connection) -> None:
            online.upsert(
                con,
                rt,
                online.rows_at(rt, processed.table, processed.seconds, processed.latest(rt)),
            )

        self.store._commit(
            rt,
            self.run_id,
            chunk,
            processed.table,
            processed.seconds,
            online_part,
            targets=targets,
            hours=processed.hours,
        )

    # ------------------------------------------------------------------ aggregation groups
    # (fsgen.runtime.aggwrite.AggregationSink): each call commits under the store's lock, so
    # a state is read, updated and written with no other writer in between

    def update_states(
        self, art: AggregationRuntime, ids: Sequence[str], step: Callable[[Stored], Writes]
    ) -> Writes:
        """Load the states of ``ids``, run ``step``, commit its event rows (offline) and its
        states (online) as one chunk. A stored record holds what the step reads: the event
        time and the state columns."""
        if self.coalesce > 0:
            return self._update_held(art, ids, step)
        self.flush()
        rt = art.group
        names = (rt.event_time, *art.state_columns)
        with self.store.lock(f"write {rt.name}"):
            found = self.store.online.batch_get(rt, list(ids), names, now=float("-inf"))
            stored = {i: r for i, r in zip(ids, found, strict=True) if r is not None}
            writes = step(stored)
            self._commit_aggregation(art, writes.events, writes.states)
        return writes

    def _update_held(
        self, art: AggregationRuntime, ids: Sequence[str], step: Callable[[Stored], Writes]
    ) -> Writes:
        """``update_states`` of a coalescing writer (``stream replay``, ``stream consume``):
        the store's lock is held from the first step to the commit, so no other writer
        changes a state in between; each step reads only the entities not held already and
        updates the held ones in place (:class:`~fsgen.runtime.aggwrite.HeldStored`); the
        steps' event rows and the entities' states are committed together, as one chunk,
        once ``coalesce`` event rows (or :data:`HELD_ENTITIES` entities) are held and by
        ``flush``. Each entity's states are encoded and upserted once per commit, not once
        per step. A commit that fails keeps what is held, for the next ``flush`` to try
        again; ``discard`` drops it."""
        from contextlib import ExitStack

        from fsgen.runtime.aggwrite import HeldStored

        self._check_lost()
        live = self._live
        if live is not None and live.art != art:
            self._flush_live()
            live = None
        self._flush_held()
        if live is not None and (live.rows >= self.coalesce or len(live.held) >= HELD_ENTITIES):
            self._flush_live()  # before this step: a failure leaves this step undone
            live = None
        rt = art.group
        if live is None:
            lock = ExitStack()
            lock.enter_context(self.store.lock(f"write {rt.name}"))
            live = self._live = _Live(art, {}, [], 0, lock)
        held = live.held
        missing = [i for i in ids if i not in held]
        names = (rt.event_time, *art.state_columns)
        found = self.store.online.batch_get(rt, missing, names, now=float("-inf"))
        stored = {i: r for i, r in zip(missing, found, strict=True) if r is not None}
        try:
            writes = step(HeldStored(stored, held))
        except BaseException as exc:
            self.discard()  # the held states may be part-updated: nothing of them is written
            self._lost = exc
            raise
        if writes.events.rows:
            live.events.append(writes.events)
            live.rows += len(writes.events.rows)
        return writes

    def _flush_live(self) -> None:
        """Commit the held stream steps (see ``_update_held``) as one chunk."""
        self._check_lost()
        live = self._live
        if live is None:
            return
        from fsgen.runtime.aggwrite import encode_states, keep_written, state_records

        art = live.art
        encoded = {
            rid: h.encoded if h.encoded is not None else encode_states(h.states)
            for rid, h in live.held.items()
        }
        states = state_records(
            art, {rid: (h.event, encoded[rid], h.at) for rid, h in live.held.items()}
        )
        events = _concatenated(live.events) if live.events else None
        self._commit_aggregation(art, events, states)  # under the lock held
        self._live = None
        live.lock.close()
        keep_written(
            [s for h in live.held.values() for s in h.states],
            [encoded[rid][c] for rid in live.held for c in art.state_columns],
        )

    def write_events(self, art: AggregationRuntime, events: BlockResult) -> None:
        """Commit event rows (offline only) as one chunk."""
        self.flush()
        self._commit_aggregation(art, events, None)

    def retract_events(self, art: AggregationRuntime, versions: BlockResult) -> None:
        """Commit tombstones of event versions (offline only, ``is_deleted``) as one chunk:
        the readers leave a version whose latest row is one out (offline.EVENT_VERSION)."""
        self.flush()
        self._commit_aggregation(art, versions, None, deleted=True)

    def recomputed_events(
        self, art: AggregationRuntime, events: Sequence[Event], source: str
    ) -> list[offline.Recomputed]:
        """The run's events that recompute a version the history holds from an earlier
        ingestion of the same ``source`` (:func:`fsgen.store.offline.recomputed_events`):
        the same row, written before with values the definitions computed then. A version
        another source or the stream wrote is another event, and a DataFrame has no name to
        tell it by: none."""
        if source == DATAFRAME_SOURCE:
            return []
        rt = art.group
        self.flush()
        with self.holding(f"check {rt.name}"):
            found = offline.recomputed_events(
                art,
                self.store.root / "offline" / rt.name,
                [(e.record_id, e.sequence, e.micros, e.content_hash) for e in events],
            )
        if not found:
            return []
        runs = self._runs(rt.name)
        same = {started for started, _, earlier in runs if _same_file(earlier, source)}
        spans = [(s, f) for s, f, _ in runs if s in same]
        return [r for r in found if any(s - 1 <= r.written / 1_000_000 <= f + 1 for s, f in spans)]

    def holding(self, what: str) -> AbstractContextManager[None]:
        """The store's write lock (re-entrant: the commits inside take it again)."""
        return self.store.lock(what)

    def seen_events(self, art: AggregationRuntime, events: Sequence[Event]) -> list[Seen]:
        """The run's events the group's offline history holds from an earlier ingestion
        (:func:`fsgen.store.offline.seen_events`), each with the earlier run's source and
        time (from the runs table; a write of no batch run, e.g. the stream's, by its time)."""
        from fsgen.runtime.aggwrite import Seen
        from fsgen.runtime.encoding import format_event_time

        rt = art.group
        self.flush()
        with self.holding(f"check {rt.name}"):
            found = offline.seen_events(
                art,
                self.store.root / "offline" / rt.name,
                [(e.record_id, e.content_hash, e.sequence) for e in events],
            )
        if not found:
            return []
        runs = self._runs(rt.name)

        def earlier(micros: int) -> str:
            at = micros / 1_000_000
            when = format_event_time("String", at)
            for started, finished, source in runs:
                if started - 1 <= at <= finished + 1:
                    return f"{source} (ingested {when})"
            return f"a write at {when}"

        names: dict[int, str] = {}
        return [
            Seen(pos, names.get(wt) or names.setdefault(wt, earlier(wt)), copy)
            for pos, wt, copy in found
        ]

    def _runs(self, group: str) -> list[tuple[float, float, str]]:
        """The group's completed ingestion runs: (started, finished, source), oldest first."""
        return list(
            self.store.online.connection()
            .execute(
                "SELECT started, finished, source FROM _fsgen_runs WHERE grp = ? ORDER BY started",
                (group,),
            )
            .fetchall()
        )

    def rebuild_states(
        self,
        art: AggregationRuntime,
        ids: Sequence[str],
        step: Callable[[History | None], BlockResult],
    ) -> int:
        """Rebuild the states of ``ids`` from their whole offline event history."""
        self.flush()
        rt = art.group
        with self.store.lock(f"rebuild {rt.name}"):
            history: History = offline.event_history(
                art, self.store.root / "offline" / rt.name, ids
            )
            states = step(history)
            self._commit_aggregation(art, None, states)
        return len(states.rows)

    def _commit_aggregation(
        self,
        art: AggregationRuntime,
        events: BlockResult | None,
        states: BlockResult | None,
        deleted: bool = False,
    ) -> None:
        rt = art.group
        has_events = events is not None and bool(events.rows)
        has_states = states is not None and bool(states.rows)
        if not (has_events or has_states):
            return
        table_of = events if has_events else states  # offline: the events (or nothing)
        assert table_of is not None
        # the online part is the states, not the event rows' latest: none is chosen
        processed = processed_of(rt, table_of.columns, table_of.seconds, latest=False)
        online = self.store.online

        def online_part(con: sqlite3.Connection) -> None:
            if has_states:
                assert states is not None
                online.upsert(con, rt, online.rows_for(rt, states.columns, states.seconds))

        chunk = self.chunks
        self.chunks += 1
        self.store._commit(
            rt,
            self.run_id,
            chunk,
            processed.table,
            processed.seconds,
            online_part,
            deleted=deleted,
            targets=(has_states, has_events),
        )

    def _check_lost(self) -> None:
        if self._lost is not None:
            raise HeldStepsLost(
                f"the stream steps held since the last commit were dropped unwritten when one "
                f"failed ({type(self._lost).__name__}: {self._lost}); nothing since that "
                "commit is written, and its records are read again by the next run"
            )

    def flush(self) -> None:
        """Commit the held blocks and stream steps, then wait for the background commits (a
        pipelined writer), re-raising their failure."""
        self._flush_live()
        self._flush_held()
        if self._queue is not None:
            self._queue.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        assert self._queue is not None
        while True:
            item = self._queue.get()
            if item is None:
                self.store.online.close()  # this thread's connection
                self._queue.task_done()
                return
            if self._error is None:
                try:
                    if isinstance(item, _Lay):
                        self._lay_out(item)
                    else:
                        self._commit(*item)
                except BaseException as exc:  # re-raised in the caller thread
                    self._error = exc
            self._queue.task_done()

    def close(self) -> None:
        self.flush()
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None
        if self._error is not None:
            raise self._error
        self.store.tidy()


class HeldStepsLost(FsgenError):
    """A coalescing writer dropped the stream steps it held (see ``ChunkWriter._lost``)."""


HELD_ENTITIES = 50_000
"""a coalescing writer commits once it holds this many entities' states (their memory)"""


@dataclass
class _Live:
    """An aggregation group's stream steps a coalescing writer holds uncommitted."""

    art: AggregationRuntime
    held: dict[str, HeldState]
    events: list[BlockResult]
    rows: int
    lock: ExitStack
    """the store's lock, held until the commit"""


def _concatenated(blocks: list[BlockResult]) -> BlockResult:
    """Blocks of the same columns as one (rows renumbered)."""
    if len(blocks) == 1:
        return blocks[0]
    columns: dict[str, list[object]] = {name: [] for name in blocks[0].columns}
    seconds: list[float] = []
    for b in blocks:
        for name, values in b.columns.items():
            columns[name] += values
        seconds += b.seconds
    return BlockResult(columns, list(range(len(seconds))), seconds)


def _same_file(a: str, b: str) -> bool:
    """Whether two ingestion sources name the same file (as given, or resolved)."""
    return a == b or os.path.realpath(a) == os.path.realpath(b)


def processed_of(
    rt: GroupRuntime,
    columns: dict[str, list[object]],
    seconds: Sequence[float],
    latest: bool = True,
) -> Processed:
    """``latest``: choose the rows for the online store now (else when committed)."""
    table = offline.records_table(rt, columns)
    secs = np.asarray(seconds, dtype="float64")
    return Processed(table, secs, latest_rows(rt, table, secs) if latest else None)


def roll_forward(con: sqlite3.Connection, root: Path) -> int:
    """Finish step 3 of every chunk whose journal row a killed writer left (call with the
    store's lock held); returns how many."""
    rows = con.execute("SELECT run_id, chunk, files FROM _fsgen_journal").fetchall()
    for run_id, chunk, files in rows:
        entry = json.loads(files)
        listed = entry["files"] if isinstance(entry, dict) else entry
        offline.publish([(root / s, root / f) for s, f in listed])
        if isinstance(entry, dict) and entry.get("format") == iceberg.ICEBERG:
            finals = [os.path.abspath(root / f) for _, f in listed]
            iceberg.append(root, entry["group"], finals, f"{run_id}:{chunk}", recover=True)
        con.execute("DELETE FROM _fsgen_journal WHERE run_id = ? AND chunk = ?", (run_id, chunk))
    return len(rows)


@contextmanager
def settled(root: str | os.PathLike[str], what: str = "read") -> Iterator[int]:
    """A consistent read of the store at ``root``, for readers that do not open a
    :class:`fsgen.store.LocalStore` (``fsgen dataset``, the catalog's statistics, freshness).

    Takes the store's write lock (waiting at most for the chunk being committed), rolls
    forward any chunk a killed writer left inside its commit window, and holds the lock for
    the block: within it no chunk is half-published, online and offline agree, and no writer
    or compaction changes the files being read. Yields the chunks rolled forward. A store
    that does not exist yet is read as it is."""
    import sqlite3

    base = Path(root)
    if not (base / "online.sqlite").exists():
        yield 0
        return
    fd = os.open(base / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {what} since {time.strftime('%H:%M:%S')}".encode(), 0)
        con = sqlite3.connect(base / "online.sqlite", timeout=60.0, isolation_level=None)
        try:
            journal = con.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_fsgen_journal'"
            ).fetchone()
            rolled = roll_forward(con, base) if journal else 0
        finally:
            con.close()
        yield rolled
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _has_entries(directory: Path) -> bool:
    try:
        with os.scandir(directory) as entries:
            return next(entries, None) is not None
    except OSError:
        return False


def print_wait(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


__all__ = ["ChunkWriter", "Processed", "WriteProtocol", "processed_of"]
