"""``LocalStore``: the embedded feature store's Python API (contracts.md 1).

Every write (an ingestion chunk, a ``put_records`` call, a delete) goes through the write
protocol of :mod:`fsgen.store.commit`: under the store's lock, atomic across the offline and
online stores, recovered after a kill. Re-running an ingestion appends
the same (identifier, event time) again with a later ``api_invocation_time``; readers see only
that latest write (see :mod:`fsgen.store.offline`), and the online store
takes it because its event time is equal (semantics 3: ties, later write wins). So a re-run
adds no visible record.
"""

from __future__ import annotations

import contextlib
import math
import re
import shlex
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fsgen import audit
from fsgen.errors import IngestError, NotFound, StoreError
from fsgen.runtime.aggwrite import SeenEventsError
from fsgen.runtime.bulk import BlockResult, process_many
from fsgen.runtime.encoding import FRACTIONAL, format_event_time, parse_event_time
from fsgen.runtime.ingest import IngestResult, check_years
from fsgen.runtime.ingest import run as run_pipeline
from fsgen.runtime.pipeline import GroupRuntime, coerce, composite_identifier
from fsgen.runtime.sources import SourceError
from fsgen.store import iceberg, layer, offline
from fsgen.store.commit import ChunkWriter, Processed, WriteProtocol, print_wait, processed_of
from fsgen.store.online import OnlineStore

if TYPE_CHECKING:
    import sqlite3

    import pandas as pd

    from fsgen.config import ProjectConfig
    from fsgen.spec import GroupSpec, ProjectSpec


COMMIT_ROWS = 1_000_000
"""records of an ingestion committed together (see :meth:`LocalStore.ingest`)"""
COMMIT_BYTES = 256 << 20
"""and at most this much Arrow data held for one commit"""


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


class LocalStore(WriteProtocol):
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
        self.on_wait = on_wait or print_wait
        self.online = OnlineStore(self.root / "online.sqlite", clock=clock)
        self._runtimes: dict[str, GroupRuntime] = {}
        self._groups: dict[str, GroupSpec] = {g.name: g for g in spec.groups}
        self._adopted: dict[str, tuple[bool, bool]] = {}
        """groups served with a runtime of their own (see :meth:`adopt`) -> (online, offline)"""
        self._formats: dict[str, str] = {}
        """adopted groups' offline table formats"""
        self._init_writes()
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
        self.release_lock_file()

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------- groups

    def adopt(
        self,
        runtime: GroupRuntime,
        *,
        online: bool = True,
        offline: bool = True,
        table_format: str = "Glue",
    ) -> None:
        """Store and serve group ``runtime.name`` with ``runtime`` instead of the project's
        definition: a group deployed with a definition of its own (``fsgen serve``'s
        CreateFeatureGroup, or a later UpdateFeatureGroup of it). ``online`` / ``offline``
        say which stores it has. Records written before keep their values; added features
        become new (empty) columns. Its records are read and written through every method
        below, like a declared group's; its runtime has no transformations (records arrive as
        stored values). ``table_format``: its offline store's (``Glue`` or ``Iceberg``)."""
        with self._thread_lock:
            self._runtimes[runtime.name] = runtime
            self._adopted[runtime.name] = (online, offline)
            self._formats[runtime.name] = table_format
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

    def table_format(self, group: str) -> str:
        if group in self._adopted:
            return self._formats.get(group, "Glue")
        return self.group_spec(group).offline.table_format

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
        run_id: str | None = None,
        commit_rows: int = COMMIT_ROWS,
        duplicates: str = "refuse",
    ) -> IngestResult:
        """Validate, transform and write every record of ``source`` (CSV/Parquet/JSONL path
        or DataFrame). ``runtime`` lets a generated batch job pass its own GroupRuntime.
        Rejections go to ``rejects`` (JSON lines) when given; ``read == written + rejected``.
        ``workers``: processes that validate and transform while this one writes (default:
        one per CPU but one for files over 8 MB, else none); the result does not depend on it.

        Chunks of ``chunk_rows`` records are committed together once ``commit_rows`` records
        (or :data:`COMMIT_BYTES` of Arrow data) are held, each such group atomically across
        both stores: one file per event-time hour and one online upsert per record identifier
        per group, instead of per chunk (the upserts were most of a run's CPU). A killed run
        leaves whole groups only; the result does not depend on either size.

        ``duplicates`` (an aggregation group's events that the offline history holds from an
        earlier ingestion): ``refuse`` the source before anything is written, ``skip`` them,
        or ``allow`` them as new events (README: Aggregations, "duplicates")."""
        rt = runtime or self.runtime(group)
        if rt.name != group:
            raise IngestError(f"runtime is for group {rt.name!r}, not {group!r}")
        run_id = run_id or offline.new_run_id()
        spec = self._groups.get(group)
        aggregations = None
        if spec is not None and spec.aggregations and group not in self._adopted:
            from fsgen.runtime.aggwrite import AggregationRuntime

            aggregations = AggregationRuntime(rt, tuple(a.runtime() for a in spec.aggregations))
        sink = self.writer(group, run_id, pipelined=aggregations is None)
        if aggregations is None:
            sink.coalesce, sink.coalesce_bytes = max(commit_rows, 1), COMMIT_BYTES
        try:
            return run_pipeline(
                rt,
                source,
                sink,
                rejects=rejects,
                fmt=fmt,
                chunk_rows=chunk_rows,
                workers=workers,
                progress=progress,
                on_finish=self.finish_run,
                close_fds=[self._lock_fd] if self._lock_fd is not None else [],
                run_id=run_id,
                aggregations=aggregations,
                duplicates=duplicates,
            )
        except (SourceError, SeenEventsError) as exc:
            raise IngestError(str(exc)) from None
        finally:
            with contextlib.suppress(Exception):  # a failed run already raised its error
                sink.close()

    def rebuild_states(
        self, group: str, ids: Sequence[str] | None = None
    ) -> tuple[int, list[tuple[str, str]]]:
        """Rebuild an aggregation group's online states from its offline event history (the
        backfill, without a file): every entity of the history, or ``ids``. The states follow
        the current definitions, so this repairs the states a changed window, hop, lateness
        or function left refused, also of entities only the stream ever wrote. Returns the
        number rebuilt and, per entity whose state would not fit a record, (id, reason)."""
        from fsgen.runtime.aggwrite import AggregationRuntime
        from fsgen.runtime.aggwrite import rebuild_states as rebuild

        spec = self.group_spec(group)
        if not spec.aggregations:
            raise StoreError(f"{group}: not an aggregation group: it has no states to rebuild")
        art = AggregationRuntime(self.runtime(group), tuple(a.runtime() for a in spec.aggregations))
        known = offline.event_entities(art, self.root / "offline" / group)
        if ids is not None:
            unknown = [i for i in ids if i not in known]
            if unknown:
                raise StoreError(
                    f"{group}: no events in the offline history for "
                    f"{', '.join(map(repr, unknown))}: nothing was rebuilt"
                )
            known = {i: known[i] for i in ids}
        refused: list[tuple[str, str]] = []
        if not known:
            return 0, refused

        def step(history: object) -> BlockResult:
            states, no = rebuild(art, history, known, time.time())  # type: ignore[arg-type]
            refused.extend(no)
            return states

        sink = self.writer(group)
        try:
            rebuilt = sink.rebuild_states(art, list(known), step)
        finally:
            sink.close()
        return rebuilt, refused

    def finish_run(self, result: IngestResult, error: str | None) -> None:
        """The run's entry in the audit trail (and, when it finished, in the runs table)."""
        if error is None:
            self._log_run(result)
        audit.record_ingest(self.root, result, error=error)

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
        self.writer(group).write(rt, processed_of(rt, columns, seconds))
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
        self._known(runtime.name)
        seconds = block.seconds
        if not seconds:
            return 0
        if not (offline.MIN_SECONDS <= min(seconds) and max(seconds) <= offline.MAX_SECONDS) or (
            not all(map(math.isfinite, seconds))
        ):
            raise StoreError(f"{runtime.event_time}: event time outside years 1..9999")
        writer = self.writer(runtime.name)
        writer.targets = (online_store, offline_store)
        writer.write(runtime, processed_of(runtime, block.columns, seconds))
        return len(seconds)

    def put_raw(self, group: str, rows: Sequence[dict[str, object]]) -> BlockResult:
        """Validate and transform raw rows with the group's runtime and write the accepted ones;
        the result's ``errors`` name the rejected rows (the stream path)."""
        rt = self.runtime(group)
        block = check_years(rt, process_many(rt, list(rows)))
        if block.rows:
            self.writer(group).write(rt, processed_of(rt, block.columns, block.seconds))
        return block

    def delete_record(
        self,
        group: str,
        record_id: str,
        event_time: object,
        hard: bool = False,
        *,
        online_store: bool = True,
        offline_store: bool = True,
    ) -> DeleteResult:
        """SageMaker's DeleteRecord. The delete applies online when its event time is >= the
        stored record's (ties: the later write wins, as for puts); then SoftDelete keeps a
        deleted marker and HardDelete removes the row. An older SoftDelete leaves the online
        record alone; an older HardDelete is refused (SageMaker: ValidationError) and
        writes nothing. Every delete that is not refused appends a tombstone offline.
        ``online_store`` / ``offline_store`` False leave that store alone (DeleteRecord's
        TargetStores)."""
        rt = self.runtime(group)
        record_id = stored_id(rt, record_id)
        canonical, seconds = event_time_value(rt, event_time)
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
                    "the stored record's; nothing deleted (SageMaker refuses it: ValidationError)"
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
            targets=(online_store, offline_store),
        )
        has_offline = self._targets(rt.name)[1] and offline_store
        return DeleteResult(
            group, record_id, canonical, hard, bool(applied) and applied[0], has_offline
        )

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
        return self.online.get(rt, stored_id(rt, record_id), feature_names, now)

    def hidden_states(self, group: str, since: float) -> list[tuple[str, str]]:
        """An aggregation group's entities whose online state a SoftDelete with an event time
        later than ``since`` hides: (record id, the delete's event time). A state record's
        EventTime is its write time, so the online store's latest-event-time rule keeps every
        state written before that time out of reach (GetRecord returns nothing)."""
        rt = self._runtimes.get(group) or self.runtime(group)
        hidden = self.online.deleted_after(rt, since)
        return [(rid, str(format_event_time("String", t))) for rid, t in hidden.items()]

    def missing_reason(self, group: str, record_id: str, *, now: float | None = None) -> str:
        """Why :meth:`get_record` returns None for ``record_id`` at ``now``: soft-deleted (the
        online row is a deleted marker), its TTL expired, hard-deleted (no online row, an
        offline tombstone), or never written."""
        rt = self._runtimes.get(group) or self.runtime(group)
        record_id = stored_id(rt, record_id)
        status = self.online.status(rt, record_id)
        if status is not None:
            seconds, expires, deleted = status
            if deleted:
                return (
                    f"soft-deleted at {format_event_time('String', seconds)} (SoftDelete; a "
                    "record with a later event time writes it again)"
                )
            if expires is not None:
                from fsgen.plan.render import duration

                at = "" if now is None else f" (before --as-of {format_event_time('String', now)})"
                ttl = duration(round(expires - seconds))  # the TTL in force at its write
                return (
                    f"its TTL expired at {format_event_time('String', expires)}{at}: event "
                    f"time {format_event_time('String', seconds)} + the group's TTL of {ttl} "
                    "when it was written"
                )
            return "the online record is not readable"  # not reached: get_record found none
        records, tombstone = self._offline_trace(group, rt, record_id)
        if tombstone is not None:
            return (
                f"hard-deleted at {tombstone} (HardDelete removed the online record; the "
                "offline store keeps its history and the tombstone)"
            )
        if group not in self._adopted and self.group_spec(group).aggregations:
            reason = self._no_state_reason(group, record_id, records)
            if reason is not None:
                return reason
        if records:
            return (
                f"the online store never held it; the offline store has {records:,} "
                "record(s) of it (written to the offline store only)"
            )
        archive = self.root / "archive" / group
        if archive.is_dir():  # a replace or destroy moved the earlier history there
            return (
                "no record was written for this id since the group was last created (it was "
                f"replaced or destroyed before; its earlier history is in {archive})"
            )
        return "no record was ever written for this id"

    def _no_state_reason(self, group: str, record_id: str, events: int) -> str | None:
        """Why an aggregation group's entity has no state record: a refusal on record (a state
        over 350 KB), else what the offline store holds of it; None when neither tells."""
        from fsgen.store.refusals import find_state_refusal

        refusal = find_state_refusal(self.root, group, record_id)
        held = (
            f"the offline store holds its {events:,} event(s), which training sets read, "
            "while serving reads it as the empty state"
            if events
            else "no event of it was written"
        )
        if refusal is not None:
            return f"its state was refused, not written: {refusal.describe()}; {held}"
        if events:
            return (
                f"the online store holds no state for it; {held}. No refusal of its state is "
                "on record (a state over SageMaker's 350 KB record is a <state> reject of "
                f"the run that wrote the events: `fsgen history --kind ingest --group {group}` "
                "lists the runs' rejects files); `fsgen backfill "
                f"{shlex.quote(group)} {shlex.quote(record_id)}` rebuilds it from its events"
            )
        return None

    def _offline_trace(
        self, group: str, rt: GroupRuntime, record_id: str
    ) -> tuple[int, str | None]:
        """(offline rows of ``record_id`` that are not tombstones, the newest tombstone's
        event time or None), from the files the local engines read."""
        import duckdb

        files = self.read_files(group)
        if not files:
            return 0, None
        ident, et = offline._q(rt.identifier), offline._q(rt.event_time)
        row = (
            duckdb.connect()
            .execute(
                f"SELECT count(*) FILTER (WHERE NOT is_deleted), max({et}) FILTER (WHERE "
                f"is_deleted) FROM {offline.files_source_sql(files)} "
                f"WHERE CAST({ident} AS VARCHAR) = ?",
                [record_id],
            )
            .fetchone()
        )
        if row is None or row[1] is None:
            return (0 if row is None else int(row[0] or 0)), None
        seconds = parse_event_time(rt.event_time_kind, row[1])
        return int(row[0] or 0), str(format_event_time("String", seconds))

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
        ids = [stored_id(rt, r) for r in record_ids]
        return self.online.batch_get(rt, ids, feature_names, now)

    def expiry(self, group: str, record_ids: Sequence[str]) -> list[float | None]:
        """The online ExpiresAt (epoch seconds, None without TTL or record) of each record,
        as written (EventTime + the TTL in force at its write, or its own TtlDuration)."""
        rt = self._runtimes.get(group) or self.runtime(group)
        return self.online.expiry(rt, [stored_id(rt, r) for r in record_ids])

    def read_offline(self, group: str, dedup: bool = True) -> pd.DataFrame:
        """Offline records as a DataFrame: the visible ones (latest write per identifier and
        event time; an aggregation group's events: per identifier, event time, sequence and
        hash, so events at one time stay distinct and copies of one are one), or with
        ``dedup=False`` every row ever appended."""
        from fsgen.spec import EVENT_HASH_COLUMN, EVENT_SEQUENCE_COLUMN

        # a group created through the API (fsgen serve) has no aggregations
        events = () if group in self._adopted else self.group_spec(group).aggregations
        also = (EVENT_SEQUENCE_COLUMN, EVENT_HASH_COLUMN) if events else ()
        if self.table_format(group) == iceberg.ICEBERG:
            return iceberg.read_offline(self.runtime(group), self.root, dedup, also=also)
        return offline.read_offline(self.runtime(group), self.offline_dir(group), dedup, also=also)

    def compact(self, group: str) -> tuple[int, int]:
        """Merge small files per partition without changing any query result, then merge the
        whole history into the compacted layer the local engines read (fsgen.store.layer);
        returns the published files (before, after). An Iceberg group's files are rewritten
        through one Iceberg commit (see :func:`fsgen.store.iceberg.compact`)."""
        with self.lock(f"compact {group}"):
            if self.table_format(group) == iceberg.ICEBERG:
                return iceberg.compact(self.runtime(group), self.root)
            gdir = self.offline_dir(group)
            counts = offline.compact(self.runtime(group), gdir)
            layer.build(gdir, layer.published_files(gdir))
            return counts

    def read_files(self, group: str) -> list[str]:
        """The files the local engines read for ``group``: an Iceberg group's current data
        files; else the compacted layer's and the published files written after it (or every
        published file without a valid layer)."""
        if self.table_format(group) == iceberg.ICEBERG:
            return iceberg.data_file_names(self.root, group)
        gdir = self.offline_dir(group)
        return layer.read_files(gdir, layer.published_files(gdir))

    def drop_group(self, group: str) -> None:
        """Delete a group's online and offline data (a destroyed or replaced group)."""
        with self.lock(f"drop {group}"):
            self.online.drop(group)
            iceberg.forget(self.root, group)
            shutil.rmtree(self.root / "offline" / group, ignore_errors=True)
            self._layout_checked.discard(group)
            self._tables = {t for t in self._tables if t[0] != group}

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


def event_time_value(rt: GroupRuntime, value: object) -> tuple[object, float]:
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


_INT_TEXT = re.compile(r"[+-]?[0-9]+")


def stored_id(rt: GroupRuntime, record_id: object) -> str:
    """The record identifier as the store keys it. A record is keyed by its typed key values,
    so an Integral key written as ``007`` or ``+7`` is stored as ``7``: a read or delete that
    names it ``007`` finds that record (a delete keyed otherwise would write a tombstone for
    record 7 offline and leave record 7 served online)."""
    text = str(record_id)
    types = {f.name: f.type for f in rt.fields}
    parts = [text] if len(rt.keys) == 1 else _split_composite(text)
    if len(parts) != len(rt.keys):
        return text
    canonical: list[object] = [
        str(int(part)) if types.get(key) == "int" and _INT_TEXT.fullmatch(part) else part
        for key, part in zip(rt.keys, parts, strict=True)
    ]
    return str(canonical[0]) if len(rt.keys) == 1 else composite_identifier(canonical)


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


__all__ = ["ChunkWriter", "DeleteResult", "LocalStore", "Processed"]
