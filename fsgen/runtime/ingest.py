"""The batch pipeline: reader -> column blocks -> bulk transform -> sink.

One loop for every batch entry point -- ``fsgen ingest``, the generated batch job
(``python -m generated.groups.<g>.batch_job``), ``LocalStore.ingest`` and the Python API
(:func:`run`) -- so they accept, reject and count the same records:

- :func:`fsgen.runtime.sources.read_source` yields :class:`Chunk` s (rows the reader cannot
  parse are already rejects, with their row numbers);
- :func:`process_chunk` validates and transforms a chunk block by block with
  :func:`fsgen.runtime.bulk.process_block` (proven equal to ``GroupRuntime.process`` row by
  row); a block-level caller (a Spark partition) can call ``process_block`` on its own columns;
- the sink's ``prepare`` lays the accepted records out (in a worker process when there are
  workers), its ``write`` stores them, chunk by chunk, in source order;
- every reject goes to one :class:`RejectSink` (the rejects file), the counts to one
  :class:`IngestResult`, and ``on_finish`` records the run once (the audit trail).

Accounting invariant: ``read == valid + rejected`` for every run, and ``written == valid``
unless it is a dry run. A record is rejected for failed validation, a transformation that
raised, or an event time outside years 1..9999 (which no partition path can hold).

Standard library only at import time, like the rest of :mod:`fsgen.runtime`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from fsgen.runtime.bulk import BlockResult, fast_block, process_block
from fsgen.runtime.encoding import FRACTIONAL
from fsgen.runtime.pipeline import GroupRuntime, RecordError, outside_years
from fsgen.runtime.sinks import MAX_VALUE_CHARS, PartialWrite, RecordRejected, Sink, block_rows
from fsgen.runtime.sources import Chunk, Needed, Reject, SourceError, read_source, source_name

if TYPE_CHECKING:
    from fsgen.runtime.aggwrite import AggregationRuntime

MIN_SECONDS = -62135596800.0  # 0001-01-01T00:00:00Z
MAX_SECONDS = 253402300799.0  # 9999-12-31T23:59:59Z
BLOCK_ROWS = 4096


@dataclass
class IngestResult:
    """What one run did. ``read == valid + rejected`` always holds; ``written`` is ``valid``
    unless nothing was written (a dry run). ``samples`` are the first rejects (all of them are
    in the rejects file)."""

    group: str
    source: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    read: int = 0
    valid: int = 0
    written: int = 0
    rejected: int = 0
    skipped: int = 0
    """valid events of an aggregation group not written because the offline history holds
    them from an earlier ingestion (``duplicates="skip"``): ``written == valid - skipped``"""
    stored: int = 0
    """valid events of an aggregation group not written because the offline history holds
    them already from an ingestion of the very same rows (the same file again, without
    ``duplicates="skip"``): ``written == valid - skipped - stored``; their states are rebuilt"""
    recomputed: int = 0
    """written events of an aggregation group that the same source's earlier ingestion wrote
    with other values (the definitions changed since): their earlier versions are retracted"""
    rejects_path: Path | None = None
    samples: list[Reject] = field(default_factory=list)
    seconds: float = 0.0
    state_ids: list[str] = field(default_factory=list, repr=False)
    """an aggregation group's entities whose states the run rebuilt (not in :meth:`to_dict`):
    the ones a later SoftDelete can hide (``fsgen ingest`` names those)"""

    @property
    def ok(self) -> bool:
        return self.rejected == 0

    def summary(self) -> str:
        text = (
            f"{self.group}: read {self.read:,}, written {self.written:,}, "
            f"rejected {self.rejected:,}"
        )
        if self.stored:
            text += f", {self.stored:,} already stored (the same rows ingested before)"
        if self.skipped:
            text += f", skipped {self.skipped:,} already ingested"
        if self.recomputed:
            text += (
                f", recomputed {self.recomputed:,} ingested before with other values (their "
                "earlier values retracted)"
            )
        if self.rejected and self.rejects_path is not None:
            text += f" (see {self.rejects_path})"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "group": self.group,
            "source": self.source,
            "run_id": self.run_id,
            "read": self.read,
            "valid": self.valid,
            "written": self.written,
            "rejected": self.rejected,
            "skipped": self.skipped,
            "stored": self.stored,
            "recomputed": self.recomputed,
            "rejects_path": str(self.rejects_path) if self.rejects_path else None,
            "seconds": round(self.seconds, 3),
        }


def check_output_path(path: Path, what: str) -> None:
    """Refuse, before anything is read or created, an output path that cannot become a file:
    one that is a directory, or under a file (the directories up to it are made on first
    write, so they must be directories or not exist)."""
    if path.is_dir():
        raise SourceError(f"{what} {path}: is a directory; nothing was read")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise SourceError(
                    f"{what} {path}: {parent} is a file, not a directory; nothing was read"
                )
            return


class RejectSink:
    """The one rejects writer: JSON lines, one per reject, into a temporary file that becomes
    ``path`` when the run ends (so a crash never leaves a half-written rejects file under the
    final name); keeps the first ``keep`` as samples and, when ``into`` is a list, all.

    When ``path`` already holds rejects (another run, maybe one running at the same time,
    named the same file) this run's lines are appended to it under an exclusive ``flock``,
    whole and fsync'ed: no run's rejects replace another's."""

    def __init__(
        self, path: str | os.PathLike[str] | None, keep: int = 20, into: list[Reject] | None = None
    ) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            check_output_path(self.path, "rejects file")
        self._device = self.path is not None and self.path.exists() and not self.path.is_file()
        """``path`` is no regular file (``/dev/null``, ``/dev/stderr``, a FIFO): written into
        directly, never replaced by a file of ours (nor a temporary file made beside it)"""
        self.keep = keep
        self.into = into
        self.samples: list[Reject] = []
        self.count = 0
        self._fh: IO[str] | None = None
        self._tmp: Path | None = None

    def add(self, reject: Reject) -> None:
        self.count += 1
        if self.into is not None:
            self.into.append(reject)
        if len(self.samples) < self.keep:
            self.samples.append(reject)
        if self.path is not None:
            if self._fh is None and self._device:
                self._fh = self.path.open("a", encoding="utf-8", errors="backslashreplace")
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._tmp = self.path.with_name(
                    f".{self.path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
                )
                # a lone surrogate in a raw value is written as its JSON escape
                self._fh = self._tmp.open(
                    "w", encoding="utf-8", errors="backslashreplace", newline="\n"
                )
            self._fh.write(reject.line() + "\n")

    def discard(self) -> None:
        """Forget the rejects so far, written nowhere: a run refused before it wrote anything
        (its rejects come again, once, when the file is ingested)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            if self._tmp is not None:  # a device got its lines: they cannot be taken back
                self._tmp.unlink(missing_ok=True)
        self.count = 0
        self.samples = []
        if self.into is not None:
            self.into.clear()

    def close(self) -> Path | None:
        """Finish the file; returns its path when there were rejects."""
        if self._fh is None:
            return None
        self._fh.close()
        self._fh = None
        if self._device:
            return self.path
        assert self._tmp is not None and self.path is not None
        while not self._publish():
            pass  # another run replaced the file while we waited for its lock: lock the new one
        return self.path

    def _publish(self) -> bool:
        """Move or append the temporary file into ``path`` under its lock; False when the
        file locked is no longer the one under that name (try again)."""
        assert self._tmp is not None and self.path is not None
        with self.path.open("a+b") as dest:
            fcntl.flock(dest.fileno(), fcntl.LOCK_EX)
            try:
                if os.stat(self.path).st_ino != os.fstat(dest.fileno()).st_ino:
                    return False
                size = dest.seek(0, os.SEEK_END)
                if size == 0:
                    os.replace(self._tmp, self.path)  # the usual case: a file of our own
                    return True
                with self._tmp.open("rb") as src:
                    dest.seek(size - 1)
                    if dest.read(1) != b"\n":  # a torn line: start a line of our own
                        dest.write(b"\n")
                    shutil.copyfileobj(src, dest)
                dest.flush()
                os.fsync(dest.fileno())
                self._tmp.unlink()
                return True
            finally:
                fcntl.flock(dest.fileno(), fcntl.LOCK_UN)


# ------------------------------------------------------------------------------- the loop


@dataclass
class Prepared:
    """A processed chunk: the sink's layout of its accepted records, and its rejects."""

    data: object
    accepted: int
    rejects: list[Reject]
    read: int
    progress: int = 0


OnFinish = Callable[[IngestResult, str | None], None]


def run(
    rt: GroupRuntime,
    source: object,
    sink: Sink | None,
    *,
    rejects: str | os.PathLike[str] | list[Reject] | None = None,
    fmt: str | None = None,
    chunk_rows: int = 100_000,
    workers: int | None = 0,
    progress: Callable[[int, int], None] | None = None,
    on_finish: OnFinish | None = None,
    close_fds: Sequence[int] = (),
    run_id: str | None = None,
    aggregations: AggregationRuntime | None = None,
    duplicates: str = "refuse",
) -> IngestResult:
    """Ingest one source (a path, ``s3://`` URI or DataFrame) into ``sink`` (None: a dry run
    that validates and transforms only). ``rejects`` is a JSON-lines path or a list to
    extend. ``workers``: processes that validate and transform while this one writes (None:
    one per CPU but one for files over 8 MB); the outcome does not depend on it.
    ``on_finish(result, error)`` is called once, also when the run fails (then re-raised).
    ``progress(rows, rejected)`` is called after each chunk is written, with the chunk's
    records read and rejected.

    ``aggregations`` (the group's :class:`~fsgen.runtime.aggwrite.AggregationRuntime`) runs
    the aggregation step instead of the row loop: event rows offline, then the touched
    entities' states rebuilt online (``sink`` is then an aggregation sink). ``duplicates``
    says what happens to its events that the offline history already holds from an earlier
    ingestion (:func:`fsgen.runtime.aggwrite.ingest_chunks`): ``refuse`` the source (nothing
    written), ``skip`` them, or ``allow`` them as new events.

    Raises :class:`fsgen.runtime.sources.SourceError` before anything is written when the
    source cannot be read."""
    started = time.perf_counter()
    result = IngestResult(rt.name, source_name(source))
    if run_id is not None:
        result.run_id = run_id
    sink_rejects = RejectSink(
        None if isinstance(rejects, list) else rejects,
        into=rejects if isinstance(rejects, list) else None,
    )
    try:
        with collector_paused():
            chunks = read_source(source, chunk_rows, fmt, needed_columns(rt))
            if aggregations is not None:  # an aggregation group: events offline, states online
                from fsgen.runtime.aggwrite import ingest_chunks as ingest_events

                ingest_events(
                    aggregations,
                    chunks,
                    sink,  # type: ignore[arg-type]
                    sink_rejects,
                    result,
                    progress,
                    duplicates=duplicates,
                )
            else:
                count = _workers(source, workers)
                with read_ahead(chunks) if count == 0 else contextlib.nullcontext(chunks) as ahead:
                    ingest_chunks(rt, ahead, sink, sink_rejects, result, progress, count, close_fds)
            if sink is not None:
                sink.close()
    except BaseException as exc:
        result.rejected = max(result.rejected, sink_rejects.count)
        result.rejects_path = sink_rejects.close()
        result.seconds = time.perf_counter() - started
        if on_finish is not None and isinstance(exc, Exception):
            on_finish(result, str(exc))
        raise
    result.rejects_path = sink_rejects.close()
    result.seconds = time.perf_counter() - started
    if on_finish is not None:
        on_finish(result, None)
    return result


@contextlib.contextmanager
def read_ahead(chunks: Iterator[Chunk]) -> Iterator[Iterator[Chunk]]:
    """``chunks``, read one chunk ahead on a thread of their own: a reader spends most of
    its time in pyarrow (parsing, decoding), which releases the GIL, so the next chunk is
    read while this thread transforms the current one. Chunks and a reader's error arrive
    in order, exactly where they would without it. Leaving the block stops the reader (and
    closes its file) without reading further. Not with forked workers: a thread running
    while the pool forks could leave a worker with a lock held."""
    import queue
    import threading

    done = object()
    ahead: queue.Queue[object] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
            put(done)
        except BaseException as exc:  # handed to the consumer, raised where it occurred
            put(_Failed(exc))
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def consume() -> Iterator[Chunk]:
        while True:
            item = ahead.get()
            if item is done:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]

    reader = threading.Thread(target=read, name="fsgen-read-ahead", daemon=True)
    reader.start()
    try:
        yield consume()
    finally:
        stop.set()
        reader.join()


@dataclass
class _Failed:
    error: BaseException


def needed_columns(rt: GroupRuntime) -> Needed:
    """The columns a CSV header or a Parquet / DataFrame schema must have for ``rt``: its
    required raw fields (entity key and event time included); the event time's timestamps are
    left for the pipeline to read (``Needed.instants``)."""
    return Needed(
        rt.name,
        tuple(f.name for f in rt.fields if not f.optional),
        instants=(rt.event_time,),
    )


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the block (restored after): a run makes
    millions of objects (values, argument tuples, upsert rows), none of them in a cycle, and
    the collections they triggered -- each scanning every container still alive -- cost about
    a tenth of a run's CPU. Reference counting frees them as before."""
    import gc

    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def ingest_chunks(
    rt: GroupRuntime,
    chunks: Iterable[Chunk],
    sink: Sink | None,
    rejects: RejectSink,
    result: IngestResult,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 0,
    close_fds: Sequence[int] = (),
) -> IngestResult:
    """Process and write every chunk, in source order; count into ``result``.

    ``workers > 0`` validates, transforms and prepares chunks in that many forked processes
    (the runtime, its functions and the sink's ``prepare`` are inherited, never pickled)
    while this process writes, in source order. ``close_fds`` are closed in the workers (a
    store's lock file: a worker outliving a killed writer must not keep its lock)."""
    prepare = sink.prepare if sink is not None else _count_only
    for prepared in _prepared(rt, chunks, prepare, workers, tuple(close_fds)):
        for reject in prepared.rejects:
            rejects.add(reject)
        if prepared.accepted and sink is not None:
            try:
                sink.write(rt, prepared.data)
            except PartialWrite as exc:  # counted, then raised with the run's own total
                result.written += exc.written
                result.read += prepared.read
                result.rejected = rejects.count
                raise PartialWrite(result.written, exc.error) from exc.error
            result.written += prepared.accepted
        result.read += prepared.read
        result.valid += prepared.accepted
        if progress is not None:
            progress(prepared.read, len(prepared.rejects))
    result.rejected = rejects.count
    result.samples = list(rejects.samples)
    return result


def _count_only(rt: GroupRuntime, block: BlockResult) -> object:
    return None


Prepare = Callable[[GroupRuntime, BlockResult], object]


def _prepared(
    rt: GroupRuntime,
    chunks: Iterable[Chunk],
    prepare: Prepare,
    workers: int,
    close_fds: tuple[int, ...],
) -> Iterator[Prepared]:
    if workers <= 0:
        for chunk in chunks:
            yield prepare_chunk(rt, chunk, prepare)
        return
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        workers,
        mp_context=context,
        initializer=_worker_init,
        initargs=(rt, prepare, close_fds, os.getpid()),
    ) as pool:
        pending: deque[Future[Prepared]] = deque()
        for chunk in chunks:
            pending.append(pool.submit(_worker_process, chunk))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


_WORKER: list[Any] = []
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this (worker) process when its parent dies, so a killed
    ``fsgen ingest`` leaves no worker behind (Linux: prctl PR_SET_PDEATHSIG). Elsewhere a
    thread polls the parent instead."""
    import signal

    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl")
    except (OSError, AttributeError):
        import threading

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, name="fsgen-parent-watch", daemon=True).start()
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def _worker_init(
    rt: GroupRuntime, prepare: Prepare, close_fds: tuple[int, ...], parent: int
) -> None:
    die_with_parent(parent)
    for fd in close_fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    _WORKER[:] = [rt, prepare]


def _worker_process(chunk: Chunk) -> Prepared:
    return prepare_chunk(_WORKER[0], chunk, _WORKER[1])


def prepare_chunk(rt: GroupRuntime, chunk: Chunk, prepare: Prepare) -> Prepared:
    """Validate, transform and lay out one chunk (pure: no store access)."""
    rejected = RejectSink(None, keep=0, into=list(chunk.rejected))
    block = process_chunk(rt, chunk, rejected)
    assert rejected.into is not None
    if chunk.rejected and len(rejected.into) > len(chunk.rejected):
        rejected.into.sort(key=lambda r: r.row)  # the reader's and validation's, in row order
    data = None
    if block.rows:
        try:
            data = prepare(rt, block)
        except RecordRejected:  # a record the sink cannot hold: find it, reject it
            block = _drop_unpreparable(rt, chunk, block, prepare, rejected)
            data = prepare(rt, block) if block.rows else None
    return Prepared(
        data, len(block.rows), rejected.into, chunk.rows + len(chunk.rejected), chunk.progress
    )


def _drop_unpreparable(
    rt: GroupRuntime, chunk: Chunk, block: BlockResult, prepare: Prepare, rejects: RejectSink
) -> BlockResult:
    keep: list[int] = []
    for j, i in enumerate(block.rows):
        try:
            prepare(rt, block_rows(block, j, j + 1))
        except RecordRejected as exc:
            rejects.add(
                Reject(chunk.source, chunk.row_number(i), "<record>", str(exc), chunk.raw(i))
            )
        else:
            keep.append(j)
    if rejects.into is not None:
        rejects.into.sort(key=lambda r: r.row)
    return BlockResult(
        {n: [v[j] for j in keep] for n, v in block.columns.items()},
        [block.rows[j] for j in keep],
        [block.seconds[j] for j in keep],
    )


def process_chunk(
    rt: GroupRuntime, chunk: Chunk, rejects: RejectSink, *, value_limit: bool = True
) -> BlockResult:
    """Validate and transform a chunk; rejections go to ``rejects`` (in row order within
    each block).

    A clean chunk is one block (splitting it costs about a fifth of the transformation, in
    slicing and gathering); a chunk that is not provably easy as a whole is processed in
    blocks of ``BLOCK_ROWS``, so a bad record sends only its own small block row by row."""
    whole = None
    if chunk.rows > BLOCK_ROWS:
        typed = chunk.typed_columns({f.name: f.type for f in rt.fields})
        seconds = chunk.event_seconds(rt.event_time) if rt.event_time_kind != FRACTIONAL else None
        whole = fast_block(rt, typed, chunk.rows, seconds)
    if whole is not None:
        blocks: Iterable[tuple[int, BlockResult]] = [(0, whole)]
    else:
        blocks = _blocks(rt, chunk.columns, chunk.rows)
    out = BlockResult({c[0]: [] for c in rt.columns}, [], [], [])
    for start, raw_block in blocks:
        block = check_record_size(rt, check_years(rt, raw_block), value_limit=value_limit)
        for i, err in block.errors:
            rejects.add(
                Reject(
                    chunk.source,
                    chunk.row_number(start + i),
                    err.field,
                    err.message,
                    chunk.raw(start + i),
                )
            )
        if whole is not None:
            return BlockResult(block.columns, block.rows, block.seconds)
        for name, values in block.columns.items():
            out.columns[name].extend(values)
        out.rows.extend(start + i for i in block.rows)
        out.seconds.extend(block.seconds)
    return out


def _blocks(
    rt: GroupRuntime, columns: dict[str, list[object]], rows: int
) -> Iterator[tuple[int, BlockResult]]:
    for start in range(0, rows, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, rows)
        cols = {n: v[start:stop] for n, v in columns.items()} if (start or stop < rows) else columns
        yield start, process_block(rt, cols, stop - start)


def check_years(rt: GroupRuntime, block: BlockResult) -> BlockResult:
    """The block with records whose event time is outside years 1..9999 moved to its
    errors (no partition path, and no SageMaker event time, can hold them)."""
    from fsgen.runtime.pipeline import RecordError

    secs = block.seconds
    if not secs or (MIN_SECONDS <= min(secs) and max(secs) <= MAX_SECONDS):
        return block
    bad = {j for j, s in enumerate(secs) if not MIN_SECONDS <= s <= MAX_SECONDS}
    keep = [j for j in range(len(block.rows)) if j not in bad]
    errors = [
        *block.errors,
        *(
            (block.rows[j], RecordError(rt.event_time, outside_years(rt.event_time_kind, secs[j])))
            for j in sorted(bad)
        ),
    ]
    return BlockResult(
        {n: [v[j] for j in keep] for n, v in block.columns.items()},
        [block.rows[j] for j in keep],
        [secs[j] for j in keep],
        sorted(errors, key=lambda e: e[0]),
    )


#: SageMaker Feature Store's largest record (PutRecord refuses a bigger one): its features'
#: names and values as strings, UTF-8 (Quotas: "Maximum size of a record: 350 KB")
MAX_RECORD_BYTES = 350 * 1024


def record_bytes(rt: GroupRuntime, columns: dict[str, list[object]], j: int) -> int:
    """The size of row ``j`` as a SageMaker record: each present feature's name and value
    (a collection's elements) as the strings PutRecord sends, in UTF-8 bytes."""
    return sum(feature_bytes(rt, columns, j).values())


def feature_bytes(rt: GroupRuntime, columns: dict[str, list[object]], j: int) -> dict[str, int]:
    """Each present feature's share of row ``j``'s record size (see :func:`record_bytes`)."""
    record = {name: values[j] for name, values in columns.items()}
    sizes: dict[str, int] = {}
    for value in rt.to_sagemaker(record):
        name = str(value["FeatureName"])
        size = len(name.encode("utf-8"))
        if "ValueAsString" in value:
            size += len(str(value["ValueAsString"]).encode("utf-8"))
        else:
            items: list[object] = list(value["ValueAsStringList"])  # type: ignore[call-overload]
            size += sum([len(str(v).encode("utf-8")) for v in items])
        sizes[name] = size
    return sizes


MAX_IDENTIFIER_BYTES = 2 * 1024
"""SageMaker's limit on a record identifier's value (Feature Store quotas: 2 KB)"""


def _check_identifier_size(rt: GroupRuntime, block: BlockResult) -> BlockResult:
    """The block with records whose identifier is over :data:`MAX_IDENTIFIER_BYTES` in UTF-8
    moved to its errors (field: the identifier). Only a column with a value that could be
    over it (more than a quarter of the limit in characters) is measured in bytes."""
    from fsgen.runtime.pipeline import RecordError

    ids = block.columns.get(rt.identifier)
    if not ids or rt._column_types.get(rt.identifier, ("String",))[0] != "String":
        return block  # an Integral identifier is at most 20 characters
    try:
        longest = max(map(len, ids))  # type: ignore[arg-type]  # C speed: String ids are str
    except TypeError:
        longest = -1
    if 0 <= longest and longest * 4 <= MAX_IDENTIFIER_BYTES:
        return block
    texts = [v if isinstance(v, str) else str(v) for v in ids]
    bad = {
        j: size
        for j, text in enumerate(texts)
        if len(text) * 4 > MAX_IDENTIFIER_BYTES
        and (size := len(text.encode("utf-8", "surrogatepass"))) > MAX_IDENTIFIER_BYTES
    }
    if not bad:
        return block
    return _rejected(
        block,
        {
            j: RecordError(
                rt.identifier,
                f"record identifier is {size:,} bytes; SageMaker takes at most "
                f"{MAX_IDENTIFIER_BYTES:,} (2 KB): not written",
            )
            for j, size in bad.items()
        },
    )


def _rejected(block: BlockResult, bad: Mapping[int, RecordError]) -> BlockResult:
    """``block`` with its rows at the positions ``bad`` names moved to its errors."""
    keep = [j for j in range(len(block.rows)) if j not in bad]
    errors = [*block.errors, *((block.rows[j], error) for j, error in sorted(bad.items()))]
    return BlockResult(
        {n: [v[j] for j in keep] for n, v in block.columns.items()},
        [block.rows[j] for j in keep],
        [block.seconds[j] for j in keep],
        sorted(errors, key=lambda e: e[0]),
    )


def check_record_size(
    rt: GroupRuntime, block: BlockResult, *, value_limit: bool = True
) -> BlockResult:
    """The block with records over SageMaker's :data:`MAX_RECORD_BYTES` moved to its errors
    (PutRecord would refuse them on AWS, so no backend stores them). Only a block whose
    upper bound (a character is at most 4 bytes, a number at most 32 characters) is over the
    limit is measured row by row, and only rows whose own bound is over it exactly.

    A value longer than PutRecord takes is its feature's reject; ``value_limit=False`` (an
    aggregation group's events, whose value columns the aggregation checks against its state
    record, naming itself) leaves such a row to that check."""
    from fsgen.runtime.pipeline import RecordError

    if not block.rows:
        return block
    block = _check_identifier_size(rt, block)
    if not block.rows:
        return block
    texts = [n for n, kind, collection, _ in rt.columns if kind == "String" and not collection]
    lists = [n for n, _, collection, _ in rt.columns if collection]
    fixed = 4 * sum(len(n) for n, *_ in rt.columns) + 32 * (len(rt.columns) - len(texts))
    cols = block.columns
    longest = 0
    for n in texts:
        present: list[str] = [v for v in cols[n] if v]  # type: ignore[misc]
        longest += 4 * max(map(len, present), default=0)
    if not lists and fixed + longest <= MAX_RECORD_BYTES:
        return block
    bad: dict[int, RecordError] = {}
    for j in range(len(block.rows)):
        lengths = [(len(v), n) for n in texts if isinstance(v := cols[n][j], str)]
        bound = fixed
        for n in lists:
            elements = cols[n][j]
            if isinstance(elements, list | tuple):
                lengths += [(len(str(e)), n) for e in elements]
                bound += 32 * len(elements)
        bound += 4 * sum(length for length, _ in lengths)
        longest, name = max(lengths, key=lambda t: t[0], default=(0, ""))
        if longest > MAX_VALUE_CHARS and not value_limit:
            continue
        if longest > MAX_VALUE_CHARS:
            bad[j] = RecordError(
                name,
                f"{rt.name}: feature {name} holds a value of {longest:,} characters; "
                f"SageMaker's PutRecord takes at most {MAX_VALUE_CHARS:,} per value",
            )
        elif bound > MAX_RECORD_BYTES and (error := _oversized(rt, cols, j)) is not None:
            bad[j] = error
    return _rejected(block, bad) if bad else block


def _oversized(rt: GroupRuntime, columns: dict[str, list[object]], j: int) -> RecordError | None:
    """Why row ``j`` is too big for a SageMaker record, or None when it fits: under the one
    feature whose name and value alone are over the limit, else under ``<record>`` (only
    the sum is), naming the largest feature."""
    from fsgen.runtime.pipeline import RecordError

    sizes = feature_bytes(rt, columns, j)
    size = sum(sizes.values())
    if size <= MAX_RECORD_BYTES:
        return None
    largest = max(sizes, key=lambda n: sizes[n])
    limit = f"a SageMaker record holds at most {MAX_RECORD_BYTES:,} (350 KB): not written"
    if sizes[largest] > MAX_RECORD_BYTES:
        return RecordError(
            largest,
            f"feature {largest} alone is {sizes[largest]:,} bytes (its name and value in "
            f"UTF-8); {limit}",
        )
    return RecordError(
        "<record>",
        f"record is {size:,} bytes (the largest feature: {largest}, {sizes[largest]:,}); {limit}",
    )


def _workers(source: object, workers: int | None) -> int:
    """The default: no worker on two CPUs or fewer, where a worker cost 30-70% more CPU
    (chunks and their records cross the process boundary; bench/bench_ingest.py
    ``--workers``) and, on a machine with other work, more wall time too; else one per CPU
    but one for files over 8 MB (this process is busy writing: one CPU is its)."""
    if workers is not None:
        return workers
    cpus = os.cpu_count() or 1
    if cpus <= 2 or not isinstance(source, str | os.PathLike) or str(source).startswith("s3://"):
        return 0
    try:
        big = Path(source).stat().st_size > 8 << 20
    except OSError:
        return 0
    return cpus - 1 if big else 0


__all__ = [
    "BLOCK_ROWS",
    "IngestResult",
    "Prepared",
    "RejectSink",
    "check_years",
    "ingest_chunks",
    "needed_columns",
    "prepare_chunk",
    "process_chunk",
    "read_ahead",
    "run",
]
