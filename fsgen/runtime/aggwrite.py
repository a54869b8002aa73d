"""The write step of aggregation groups: raw events in, offline event rows and online states out.

Batch ingestion, the generated batch job and the generated stream handler all run it:

1. the group's :class:`GroupRuntime` validates each raw event and calls the featuredefs
   functions (one per aggregation, as the feature ``<name>__value``) -- the same functions,
   on the same column-wise path, as row groups;
2. :func:`events_of` coerces each value (:func:`fsgen.runtime.aggregate.coerce_value`), gives
   every event its ``event_sequence`` and content ``event_hash``; a value no aggregation can
   take is a reject naming the aggregation;
3. the stream (:func:`apply_events`) loads the touched entities' states, applies the events in
   arrival order (a sequence not above the state's is a replay and changes nothing, or, of an
   older source, is rejected (:data:`SOURCE_FIELD`); an event
   older than ``watermark - lateness`` of any aggregation is LATE and rejected, nothing of it
   written); the batch backfill (:func:`rebuild_states`) rebuilds them from the entity's whole
   event history with :meth:`AggregationState.rebuild`, which is the state the stream builds
   from the same accepted events, byte for byte;
4. the sink stores the event rows offline and the states online (one record per entity, event
   time = write time, so the online store's latest-record rule never discards an update).

Sequences (README "Aggregations"): a batch row's sequence is :data:`BATCH_SEQUENCE_BASE` plus its
row number in the source (below every stream sequence); a Kinesis record's is
:func:`kinesis_sequence` of its sequence number.

Standard library only, and nothing from fsgen outside :mod:`fsgen.runtime`.
"""

from __future__ import annotations

import dataclasses
import gc
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, Protocol

from fsgen.runtime.aggcodec import MAX_RECORD_BYTES, for_group
from fsgen.runtime.aggregate import (
    FRACTIONAL,
    INT64_MAX,
    INT64_MIN,
    INTEGRAL,
    SOURCE_BITS,
    STRING,
    AggregationDef,
    AggregationError,
    AggregationState,
    Value,
    _iso,
    _span,
    coerce_value,
    encode_states,
    item_hash,
    other_source,
)
from fsgen.runtime.bulk import BlockResult
from fsgen.runtime.encoding import format_event_time, parse_event_time
from fsgen.runtime.pipeline import GroupRuntime, RecordError

if TYPE_CHECKING:
    from fsgen.runtime.sources import Chunk, Reject


class _Rejects(Protocol):
    """The batch pipeline's :class:`fsgen.runtime.ingest.RejectSink` (not imported: it
    imports the sinks, which know this module)."""

    count: int
    samples: list[Reject]

    def add(self, reject: Reject) -> None: ...

    def discard(self) -> None: ...


class _Result(Protocol):
    """The counts of :class:`fsgen.runtime.ingest.IngestResult`."""

    read: int
    valid: int
    written: int
    rejected: int
    skipped: int
    stored: int
    recomputed: int
    samples: list[Reject]
    state_ids: list[str]


class SeenEventsError(ValueError):
    """A batch source whose events the offline history already holds (nothing was written)."""


EVENT_SEQUENCE = "event_sequence"
EVENT_HASH = "event_hash"
LATE_FIELD = "<late>"
SOURCE_FIELD = "<sequence>"
"""the field of a stream event refused because its sequence comes from an older source than
the one its entity's state was last updated from (:func:`fsgen.runtime.aggregate.other_source`)"""
BATCH_SEQUENCE_BASE = -(1 << 62)
"""a batch row's sequence is ``BATCH_SEQUENCE_BASE + its row number``: negative, so below every
stream sequence (an emulator's from 1 included) and never taken for a stream position: a state
rebuilt from a history of batch rows only is followed by any stream"""
MICROS = 1_000_000
AHEAD_LIMIT = 86_400 * MICROS
"""how far past the writer's clock an event's time may be (µs): one further ahead is no reading
of now but a wrong clock (a device's reset RTC sends 2036 or 2099), and would move its entity's
watermark past every real event, which the stream would then reject as late, and serving would
answer as of that time; it is rejected instead, in batch and stream alike (field: the event
time)"""


@dataclass(frozen=True)
class AggregationRuntime:
    """An aggregation group: its :class:`GroupRuntime` (raw fields, one ``<name>__value``
    feature per aggregation, every column of the group) and the aggregations' definitions."""

    group: GroupRuntime
    definitions: tuple[AggregationDef, ...]
    values: GroupRuntime = field(init=False, repr=False, compare=False)
    """the group's runtime with the columns an event's processing produces"""

    def __post_init__(self) -> None:
        produced = {self.group.identifier, *self.group.keys, self.group.event_time}
        produced |= {d.value_column for d in self.definitions}
        columns = tuple(c for c in self.group.columns if c[0] in produced)
        values = dataclasses.replace(self.group, columns=columns, nan_is_missing=False)
        object.__setattr__(self, "values", values)

    @property
    def name(self) -> str:
        return self.group.name

    @property
    def key_columns(self) -> tuple[str, ...]:
        rt = self.group
        return tuple(dict.fromkeys((rt.identifier, *rt.keys)))

    @property
    def state_columns(self) -> tuple[str, ...]:
        return tuple(d.state_column for d in self.definitions)

    def declared(self, field: str) -> str:
        """The name a reject gives ``field``: an aggregation's own name for its internal
        ``<name>__value`` column (whose function raised), any other field as it is."""
        for d in self.definitions:
            if d.value_column == field:
                return d.name
        return field

    def declared_reason(self, field: str, reason: str) -> str:
        """``reason`` naming the aggregation as declared where it names the internal value
        column of ``field`` (a value function's "(<name>__value defined at ...)")."""
        declared = self.declared(field)
        if declared == field:
            return reason
        return reason.replace(f"({field} defined at ", f"({declared} defined at ")


class Event(NamedTuple):
    """One accepted raw event, ready to apply: ``index`` is its position in its block (a
    named tuple: the stream builds one per event, and a tuple is built several times faster
    than a frozen dataclass)."""

    index: int  # type: ignore[assignment]  # shadows tuple.index, which no caller uses
    record_id: str
    keys: tuple[object, ...]
    event_time: object
    micros: int
    sequence: int
    content_hash: str
    values: tuple[Value | None, ...]


@dataclass
class Rejected:
    """A raw event that is not applied: its block position and why."""

    index: int
    field: str
    message: str


@dataclass
class Writes:
    """What one step stores: event rows (offline) and state records (online), column-wise in
    the group's columns, with their event times in epoch seconds; and the events rejected."""

    events: BlockResult
    states: BlockResult
    rejected: list[Rejected] = field(default_factory=list)
    applied: list[int] = field(default_factory=list)
    """block positions of the events that were applied (or were replays of applied ones)"""


Stored = Mapping[str, Mapping[str, object]]
"""record id -> the stored online state record (column -> value: at least the event time and
the state columns, all the step reads; the local store passes only those)"""
History = Mapping[str, Sequence[tuple[int, int, str, tuple[Value | None, ...]]]]


@dataclass(slots=True)
class HeldState:
    """An entity's states that a coalescing sink holds uncommitted between stream steps
    (:class:`HeldStored`): updated in place by each step, encoded and written once, when the
    sink commits."""

    states: list[AggregationState]
    event: Event
    """an event of the entity (its keys make the state record)"""
    at: float
    """the state record's event time (epoch seconds): the latest step's write time"""
    encoded: dict[str, str] | None
    """the states' encoding, while they are unchanged since; None: not encoded (they fit a
    record by :func:`roomy`)"""


class HeldStored(dict[str, Mapping[str, object]]):
    """The stored records a coalescing sink passes to :func:`apply_events`, with ``held``: the
    entities whose states it holds uncommitted (record id -> :class:`HeldState`). The step
    updates those in place, and puts every entity it changes there instead of returning its
    state records, so the sink commits each entity's states once for many steps."""

    held: dict[str, HeldState]

    def __init__(self, stored: Mapping[str, Mapping[str, object]], held: dict[str, HeldState]):
        super().__init__(stored)
        self.held = held


#: the functions whose state, over numbers, takes at most :data:`UNIT_CHARS` characters of
#: JSON per tile, frontier event or prefix: every partial is a few integers or exact numbers
#: (an exact sum of squares is at most ~80 doubles or ~1,300 digits)
BOUNDED_FUNCTIONS = frozenset(
    {"count", "sum", "mean", "min", "max", "variance", "variance_pop", "stddev", "stddev_pop"}
)
UNIT_CHARS = 4096


def roomy(states: Sequence[AggregationState], extra: int) -> bool:
    """Whether a record of ``states`` fits SageMaker's 350 KB for sure, even after ``extra``
    more events (each adds at most a tile and a frontier entry), without encoding it: then a
    coalescing sink need not encode it before it commits. False for the functions over
    strings or keeping values (their size depends on the values)."""
    units = 0
    for s in states:
        d = s.definition
        if d.value_kind == STRING or d.function not in BOUNDED_FUNCTIONS:
            return False
        units += len(s.tiles) + len(s.frontier) + 2 * extra + 2  # + prefix and header
    return units * UNIT_CHARS <= MAX_RECORD_BYTES


"""record id -> its event rows: (event time µs, sequence, hash, value per aggregation)"""


class AggregationSink(Protocol):
    """What a sink offers aggregation groups besides the row :class:`~fsgen.runtime.sinks.Sink`
    protocol. ``update_states`` loads the states of ``ids``, calls ``step`` with them and
    stores what it returns (events offline, states online), atomically where the store can;
    ``rebuild_states`` does the same with the entities' event histories (None when the sink
    cannot read them: then the run's own events are the history); ``write_events`` stores
    event rows only."""

    def update_states(
        self, art: AggregationRuntime, ids: Sequence[str], step: Callable[[Stored], Writes]
    ) -> Writes: ...

    def write_events(self, art: AggregationRuntime, events: BlockResult) -> None: ...

    def rebuild_states(
        self,
        art: AggregationRuntime,
        ids: Sequence[str],
        step: Callable[[History | None], BlockResult],
    ) -> int: ...


class SeenEventsSink(Protocol):
    """A sink that can read the offline event history back (the local store) also answers
    which of a run's events it already holds from an earlier ingestion (see
    :func:`seen_positions`)."""

    def seen_events(self, art: AggregationRuntime, events: Sequence[Event]) -> list[Seen]: ...

    def recomputed_events(
        self, art: AggregationRuntime, events: Sequence[Event], source: str
    ) -> Sequence[Recomputation]:
        """The run's events that an earlier ingestion of the same ``source`` wrote with other
        values (the same rows; the definitions changed since), with the versions to retract."""
        ...

    def retract_events(self, art: AggregationRuntime, versions: BlockResult) -> None:
        """Write tombstones of event versions (readers leave the versions out)."""
        ...

    def holding(self, what: str) -> AbstractContextManager[None]:
        """The store's write lock, held across the check and the writes it allowed."""
        ...


class Seen(NamedTuple):
    """An event of the run the offline history already holds: its position in the run's
    events, the earlier ingestion that wrote it (a source and time, as the store knows), and
    whether it is a copy of that very row (same sequence: the same file again), which is one
    event with it and so never refused."""

    position: int
    earlier: str
    copy: bool = False


class Recomputation(Protocol):
    """A version of a run's event the history holds with other values
    (``fsgen.store.offline.Recomputed``)."""

    @property
    def position(self) -> int: ...
    @property
    def event_time(self) -> object: ...
    @property
    def content_hash(self) -> str: ...
    @property
    def values(self) -> tuple[Value | None, ...]: ...


DUPLICATES = ("refuse", "skip", "allow")
"""what a batch ingestion does with events the offline history holds from an earlier one"""


# --------------------------------------------------------------------------- sequences

_KINESIS_BITS = 186  # Kinesis's sequence numbers: 56 decimal digits, 47 hex digits
_EPOCH_2010 = 1_262_304_000
_INDEX_BITS = SOURCE_BITS


def kinesis_sequence(text: str) -> int:
    """The ``event_sequence`` (int64) of a Kinesis record's sequence number.

    A number that fits in int64 (emulators, ``fsgen stream replay``) is its own sequence.
    A Kinesis number (186 bits: version, the shard's creation time in seconds, the shard's
    64-bit record index, the put time, the shard index) maps to
    ``(minutes from 2010-01-01 to the shard's creation) << 38 | record index``: increasing
    within a shard, and from a parent shard to its children (created later), the same for the
    same record on every retry; shards created until 2073. Raises ValueError for anything
    else, or a record index past 2**38 (2.7e11 records in one shard: 8.7 years at a shard's
    1,000 records/s), which has no int64 order."""
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"sequence number {text!r} is not a decimal number")
    number = int(text)
    if number <= INT64_MAX:
        return number
    digits = format(number, "x")
    if number.bit_length() != _KINESIS_BITS or len(digits) != 47 or digits[-1] != "2":
        raise ValueError(f"sequence number {text} has no known int64 order")
    created = int(digits[1:11], 16) >> 4
    index = int(digits[11:27], 16)
    minutes = (created - _EPOCH_2010) // 60
    if index >= 1 << _INDEX_BITS or not 0 <= minutes < 1 << (63 - _INDEX_BITS):
        raise ValueError(f"sequence number {text} is beyond the int64 sequence range")
    return (minutes << _INDEX_BITS) | index


# --------------------------------------------------------------------------- events


def events_of(
    art: AggregationRuntime,
    block: BlockResult,
    sequences: Sequence[int],
    now: float | None = None,
) -> tuple[list[Event], list[Rejected]]:
    """The accepted rows of a processed block (``art.values``) as events, with the sequence
    of each accepted row (``sequences[j]`` for row ``block.rows[j]``); with the writer's clock
    ``now`` (epoch seconds), a row more than :data:`AHEAD_LIMIT` past it is rejected.

    Values are coerced column by column (:func:`_coerced`: one type check of the column where
    every value is of the common type, row by row otherwise, so a bad value is a reject
    naming its aggregation); the per-event work left is the content hash."""
    rt = art.group
    cols = block.columns
    ids = cols[rt.identifier]
    record_ids: list[str] = (
        ids if all([type(i) is str for i in ids]) else [str(i) for i in ids]  # type: ignore[assignment]
    )
    keys = [cols[k] for k in rt.keys]
    key_rows = list(zip(*keys, strict=True)) if keys else [()] * len(ids)
    times = cols[rt.event_time]
    columns = [d.value_column for d in art.definitions]
    coerced = [_coerced(d.value_kind, cols[d.value_column]) for d in art.definitions]
    mapped_rows: list[tuple[Value | None, ...]] = (
        list(zip(*coerced, strict=True)) if all(c is not None for c in coerced) else []
    )
    micros_of = [round(s * MICROS) for s in block.seconds]
    ahead = _ahead(micros_of, now)
    oversized = _oversized(art, cols)
    # event_hash's sorted (name, value) pairs: the names' order, found once
    order = sorted(range(len(columns)), key=columns.__getitem__)
    names = [columns[i] for i in order]
    events: list[Event] = []
    rejected: list[Rejected] = []
    for j, index in enumerate(block.rows):
        if ahead and j in ahead:
            rejected.append(Rejected(index, rt.event_time, ahead[j]))
            continue
        if oversized and j in oversized:
            rejected.append(Rejected(index, *oversized[j]))
            continue
        mapped = mapped_rows[j] if mapped_rows else _mapped(art, cols, j)
        if isinstance(mapped, Rejected):
            rejected.append(Rejected(index, mapped.field, mapped.message))
            continue
        record_id = record_ids[j]
        micros = micros_of[j]
        items = list(zip(names, [mapped[i] for i in order], strict=True))
        events.append(
            Event(
                index,
                record_id,
                key_rows[j],
                times[j],
                micros,
                sequences[j],
                item_hash(record_id, micros, items),
                mapped,
            )
        )
    return events, rejected


def _oversized(
    art: AggregationRuntime, cols: Mapping[str, Sequence[object]]
) -> dict[int, tuple[str, str]]:
    """Row position -> (value column, reason) of a String value that no state record can hold
    (its JSON text alone is over a record's 350 KB), for the functions that keep values
    (last, last_n, min, max, count_distinct): accepted, it would be written offline while
    every state of its entity rebuilt from then on is refused. Rejected at once instead, in
    batch and stream alike, before anything is written."""
    import json

    out: dict[int, tuple[str, str]] = {}
    least = MAX_RECORD_BYTES // 6  # a character's JSON text is at most 6 bytes (\u00XX)
    for d in art.definitions:
        if d.value_kind != STRING or d.function == "count":
            continue
        column = cols[d.value_column]
        if max([len(v) for v in column if type(v) is str], default=0) <= least:
            continue
        for j, v in enumerate(column):
            if j in out or type(v) is not str or len(v) <= least:
                continue
            size = len(json.dumps(v, ensure_ascii=False).encode("utf-8"))
            if size > MAX_RECORD_BYTES:
                out[j] = (
                    d.value_column,
                    f"a value of {size:,} bytes can never fit the state of {d.name!r} in a "
                    f"SageMaker record ({MAX_RECORD_BYTES:,} bytes at most): not written",
                )
    return out


def _ahead(micros_of: Sequence[int], now: float | None) -> dict[int, str]:
    """Row position -> why its event time is too far past the clock ``now`` (none mostly:
    one max over the column)."""
    if now is None or not micros_of:
        return {}
    clock = round(now * MICROS)
    limit = clock + AHEAD_LIMIT
    if max(micros_of) <= limit:
        return {}
    second = clock - clock % MICROS  # the messages in whole seconds
    return {
        j: (
            f"event time {_iso(t)} is {_span(t - second - (t - second) % MICROS)} ahead of "
            f"this write's clock ({_iso(second)}), more than the {_span(AHEAD_LIMIT)} an "
            "aggregation group takes (is the producer's clock wrong?): it would move the "
            "entity's newest event time there, and every real event after it would be late"
        )
        for j, t in enumerate(micros_of)
        if t > limit
    }


_FAST_TYPES = {
    INTEGRAL: frozenset({int, type(None)}),
    FRACTIONAL: frozenset({float, type(None)}),
    STRING: frozenset({str, type(None)}),
}


def _coerced(kind: str, values: list[object]) -> list[Value | None] | None:
    """:func:`coerce_value` of a whole column when every value is of the kind's own type
    (and in range: finite floats, 64-bit integers), else None (then row by row)."""
    types = set(map(type, values))
    if not types <= _FAST_TYPES[kind]:
        return None
    present = [v for v in values if v is not None]
    if kind == FRACTIONAL:
        if not all(map(math.isfinite, present)):  # type: ignore[arg-type]
            return None
        return [None if v is None else v + 0.0 for v in values]  # type: ignore[operator]
    if kind == INTEGRAL and present:
        if min(present) < INT64_MIN or max(present) > INT64_MAX:  # type: ignore[type-var,operator]
            return None
    return values  # type: ignore[return-value]


def _mapped(
    art: AggregationRuntime, cols: Mapping[str, list[object]], j: int
) -> tuple[Value | None, ...] | Rejected:
    """Row ``j``'s coerced values, or why they cannot be aggregated: every aggregation whose
    value is refused, in definition order, shaped like :class:`RecordError`'s field and
    message (index filled in later)."""
    out: list[Value | None] = []
    problems: list[tuple[str, str]] = []
    for d in art.definitions:
        try:
            out.append(coerce_value(d.value_kind, cols[d.value_column][j]))
        except AggregationError as exc:
            problems.append((d.name, f"aggregation {d.name!r}: {exc}"))
    if problems:
        error = RecordError.of(problems)
        return Rejected(-1, error.field, error.message)
    return tuple(out)


def event_rows(art: AggregationRuntime, events: Sequence[Event]) -> BlockResult:
    """Offline event rows of ``events``: keys, event time, sequence, hash, values."""
    rt = art.group
    cols: dict[str, list[object]] = {c[0]: [None] * len(events) for c in rt.columns}
    cols[rt.identifier] = [e.record_id for e in events]
    for i, key in enumerate(rt.keys):
        if key != rt.identifier or len(rt.keys) == 1:
            cols[key] = [e.keys[i] for e in events]
    cols[rt.event_time] = [e.event_time for e in events]
    cols[EVENT_SEQUENCE] = [e.sequence for e in events]
    cols[EVENT_HASH] = [e.content_hash for e in events]
    for n, d in enumerate(art.definitions):
        cols[d.value_column] = [e.values[n] for e in events]
    return BlockResult(cols, [e.index for e in events], [e.micros / MICROS for e in events])


def decode_stored(
    art: AggregationRuntime, record: Mapping[str, object] | None
) -> list[AggregationState]:
    """The states a stored online record holds (an absent or empty one: empty states)."""
    record = record or {}
    return [AggregationState.decode(d, _text(record.get(d.state_column))) for d in art.definitions]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def stored_seconds(art: AggregationRuntime, record: Mapping[str, object] | None) -> float:
    rt = art.group
    if not record or record.get(rt.event_time) is None:
        return float("-inf")
    return parse_event_time(rt.event_time_kind, record[rt.event_time])


# --------------------------------------------------------------------------- the stream


@contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector paused for one stream step. A warm handler keeps tens of
    thousands of states (small lists and tuples, no cycles) alive, and each step allocates
    about as many objects again, so the collector's runs, which walk the kept states over
    and over, cost a tenth to a sixth of the step's CPU (``bench/bench_stream.py``).
    Reference counting frees the step's objects as usual; the few cycles it may leave (a
    caught exception's traceback) are collected once the collector resumes after the step
    (unless it was paused already)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


#: The states this process wrote last, per definition by the string written: a warm stream
#: handler (a Lambda container, ``fsgen stream consume``) sees the same entities batch after
#: batch, and a stored string equal to the one it wrote decodes to exactly the state it holds
#: (``encode`` leaves the state canonical). A state is taken out while a batch changes it and
#: put back under its new string only once that string is encoded, so a failed write (the
#: store keeps the old string) decodes afresh on the retry. One dictionary per definition:
#: a look-up hashes the string only, not the definition too.
_WRITTEN: dict[AggregationDef, dict[str, AggregationState]] = {}
WRITTEN_ENTRIES = 50_000
#: and at most this many characters of state strings: a dense state (a 30-day window of
#: 1-hour tiles) decodes into tens of kilobytes of Python objects, and a Lambda container
#: has as little as 128 MB (about 5x the strings' size at most is held)
WRITTEN_CHARS = 16_000_000
_written_chars = 0


def _kept(d: AggregationDef) -> dict[str, AggregationState]:
    kept = _WRITTEN.get(d)
    if kept is None:
        kept = _WRITTEN[d] = {}
    return kept


def _take(d: AggregationDef, text: str | None) -> AggregationState:
    """The state ``text`` holds: this process's own, when it wrote that string, else decoded."""
    global _written_chars
    if not text:
        return AggregationState(d)
    state = _kept(d).pop(text, None)
    if state is None:
        return AggregationState.decode(d, text)
    _written_chars -= len(text)
    return state


def _keep(states: Sequence[AggregationState], encoded: Mapping[str, str | None]) -> None:
    """Keep ``states`` under the strings they were written as (a record's states, or the
    states of all of a batch's records in one call)."""
    texts = [encoded[s.definition.state_column] for s in states]
    _keep_texts(states, texts)


def keep_written(states: Sequence[AggregationState], texts: Sequence[str | None]) -> None:
    """Keep ``states`` under the strings a sink committed them as (``texts``: each record's
    states in definition order, record after record)."""
    _keep_texts(states, texts)


def _keep_texts(states: Sequence[AggregationState], texts: Sequence[str | None]) -> None:
    global _written_chars
    size = sum([len(t) for t in texts if t])
    if _full(len(states), size):
        _forget()
    for s, text in zip(states, texts, strict=True):
        if text:
            _kept(s.definition)[text] = s
    _written_chars += size


def _full(entries: int, size: int) -> bool:
    """Would keeping ``entries`` more states of ``size`` characters pass the bounds?"""
    count = sum([len(kept) for kept in _WRITTEN.values()])
    return count + entries > WRITTEN_ENTRIES or _written_chars + size > WRITTEN_CHARS


def _forget() -> None:
    global _written_chars
    for kept in _WRITTEN.values():
        kept.clear()
    _written_chars = 0


def apply_events(
    art: AggregationRuntime, events: Sequence[Event], stored: Stored, now: float
) -> Writes:
    """Apply ``events`` (arrival order) to the stored states: the stream's step. Replays
    change nothing; late events and entities whose state would not fit a record are
    rejected; each changed entity gets one state record at write time ``now`` (or its stored
    event time, if that is later).

    Each entity's state is decoded (or taken from the kept ones) once, its events of the
    batch applied in one pass (:meth:`AggregationState.apply_accepted`), and encoded once;
    the states are kept under their new strings at the end of the step.

    From a coalescing sink (``stored`` a :class:`HeldStored`) the entities it holds are
    updated in place, and each changed entity is held there instead of returned as a state
    record: encoded only when the sink commits, unless it might not fit a record
    (:func:`roomy`), then at once, as here, so the event that would overflow it is the one
    rejected."""
    global _written_chars
    held = stored.held if type(stored) is HeldStored else None
    by_entity: dict[str, list[Event]] = {}
    for e in events:
        mine = by_entity.get(e.record_id)
        if mine is None:
            by_entity[e.record_id] = [e]
        else:
            mine.append(e)
    rejected: list[Rejected] = []
    written: list[Event] = []
    applied: list[int] = []
    states_out: dict[str, tuple[Event, dict[str, str], float]] = {}
    definitions = art.definitions
    columns = art.state_columns
    event_time = art.group.event_time
    kept = [(d, _kept(d)) for d in definitions]
    shortest = min(d.lateness for d in definitions)
    seconds_of: dict[object, float] = {}  # a step's records mostly share one write time
    # the states to keep and their strings, a record's k states after another's
    keep_states: list[AggregationState] = []
    keep_texts: list[str | None] = []
    taken = 0  # characters of the kept strings taken out
    for record_id, mine in by_entity.items():
        h = held.get(record_id) if held is not None else None
        if h is not None:  # held uncommitted by the sink: updated in place
            states = h.states
            if roomy(states, len(mine)):
                took = _apply_mine(states, mine, shortest, applied, rejected)
                if took:
                    h.encoded = None
                    if now > h.at:
                        h.at = now
                    written += took
                    applied += [e.index for e in took]
                continue
            if h.encoded is None:
                h.encoded = encode_states(states)  # it fits: roomy when last changed
            texts: list[str | None] = [h.encoded[c] for c in columns]  # to start over from
            record = None
        elif (record := stored.get(record_id)) is None:
            texts = [None] * len(definitions)
            states = [AggregationState(d) for d in definitions]
        else:
            texts = [t if type(t) is str else None for t in map(record.get, columns)]
            states = []
            try:
                for (d, own), text in zip(kept, texts, strict=True):
                    state = own.pop(text, None) if text else AggregationState(d)
                    if state is None:
                        state = AggregationState.decode(d, text)
                    elif text:
                        taken += len(text)
                    states.append(state)
            except AggregationError as exc:  # a corrupt stored state: a backfill rebuilds it
                reason = f"{record_id}: {for_group(str(exc), art.name)}"
                rejected += [Rejected(e.index, "<state>", reason) for e in mine]
                continue
        marks = len(applied), len(rejected)
        took = _apply_mine(states, mine, shortest, applied, rejected)
        if not took:
            if h is None:
                keep_states += states  # unchanged: kept under the strings they were read as
                keep_texts += texts
            continue
        at = now
        if record is not None:
            stamp = record.get(event_time)
            if stamp is not None:
                when = seconds_of.get(stamp)
                if when is None:
                    when = seconds_of[stamp] = stored_seconds(art, record)
                if when > now:
                    at = when
        if held is not None and h is None and roomy(states, 0):
            held[record_id] = HeldState(states, took[0], at, None)
            written += took
            applied += [e.index for e in took]
            continue
        try:
            encoded = encode_states(states)
        except AggregationError as exc:
            if len(took) == 1:
                rejected.append(Rejected(took[0].index, "<state>", str(exc)))
                if h is not None:  # held: back to the states its encoding holds
                    h.states = _decoded(definitions, texts)
                continue
            del applied[marks[0] :], rejected[marks[1] :]
            states, took, encoded = _apply_singly(
                definitions, texts, mine, shortest, applied, rejected
            )
            if not took:
                if h is not None:
                    h.states = states  # decoded from its encoding, nothing applied
                continue
        written += took
        applied += [e.index for e in took]
        if held is not None:
            if h is None:
                held[record_id] = HeldState(states, took[0], at, encoded)
            else:
                h.states, h.encoded, h.at = states, encoded, max(h.at, now)
            continue
        keep_states += states
        keep_texts += map(encoded.__getitem__, columns)
        states_out[record_id] = (took[0], encoded, at)
    _written_chars -= taken
    size = sum([len(t) for t in keep_texts if t])
    if _full(len(keep_states), size):
        _forget()
    k = len(definitions)
    for i, (_, own) in enumerate(kept):
        own.update(zip(keep_texts[i::k], keep_states[i::k], strict=True))  # type: ignore[arg-type]
        own.pop(None, None)  # type: ignore[call-overload]  # an empty state, never written
        own.pop("", None)
    _written_chars += size
    rejected.sort(key=lambda r: r.index)
    applied.sort()
    return Writes(event_rows(art, written), state_records(art, states_out), rejected, applied)


def _decoded(
    definitions: Sequence[AggregationDef], texts: Sequence[str | None]
) -> list[AggregationState]:
    return [
        AggregationState.decode(d, t) if t else AggregationState(d)
        for d, t in zip(definitions, texts, strict=True)
    ]


def _apply_singly(
    definitions: Sequence[AggregationDef],
    texts: Sequence[str | None],
    mine: list[Event],
    shortest: int,
    applied: list[int],
    rejected: list[Rejected],
) -> tuple[list[AggregationState], list[Event], dict[str, str]]:
    """Apply one entity's events one at a time, encoding after each: the path of a batch whose
    state would not fit a record. Only the events that push the state past it are rejected
    (``<state>``); the others are applied, as they are when each arrives in a batch of its own.
    Returns the states, the events applied and the last encoding that fits (empty: none)."""

    def decode(good: Sequence[str | None]) -> list[AggregationState]:
        return _decoded(definitions, good)

    good: Sequence[str | None] = texts
    states = decode(good)
    took: list[Event] = []
    encoded: dict[str, str] = {}
    for e in mine:
        if not _apply_mine(states, [e], shortest, applied, rejected):
            continue
        try:
            encoded = encode_states(states)
        except AggregationError as exc:
            rejected.append(Rejected(e.index, "<state>", str(exc)))
            states = decode(good)
            continue
        good = [encoded[d.state_column] for d in definitions]
        took.append(e)
    return states, took, encoded


def _apply_mine(
    states: list[AggregationState],
    mine: list[Event],
    shortest: int,
    applied: list[int],
    rejected: list[Rejected],
) -> list[Event]:
    """Apply one entity's events in arrival order; returns those applied. The states of one
    record are always updated together, so they share the highest sequence and watermark:
    an event is a replay when its sequence is not above it, late when it is older than
    ``watermark - lateness`` of any aggregation (``limit``: the largest of those;
    ``shortest``: the smallest lateness). The accepted events are applied together, in one
    pass per state; a late one's reason is given against the states as of its arrival."""
    top = -1
    limit: int | None = None
    for s in states:
        if s.max_sequence > top:
            top = s.max_sequence
        if s.watermark is not None:
            mark = s.watermark - s.definition.lateness
            if limit is None or mark > limit:
                limit = mark
    if len(mine) == 1:  # the common case: an entity's only event of the batch
        e = mine[0]
        if e.sequence <= top:
            if other_source(e.sequence, top):
                rejected.append(_from_other_source(e, top))
            else:
                applied.append(e.index)  # a replay of an applied event: nothing changes
            return []
        if limit is not None and e.micros < limit:
            rejected.append(_late(states, e))
            return []
        t, seq, content_hash = e.micros, e.sequence, e.content_hash
        for s, value in zip(states, e.values, strict=True):
            s.apply_one(t, seq, content_hash, value)
        return mine
    took: list[Event] = []
    pending: list[Event] = []
    for e in mine:
        if e.sequence <= top:
            if other_source(e.sequence, top):
                rejected.append(_from_other_source(e, top))
            else:
                applied.append(e.index)
            continue
        t = e.micros
        if limit is not None and t < limit:
            _place_all(states, pending)
            pending = []
            rejected.append(_late(states, e))
            continue
        top = e.sequence
        if limit is None or t - shortest > limit:
            limit = t - shortest
        took.append(e)
        pending.append(e)
    _place_all(states, pending)
    return took


def _from_other_source(e: Event, top: int) -> Rejected:
    """The reject of a stream event whose sequence is of an older source than its state's."""
    return Rejected(
        e.index,
        SOURCE_FIELD,
        f"event_sequence {e.sequence} is from an older source (another stream or an older shard) "
        f"than the events this entity's state was last updated from (event_sequence {top}); "
        "a state orders the events of one shard (and of its children) only, so it cannot tell "
        "whether this event is one it applied: nothing was applied (re-ingest it as a backfill "
        "to count it)",
    )


def _late(states: list[AggregationState], e: Event) -> Rejected:
    """The reject of a late event: the first aggregation it is late for gives the reason."""
    t = e.micros
    late = next(
        s for s in states if s.watermark is not None and t < s.watermark - s.definition.lateness
    )
    return Rejected(e.index, LATE_FIELD, late.late_reason(t))


def _place_all(states: list[AggregationState], events: list[Event]) -> None:
    """Apply accepted events to every state of their record (each its own value)."""
    if not events:
        return
    for n, s in enumerate(states):
        s.apply_accepted([(e.micros, e.sequence, e.content_hash, e.values[n]) for e in events])


def state_records(
    art: AggregationRuntime, states: Mapping[str, tuple[Event, Mapping[str, str], float]]
) -> BlockResult:
    """One online record per entity: keys, event time (the write time), the encoded states."""
    rt = art.group
    n = len(states)
    cols: dict[str, list[object]] = {c[0]: [None] * n for c in rt.columns}
    items = list(states.items())
    cols[rt.identifier] = [rid for rid, _ in items]
    for i, key in enumerate(rt.keys):
        if key != rt.identifier or len(rt.keys) == 1:
            cols[key] = [e.keys[i] for _, (e, _, _) in items]
    seconds = [s for _, (_, _, s) in items]
    formatted: dict[float, object] = {}  # one write time for most records of a step
    for s in seconds:
        if s not in formatted:
            formatted[s] = format_event_time(rt.event_time_kind, s)
    cols[rt.event_time] = [formatted[s] for s in seconds]
    for name in art.state_columns:
        cols[name] = [enc[name] for _, (_, enc, _) in items]
    return BlockResult(cols, list(range(n)), seconds)


# --------------------------------------------------------------------------- the backfill


def history_of(
    events: Iterable[Event],
) -> dict[str, list[tuple[int, int, str, tuple[Value | None, ...]]]]:
    """A history (see :data:`History`) from events."""
    out: dict[str, list[tuple[int, int, str, tuple[Value | None, ...]]]] = {}
    for e in events:
        out.setdefault(e.record_id, []).append((e.micros, e.sequence, e.content_hash, e.values))
    return out


def rebuild_states(
    art: AggregationRuntime,
    history: History,
    keys: Mapping[str, tuple[object, ...]],
    now: float,
) -> tuple[BlockResult, list[tuple[str, str]]]:
    """The backfill's states: each entity's from its whole event history
    (:meth:`AggregationState.rebuild`; no lateness: the history is the source of truth).
    Returns the state records and, per entity whose state would not fit a record, its
    (record id, reason)."""
    out: dict[str, tuple[Event, dict[str, str], float]] = {}
    refused: list[tuple[str, str]] = []
    for record_id, rows in history.items():
        states = [
            AggregationState.rebuild(d, [(t, q, h, v[n]) for t, q, h, v in rows])
            for n, d in enumerate(art.definitions)
        ]
        try:
            encoded = encode_states(states)
        except AggregationError as exc:
            refused.append((record_id, str(exc)))
            continue
        probe = Event(0, record_id, keys[record_id], None, 0, 0, "", ())
        out[record_id] = (probe, encoded, now)
    return state_records(art, out), refused


__all__ = [
    "BATCH_SEQUENCE_BASE",
    "DUPLICATES",
    "EVENT_HASH",
    "EVENT_SEQUENCE",
    "LATE_FIELD",
    "SOURCE_FIELD",
    "AggregationRuntime",
    "AggregationSink",
    "Event",
    "History",
    "Rejected",
    "Seen",
    "SeenEventsError",
    "SeenEventsSink",
    "Stored",
    "Writes",
    "apply_events",
    "event_rows",
    "events_of",
    "history_of",
    "kinesis_sequence",
    "paused_gc",
    "rebuild_states",
    "state_records",
]


# --------------------------------------------------------------------------- batch driver


def ingest_chunks(
    art: AggregationRuntime,
    chunks: Iterable[Chunk],
    sink: AggregationSink | None,
    rejects: _Rejects,
    result: _Result,
    progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], float] | None = None,
    duplicates: str = "refuse",
) -> None:
    """The batch pipeline's loop for an aggregation group (``fsgen.runtime.ingest.run``):
    every chunk's accepted events are written offline (sequence = row number); then every
    touched entity's state is rebuilt from its history (the sink's, or the run's own events
    when the sink cannot read one) and written online. Rejects and counts go where the row
    loop puts them: ``read == valid + rejected``.

    Into a sink that reads the history back (:class:`SeenEventsSink`), the events are held
    until the source is read, and those the history already holds from an earlier ingestion
    (:meth:`SeenEventsSink.seen_events`: same entity, event time and values) are, by
    ``duplicates``: ``refuse`` -- a :class:`SeenEventsError` before anything is written,
    unless they are only copies of the very same rows (the same file again: the events are
    stored already, so they are not written again, ``result.stored``); ``skip`` -- not
    written, copies included (``result.skipped``);
    ``allow`` -- written as new events (and written as they come).

    With ``refuse`` and ``skip``, an event that the same source's earlier ingestion wrote
    with other values (same entity, event time and row number: the same row, recomputed by
    definitions changed since, e.g. a value function's logic or an added aggregation) is
    written, and the earlier version retracted first: a tombstone of it, which every reader
    of the history honours (``fsgen.store.offline.EVENT_VERSION``), so the backfill after a
    logic change replaces the events' values instead of adding each event twice
    (``result.recomputed``)."""
    import time

    from fsgen.runtime.ingest import RejectSink, process_chunk
    from fsgen.runtime.sources import Reject

    if duplicates not in DUPLICATES:
        raise ValueError(f"duplicates must be one of {', '.join(DUPLICATES)}, not {duplicates!r}")
    checking = duplicates != "allow" and sink is not None and hasattr(sink, "seen_events")
    skip: set[int] = set()
    held: list[list[Event]] = []
    source_name = ""
    now = clock or time.time
    run_events: list[Event] = []
    keys: dict[str, tuple[object, ...]] = {}
    raw_of: dict[str, tuple[str, int, dict[str, object]]] = {}
    for chunk in chunks:
        # the reader's malformed rows, validation's and the value functions' rejects, in
        # row order (as the row loop writes them)
        found = RejectSink(None, keep=0, into=list(chunk.rejected))
        block = process_chunk(art.values, chunk, found, value_limit=False)
        sequences = [BATCH_SEQUENCE_BASE + chunk.row_number(i) for i in block.rows]
        events, bad = events_of(art, block, sequences, now())
        for r in bad:
            found.add(
                Reject(
                    chunk.source, chunk.row_number(r.index), r.field, r.message, chunk.raw(r.index)
                )
            )
        assert found.into is not None
        for reject in sorted(found.into, key=lambda r: r.row):
            field = art.declared(reject.field)
            reason = art.declared_reason(reject.field, reject.reason)
            rejects.add(dataclasses.replace(reject, field=field, reason=reason))
        source_name = chunk.source
        if checking:
            held.append(events)
        elif sink is not None and events:
            sink.write_events(art, event_rows(art, events))
        for e in events:
            keys.setdefault(e.record_id, e.keys)
            raw_of.setdefault(
                e.record_id,
                (chunk.source, chunk.row_number(e.index), chunk.raw(e.index)),
            )
        run_events += events
        result.written += len(events) if sink is not None else 0
        result.read += chunk.rows + len(chunk.rejected)
        result.valid += len(events)
        if progress is not None:
            progress(chunk.rows + len(chunk.rejected), len(found.into))
    if checking and run_events:
        assert sink is not None
        # under the store's lock from the check to the last write: no other writer can add
        # the same events in between
        with sink.holding(f"ingest {art.name}"):  # type: ignore[attr-defined]
            seen = sink.seen_events(art, run_events)  # type: ignore[attr-defined]
            again = [s for s in seen if not s.copy]
            if again and duplicates == "refuse":
                message = _seen_message(art, source_name, run_events, again, rejects.count)
                rejects.discard()  # nothing of the run is written, its rejects neither
                result.written = 0  # the held events were counted as they were read
                raise SeenEventsError(message)
            # refuse with only copies: the same rows again, stored already (not written again;
            # every reader takes a copy as the one event, so the history does not change)
            skip = {run_events[s.position].sequence for s in seen if duplicates == "skip" or s.copy}
            redone = [
                r
                for r in sink.recomputed_events(art, run_events, source_name)  # type: ignore[attr-defined]
                if run_events[r.position].sequence not in skip
            ]
            if redone:  # the tombstones first: a write killed in between counts no event twice
                retracted = [
                    run_events[r.position]._replace(
                        event_time=r.event_time, content_hash=r.content_hash, values=r.values
                    )
                    for r in redone
                ]
                sink.retract_events(art, event_rows(art, retracted))  # type: ignore[attr-defined]
                result.recomputed = len({run_events[r.position].sequence for r in redone})
            for events in held:
                kept = [e for e in events if e.sequence not in skip]
                if kept:
                    sink.write_events(art, event_rows(art, kept))
        if duplicates == "skip":
            result.skipped = len(skip)
        else:
            result.stored = len(skip)
        result.written -= len(skip)
        if skip:
            run_events = [e for e in run_events if e.sequence not in skip]
    if sink is not None and keys:
        own = history_of(run_events)
        refused: list[tuple[str, str]] = []

        def step(history: History | None) -> BlockResult:
            states, no = rebuild_states(art, own if history is None else history, keys, now())
            refused.extend(no)
            return states

        result.state_ids = list(keys)
        sink.rebuild_states(art, result.state_ids, step)
        for record_id, reason in refused:
            source, row, raw = raw_of[record_id]
            rejects.add(Reject(source, row, "<state>", f"{record_id}: {reason}", raw))
    result.rejected = rejects.count
    result.samples = list(rejects.samples)


def _seen_message(
    art: AggregationRuntime,
    source: str,
    events: Sequence[Event],
    seen: Sequence[Seen],
    rejected: int = 0,
) -> str:
    """The refusal: how many events the history holds already, the first few by row, entity
    and time, the earlier ingestion, the rows rejected (not written to the rejects file
    either) and the two ways on."""
    rt = art.group
    first = [events[s.position] for s in seen[:5]]
    shown = "; ".join(
        f"row {e.sequence - BATCH_SEQUENCE_BASE} "
        f"({e.record_id}, {format_event_time('String', e.micros / MICROS)})"
        for e in first
    )
    more = f"; ... and {len(seen) - len(first):,} more" if len(seen) > len(first) else ""
    earlier = sorted({s.earlier for s in seen})
    names = ", ".join(earlier[:3]) + (f" and {len(earlier) - 3} more" if len(earlier) > 3 else "")
    return (
        f"{rt.name}: {len(seen):,} event(s) of {source} are already in the offline history "
        f"(same {rt.identifier}, event time and values as events ingested earlier, from "
        f"{names}): {shown}{more}; nothing was written{_unreported(rejected)}. Ingesting "
        "them again would count them twice. --skip-seen ingests the other events; "
        "--allow-duplicates counts them as new events (real repeated events, alike in "
        "entity, time and values)"
    )


def _unreported(rejected: int) -> str:
    """What a refusal says of the run's rejects, which it does not write."""
    if not rejected:
        return ""
    return (
        f", nor the rejects file ({rejected:,} other row(s) are rejects: they are reported "
        "when the file is ingested)"
    )
