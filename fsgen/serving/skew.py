"""``fsgen skew-check``: proof, entity by entity, that serving sees the training set's values.

For a sample of label rows the check reads each row's feature vector through the inference
path (the generated endpoint handler, the generated parser, BatchGetRecord over the online
store) and builds the point-in-time training set for the same rows with :mod:`fsgen.pit`;
then it compares the two column by column, floats bit for bit. Any difference is a mismatch
reported by feature, and the command exits 1.

Choices, and why:

- **Rows.** Each label row picks, for every entity of the set, one key among the live (not
  deleted) online records of all the set's groups of that entity (an entity one group lacks
  is compared too), uniformly at random with a fixed seed, so a run is repeatable; a set
  over several entities (customer + merchant) gets (customer_id, merchant_id) pairs. Rows
  are distinct, so a store with fewer keys (or pairs) than ``sample`` compares each once.
  With ``labels`` the key columns and request fields come from that file instead (its label
  times are ignored).
- **Label time T** = the latest event time among the row's online records. Every online record
  is its entity's latest, so the point-in-time join at T must pick exactly those records; T
  is an exact microsecond instant (the unit point-in-time joins compare in), so a record at T
  counts.
- **TTL.** The online read judges expiry at T, not at the wall clock: at T both sides apply
  the same rule (a record older than its TTL relative to T is missing on both), so every
  stored value is compared even for historical data. Whether records are still fresh *now*
  is a different question, answered by ``fsgen freshness``.
- **Request fields** (on-demand inputs) come from the labels file, else a deterministic
  sample value per row (seeded: integers 0..1000, floats with two decimals in 0..1000,
  strings ``"sample-<row>"``, booleans), the same value fed to both sides.
- A stale generated parser or handler is reported as a failure too: it is the code that
  would serve.
- A set with ``missing="error"`` is compared with missing values kept as missing (null) on
  both sides, so a row with a missing value is compared instead of aborting the whole check;
  the policy itself is the one ``FeatureSetRuntime`` code path both sides share.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsgen.config import ProjectConfig
from fsgen.errors import FsgenError
from fsgen.runtime.aggcodec import for_group
from fsgen.runtime.aggdef import AggregationError
from fsgen.runtime.aggregate import AggregationDef
from fsgen.runtime.encoding import FRACTIONAL, INTEGRAL
from fsgen.runtime.inference import FeatureSetRuntime, GroupReader, MissingFeatureError, Value
from fsgen.serving.sources import LocalRecordSource
from fsgen.spec import ProjectSpec

if TYPE_CHECKING:
    import pandas as pd

    from fsgen.store import LocalStore

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SkewCheckError(FsgenError):
    """The check cannot run (no online records, unreadable labels)."""


@dataclass(frozen=True)
class Mismatch:
    row: int
    keys: dict[str, object]
    label_time: str
    column: str
    online: object
    training: object

    def to_dict(self) -> dict[str, object]:
        return {
            "row": self.row,
            "keys": self.keys,
            "label_time": self.label_time,
            "feature": self.column,
            "online": _jsonable(self.online),
            "training": _jsonable(self.training),
            "online_repr": _show(self.online),
            "training_repr": _show(self.training),
        }


@dataclass(frozen=True)
class Unreadable:
    """An online state record serving cannot read (corrupted, another format or definition):
    a finding like a mismatch, so the check goes on with the other rows."""

    group: str
    record_id: str
    feature: str
    reason: str

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclass
class SkewReport:
    feature_set: str
    columns: tuple[str, ...]
    rows: int = 0
    skipped: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)
    #: label rows left out of the comparison because one of their states is unreadable
    unreadable_rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.stale and not self.unreadable and self.rows > 0

    def add_unreadable(self, finding: Unreadable) -> None:
        if finding not in self.unreadable:  # a record shared by several rows is one finding
            self.unreadable.append(finding)

    def by_feature(self) -> dict[str, int]:
        counts = dict.fromkeys(self.columns, 0)
        for m in self.mismatches:
            counts[m.column] += 1
        return counts

    def to_dict(self) -> dict[str, object]:
        return {
            "feature_set": self.feature_set,
            "ok": self.ok,
            "rows": self.rows,
            "skipped_rows": self.skipped,
            "compared_values": self.rows * len(self.columns),
            "mismatches_by_feature": self.by_feature(),
            "stale": self.stale,
            "mismatches": [m.to_dict() for m in self.mismatches],
            "unreadable": [u.to_dict() for u in self.unreadable],
            "unreadable_rows": self.unreadable_rows,
        }

    def render(self, limit: int = 20) -> str:
        lines = [
            f"skew check of feature set {self.feature_set!r}: {self.rows} rows x "
            f"{len(self.columns)} features compared (online vector via the generated "
            "handler vs point-in-time training row)"
        ]
        if self.skipped:
            lines.append(f"  {self.skipped} label rows skipped: no online record in any group")
        if self.unreadable_rows:
            lines.append(
                f"  {self.unreadable_rows} label rows not compared: an online state of theirs "
                "cannot be read"
            )
        lines += [f"  stale: {s}" for s in self.stale]
        lines += [
            f"  UNREADABLE {u.group} {u.record_id!r} {u.feature}: {u.reason}"
            for u in self.unreadable
        ]
        for column, count in self.by_feature().items():
            lines.append(
                f"  {'ok ' if count == 0 else 'FAIL'} {column}: "
                f"{count} mismatch{'es' if count != 1 else ''}"
            )
        for m in self.mismatches[:limit]:
            keys = ", ".join(f"{k}={v}" for k, v in m.keys.items())
            lines.append(
                f"  row {m.row} ({keys}, at {m.label_time}): {m.column}: online "
                f"{_show(m.online)} != training {_show(m.training)}"
            )
        if len(self.mismatches) > limit:
            lines.append(f"  ... and {len(self.mismatches) - limit:,} more")
        lines.append(self._verdict())
        return "\n".join(lines)

    def _verdict(self) -> str:
        if self.ok:
            return "OK: training = serving"
        failures = [f"{len(self.mismatches):,} mismatching values"] if self.rows else []
        if self.unreadable:
            failures.append(f"{len(self.unreadable):,} unreadable online states")
        if self.stale:
            failures.append("stale generated code")
        if not self.rows:
            failures.insert(0, "nothing to compare")
        return "FAILED: " + ", ".join(failures)


# ------------------------------------------------------------------------------ the check


class _Moment:
    """A settable clock: the instant both the record source and the parser judge TTL at."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def skew_check(
    config: ProjectConfig,
    spec: ProjectSpec,
    feature_set: str,
    *,
    sample: int = 100,
    seed: int = 0,
    labels: str | Path | None = None,
    store: LocalStore | None = None,
) -> SkewReport:
    """Compare online vectors with point-in-time training rows for ``sample`` label rows."""
    from fsgen.pit import build_dataset
    from fsgen.serving.handler import ServingError, check_fresh, load_handler
    from fsgen.store import LocalStore

    fs = spec.feature_set(feature_set)
    owned = store is None
    store = store or LocalStore.open(config, spec)
    try:
        report = SkewReport(feature_set=fs.name, columns=tuple(fs.columns))
        try:
            check_fresh(config, spec, feature_set)
        except ServingError as exc:
            report.stale.append(str(exc))
        moment = _Moment()
        handler = load_handler(
            config, spec, feature_set, None, LocalRecordSource(store, moment), moment, check=False
        )
        runtime: FeatureSetRuntime = handler.module.RUNTIME
        if runtime.missing == "error":
            # compare missing values as missing on both sides instead of aborting the check
            runtime = handler.endpoint.runtime = dataclasses.replace(runtime, missing="null")
            spec = _with_missing_null(spec, fs.name)
        live = {g.name: _live_records(store, g.name) for g in runtime.groups}
        rows = (
            _rows_from_labels(labels, runtime, sample, seed)
            if labels is not None
            else _sampled_rows(runtime, live, sample, seed)
        )
        newest = _newest_events(store, runtime, rows)
        timed: list[tuple[dict[str, object], int]] = []
        online: list[list[Value] | MissingFeatureError] = []
        for row in rows:
            findings: list[Unreadable] = []
            micros = _label_micros(runtime, live, row, newest, findings)
            vector: list[Value] | MissingFeatureError | None = None
            if micros is not None and not findings:
                moment.now = micros / 1_000_000
                try:
                    vector = handler.endpoint.vectors([row], now=moment.now)[0]
                except MissingFeatureError as exc:
                    vector = exc
                except AggregationError as exc:  # what _label_micros could still read
                    findings.append(_unreadable_row(runtime, row, str(exc)))
            for finding in findings:
                report.add_unreadable(finding)
            if findings:
                report.unreadable_rows += 1
            elif micros is None:
                report.skipped += 1
            else:
                assert vector is not None
                timed.append((row, micros))
                online.append(vector)
        if not timed:
            return report
        frame = _label_frame(fs.label_time, timed)
        training = build_dataset(config, spec, feature_set, frame, store=store.root)
        report.rows = len(timed)
        kinds = {c.name: _kind(runtime, c.name) for c in runtime.columns}
        approximate = {c.name for c in runtime.columns if _sql_rounded(runtime, c.name)}
        for index, ((row, _), vector) in enumerate(zip(timed, online, strict=True)):
            label_time = str(frame[fs.label_time].iloc[index])
            keys = {k: row[k] for k in _key_columns(runtime)}
            for position, column in enumerate(report.columns):
                trained = _plain(training[column].iloc[index])
                served: object = (
                    f"<{vector}>" if isinstance(vector, MissingFeatureError) else vector[position]
                )
                tolerance = SQL_TOLERANCE if column in approximate else None
                if not same(kinds[column], served, trained, tolerance):
                    report.mismatches.append(
                        Mismatch(index + 1, keys, label_time, column, served, trained)
                    )
        return report
    finally:
        if owned:
            store.close()


def _with_missing_null(spec: ProjectSpec, name: str) -> ProjectSpec:
    sets = tuple(
        f.model_copy(update={"missing": "null"}) if f.name == name else f for f in spec.feature_sets
    )
    return spec.model_copy(update={"feature_sets": sets})


# ------------------------------------------------------------------------------ label rows


def _key_columns(runtime: FeatureSetRuntime) -> list[str]:
    return list(dict.fromkeys(c for g in runtime.groups for c, _, _ in g.keys))


def _request_fields(runtime: FeatureSetRuntime) -> list[tuple[str, str]]:
    fields: dict[str, str] = {}
    for od in runtime.on_demand:
        for f in od.request:
            fields.setdefault(f.name, f.type)
    return list(fields.items())


def _live_records(store: LocalStore, group: str) -> dict[str, dict[str, object]]:
    """The group's online records that are not deleted, by record identifier (sorted)."""
    rows = store.online.snapshot(store.runtime(group))
    return {rid: rows[rid][2] for rid in sorted(rows) if not rows[rid][1]}


def _sample_value(kind: str, rng: random.Random, row: int) -> object:
    if kind == "int":
        return rng.randint(0, 1000)
    if kind == "float":
        return round(rng.uniform(0.0, 1000.0), 2)
    if kind == "bool":
        return rng.random() < 0.5
    if kind.startswith("list["):
        inner = kind[5:-1]
        return [_sample_value(inner, rng, row) for _ in range(3)]
    return f"sample-{row}"


def _sampled_rows(
    runtime: FeatureSetRuntime,
    live: dict[str, dict[str, dict[str, object]]],
    sample: int,
    seed: int,
) -> list[dict[str, object]]:
    """Up to ``sample`` distinct key rows: every one when the store holds no more (2 entities
    are 2 rows, not 2 rows compared 50 times each), else a seeded draw without replacement."""
    rng = random.Random(seed)
    for group, stored in live.items():
        if not stored:
            raise SkewCheckError(
                f"group {group!r} has no live online records to sample; "
                "ingest records first (fsgen ingest / fsgen stream replay)"
            )
    # one chooser per entity (its label key columns): the keys of every group of that entity,
    # so an entity one group holds and another lacks (a driver seen only on the stream) is
    # drawn too; its other groups' values are then missing on both sides
    choosers: dict[tuple[str, ...], dict[tuple[object, ...], None]] = {}
    chosen: set[str] = set()
    for g in runtime.groups:
        columns = tuple(c for c, _, _ in g.keys)
        if columns not in choosers:
            if all(column in chosen for column in columns):
                continue  # another group's keys already give this row's key columns
            chosen.update(columns)
            choosers[columns] = {}
        pool = choosers[columns]
        for record in live[g.name].values():
            pool.setdefault(tuple(record[k] for _, k, _ in g.keys), None)
    pools = [(columns, list(pool)) for columns, pool in choosers.items()]
    if math.prod(len(values) for _, values in pools) <= sample:
        picks = list(itertools.product(*(range(len(values)) for _, values in pools)))
    else:
        seen: set[tuple[int, ...]] = set()
        picks = []
        while len(picks) < sample:
            pick = tuple(rng.randrange(len(values)) for _, values in pools)
            if pick not in seen:
                seen.add(pick)
                picks.append(pick)
    rows: list[dict[str, object]] = []
    for index, pick in enumerate(picks):
        row: dict[str, object] = {}
        for (columns, values), at in zip(pools, pick, strict=True):
            row.update(zip(columns, values[at], strict=True))
        for name, kind in _request_fields(runtime):
            row[name] = _sample_value(kind, rng, index + 1)
        rows.append(row)
    return rows


def _rows_from_labels(
    labels: str | Path, runtime: FeatureSetRuntime, sample: int, seed: int
) -> list[dict[str, object]]:
    import pandas as pd

    path = Path(labels)
    if not path.is_file():
        raise SkewCheckError(f"labels file {path} does not exist")
    keys = _key_columns(runtime)
    wanted = keys + [name for name, _ in _request_fields(runtime)]
    try:
        frame = (
            pd.read_parquet(path)
            if path.suffix in (".parquet", ".pq")
            else pd.read_csv(path, dtype=dict.fromkeys(keys, str))
        )
    except pd.errors.EmptyDataError:
        raise SkewCheckError(
            f"{path}: the labels file is empty; it needs a header naming the key columns "
            f"({', '.join(keys)}) and a row per entity to compare"
        ) from None
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise SkewCheckError(
            f"{path}: labels lack column(s) {', '.join(repr(c) for c in missing)} "
            f"(the keys and request fields of feature set {runtime.name!r}; "
            f"the file has {', '.join(map(str, frame.columns))})"
        )
    frame = frame[wanted].drop_duplicates(subset=keys)
    rows = [{k: _plain(v) for k, v in r.items()} for r in frame.to_dict("records")]
    if len(rows) > sample:
        rows = random.Random(seed).sample(rows, sample)
    return rows


def _event_micros(kind: str, value: object) -> int:
    """An event time as integer epoch microseconds, rounded as the point-in-time engines do."""
    if kind == FRACTIONAL:
        scaled = float(value) * 1_000_000  # type: ignore[arg-type]
        return int(math.copysign(math.floor(abs(scaled) + 0.5), scaled))
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _newest_events(
    store: LocalStore, runtime: FeatureSetRuntime, rows: Sequence[dict[str, object]]
) -> dict[str, dict[str, int]]:
    """Per aggregation group, the newest event time (µs) of the offline history of each of
    the rows' entities that has events."""
    from fsgen.runtime.aggwrite import AggregationRuntime
    from fsgen.store import offline

    out: dict[str, dict[str, int]] = {}
    for g in runtime.groups:
        if not g.aggregations:
            continue
        ids = sorted({runtime.record_ids(row)[g.name] for row in rows})
        art = AggregationRuntime(store.runtime(g.name), tuple(g.aggregations))
        history = offline.event_history(art, store.root / "offline" / g.name, ids)
        out[g.name] = {i: max(e[0] for e in events) for i, events in history.items() if events}
    return out


def _label_micros(
    runtime: FeatureSetRuntime,
    live: dict[str, dict[str, dict[str, object]]],
    row: dict[str, object],
    newest: dict[str, dict[str, int]],
    unreadable: list[Unreadable],
) -> int | None:
    """The latest event time among the row's online records; None when it has none. An
    aggregation group's record counts with its newest applied event plus 1 µs (the state's
    watermark; the record's own EventTime is its write time): from there on the state is
    exact, and every event it holds is inside the windows, so the windows are compared full.
    The entity's newest offline event counts too (plus 1 µs): a state that lacks events of
    the history (one that did not fit a record, a failed write) is compared after them, where
    serving misses them, instead of at its own watermark, where no row could tell. A state
    serving cannot read (corrupted, another format or definition) is appended to
    ``unreadable``; the caller leaves such a row out of the comparison."""
    ids = runtime.record_ids(row)
    times: list[int] = []
    for g in runtime.groups:
        record = live[g.name].get(ids[g.name])
        newest_event = newest.get(g.name, {}).get(ids[g.name])
        if newest_event is not None:
            times.append(newest_event + 1)
        if record is None:
            continue
        if not g.aggregations:
            times.append(_event_micros(g.event_time_kind, record[g.event_time]))
            continue
        found = len(unreadable)
        micros = _state_micros(g, ids[g.name], record, unreadable)
        if len(unreadable) == found:
            times.append(micros)
    return max(times) if times else None


def _state_micros(
    reader: GroupReader, record_id: str, record: dict[str, object], unreadable: list[Unreadable]
) -> int:
    """The label instant of one aggregation group's state record: its newest watermark + 1 µs
    (its EventTime when it holds no event); every state it cannot decode is a finding."""
    from fsgen.runtime.aggregate import AggregationState

    marks = []
    for d in reader.aggregations:
        text = record.get(d.state_column)
        try:
            state = AggregationState.decode(d, text if isinstance(text, str) else None)
        except AggregationError as exc:  # serving refuses it too
            reason = for_group(str(exc), reader.name)
            unreadable.append(Unreadable(reader.name, record_id, d.state_column, reason))
            continue
        if state.watermark is not None:
            marks.append(state.watermark + 1)
    if marks:
        return max(marks)
    return _event_micros(reader.event_time_kind, record[reader.event_time])


def _unreadable_row(runtime: FeatureSetRuntime, row: dict[str, object], reason: str) -> Unreadable:
    """A row whose vector serving refused on reading a state: named by the row's first
    aggregation group (the reason names the aggregation)."""
    ids = runtime.record_ids(row)
    group = next((g for g in runtime.groups if g.aggregations), runtime.groups[0])
    return Unreadable(group.name, ids[group.name], "<state>", for_group(reason, group.name))


def _label_frame(label_time: str, timed: Sequence[tuple[dict[str, object], int]]) -> pd.DataFrame:
    import pandas as pd

    records = []
    for row, micros in timed:
        moment = _EPOCH + timedelta(microseconds=micros)
        records.append({**row, label_time: moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
    return pd.DataFrame.from_records(records)


# ------------------------------------------------------------------------------ comparing


def _kind(runtime: FeatureSetRuntime, column: str) -> tuple[str, bool]:
    """(scalar kind, is a collection) of a column."""
    for c in runtime.columns:
        if c.name != column:
            continue
        if c.kind == "on_demand":
            od = next(o for o in runtime.on_demand if o.name == c.feature)
            return od.kind, od.collection is not None
        reader = runtime.group(c.group or "")
        definition = _aggregation_of(reader, c.feature)
        if definition is not None:
            from fsgen.runtime.aggregate import output_kind

            return output_kind(definition.function, definition.value_kind)
        kind, collection = next((k, coll) for n, k, coll in reader.columns if n == c.feature)
        return kind, collection is not None
    raise KeyError(column)


def _aggregation_of(reader: GroupReader, feature: str) -> AggregationDef | None:
    return next((d for d in reader.aggregations if feature in d.feature_names), None)


#: Relative tolerance for Fractional sums, means, variances and standard deviations of
#: aggregations: the training set's SQL engine adds doubles in an order of its own, serving
#: sums exactly and rounds once (README "Aggregations"); 1e-9 covers the recursive-summation
#: bound n·2⁻⁵² of non-negative values up to millions of events per window.
SQL_TOLERANCE = 1e-9
_ROUNDED = ("sum", "mean", "variance", "variance_pop", "stddev", "stddev_pop")


def _sql_rounded(runtime: FeatureSetRuntime, column: str) -> bool:
    """A Fractional aggregation feature whose SQL value is a double sum (see SQL_TOLERANCE)."""
    c = next(c for c in runtime.columns if c.name == column)
    if c.kind == "on_demand":
        return False
    definition = _aggregation_of(runtime.group(c.group or ""), c.feature)
    if definition is None or definition.function not in _ROUNDED:
        return False
    return definition.function != "sum" or definition.value_kind == FRACTIONAL


def _plain(value: object) -> object:
    """A pandas/numpy cell as a plain Python value; NA and NaN as None."""
    if value is None:
        return None
    if type(value).__module__ == "numpy":
        value = value.tolist()  # type: ignore[attr-defined]
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
    except ImportError:  # pragma: no cover
        pass
    return value


def _same_scalar(kind: str, a: object, b: object) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if kind == FRACTIONAL:
        return (
            type(a) is float and type(b) is float and struct.pack("<d", a) == struct.pack("<d", b)
        )
    if kind == INTEGRAL:
        return type(a) is int and type(b) is int and a == b
    return type(a) is str and type(b) is str and a == b


def same(
    kind: tuple[str, bool], online: object, training: object, tolerance: float | None = None
) -> bool:
    """Equal in type and value; floats bit for bit (0.0 and -0.0 differ), or within the
    relative ``tolerance`` when one is given."""
    scalar, collection = kind
    if (
        tolerance is not None
        and type(online) is float
        and type(training) is float
        and not collection
    ):
        return abs(online - training) <= tolerance * max(abs(online), abs(training))
    if not collection or online is None or training is None:
        return _same_scalar(scalar, online, training)
    if not isinstance(online, list) or not isinstance(training, list | tuple):
        return False
    return len(online) == len(training) and all(
        _same_scalar(scalar, a, _plain(b)) for a, b in zip(online, training, strict=True)
    )


def _show(value: object) -> str:
    if isinstance(value, float):
        return f"{value!r} ({value.hex()})"
    return repr(value)


def _jsonable(value: object) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


__all__ = ["Mismatch", "SkewCheckError", "SkewReport", "Unreadable", "same", "skew_check"]
