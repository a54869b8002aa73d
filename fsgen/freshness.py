"""Freshness: how old is the newest record of each group, and is that older than it may be?

Groups declare ``max_staleness`` (``GroupSpec.max_staleness_seconds``). For every group this
module measures, in the local store:

- **online**: record count, the newest event time and its age, and how many records have
  expired (``ExpiresAt = EventTime + TTL`` before now: a GetRecord would not return them);
  read from the online store's SQLite table (its ``_event_seconds``, ``_expires_at`` and
  ``_deleted`` columns, see :mod:`fsgen.store.online`), opened read-only;
- **offline**: row count and the newest event time and its age, with DuckDB over the group's
  Parquet files (contracts.md layout). Deleted records (tombstones) are not counted.

An aggregation group's online records are per-entity states whose EventTime is their write
time (DESIGN "Aggregations"): every write rewrites them at the wall clock, a backfill of
months-old events too. So its online side is measured by the newest event folded into any
state (the states' watermark, what serving answers from; ``measured_by`` says so), and the
write time is shown beside it, never judged: a rebuild is not new data. A state serving
cannot read is counted apart (``unreadable``) and holds no fresh event.

A delete is not fresh data: a soft-deleted online row and an offline tombstone are left out of
the record counts and of the newest event time (a delete newer than every write leaves a
stale group stale), and reported beside them as ``deletes`` / ``newest_delete_time``.

A group is ``stale`` when the newest record of any store it enables is older than its
``max_staleness`` (a pipeline that feeds one store but not the other is broken too),
``empty`` when no enabled store has a record, ``future`` when a store's newest record is
later than ``now`` (``--now`` before the data, or event times from a skewed clock: an age
cannot be judged, so it fails rather than passing as fresh; ``age_seconds`` is then negative
in the JSON, and the text says "after"), ``fresh`` otherwise, and ``unbounded`` when it
declares no ``max_staleness`` (measured, never failing, and never counted as fresh; a record
after ``now`` is shown as such).
:func:`publish` puts the ages as CloudWatch metrics (``PutMetricData``) so alarms can watch
them on AWS.

``now`` is a parameter everywhere (``fsgen freshness --now``), so tests and reports are
reproducible.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fsgen.runtime.encoding import format_event_time, parse_event_time

if TYPE_CHECKING:
    from fsgen.config import ProjectConfig
    from fsgen.spec import GroupSpec, ProjectSpec

Status = Literal["fresh", "stale", "empty", "future", "unbounded"]
STATE_EVENTS = "newest event in the states"
"""``measured_by`` of an aggregation group's online side: the newest event time folded into
any state (the states' watermark), which is what serving answers from; not the write time"""
FAILING: tuple[str, ...] = ("stale", "empty", "future")
NAMESPACE = "fsgen/FeatureStore"


@dataclass(frozen=True)
class StoreFreshness:
    records: int
    newest_event_time: str | None
    age_seconds: float | None
    expired: int = 0
    measured_by: str = "event time"
    """What ``newest_event_time`` is: the records' event time, or, for an aggregation group's
    online states (:data:`STATE_EVENTS`), the newest event folded into any of them."""
    newest_write_time: str | None = None
    """An aggregation group's online side: when a state was last written (its record's
    EventTime). A backfill rewrites every state at the wall clock, so this is no data time."""
    unreadable: int = 0
    """An aggregation group's online side: state records with a state serving cannot read
    (corrupt, another format or definition); they count as records, never as fresh data."""
    deletes: int = 0
    """Deletes, never counted as records nor as fresh data: online, the soft-deleted rows (a
    HardDelete leaves none); offline, the tombstones (``is_deleted``: DeleteRecord, and an
    aggregation group's retracted event versions)."""
    newest_delete_time: str | None = None
    """The event time of the newest of ``deletes``."""

    @property
    def expired_share(self) -> float:
        return self.expired / self.records if self.records else 0.0


@dataclass(frozen=True)
class GroupFreshness:
    group: str
    max_staleness_seconds: int | None
    online: StoreFreshness | None
    """None when the group has no online store."""
    offline: StoreFreshness | None
    status: Status
    reason: str

    @property
    def failing(self) -> bool:
        return self.status in FAILING

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        for side in ("online", "offline"):
            store = getattr(self, side)
            if store is not None:
                data[side]["expired_share"] = round(store.expired_share, 6)
        return data


@dataclass(frozen=True)
class FreshnessReport:
    now: str
    groups: tuple[GroupFreshness, ...]

    @property
    def failing(self) -> list[GroupFreshness]:
        return [g for g in self.groups if g.failing]

    def to_dict(self) -> dict[str, object]:
        return {
            "now": self.now,
            "ok": not self.failing,
            "groups": [g.to_dict() for g in self.groups],
        }


def _iso(seconds: float) -> str:
    return str(format_event_time("String", seconds))


def _store(count: int, newest: float | None, now: float, expired: int = 0) -> StoreFreshness:
    if not count or newest is None:
        return StoreFreshness(
            records=count, newest_event_time=None, age_seconds=None, expired=expired
        )
    return StoreFreshness(
        records=count,
        newest_event_time=_iso(newest),
        age_seconds=round(now - newest, 6),
        expired=expired,
    )


def _with_deletes(found: StoreFreshness, count: int, newest: float | None) -> StoreFreshness:
    if not count:
        return found
    when = None if newest is None else _iso(float(newest))
    return replace(found, deletes=int(count), newest_delete_time=when)


def online_freshness(store_path: Path, group: GroupSpec, now: float) -> StoreFreshness:
    path = store_path / "online.sqlite"
    if not path.exists():
        return _store(0, None, now)
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60.0)
    try:
        table = '"' + f"fg:{group.name}".replace('"', '""') + '"'
        exists = con.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (f"fg:{group.name}",)
        ).fetchone()
        if not exists:
            return _store(0, None, now)
        count, newest, expired = con.execute(
            f"SELECT count(*), max(_event_seconds), "
            f"coalesce(sum(_expires_at IS NOT NULL AND _expires_at < ?), 0) "
            f"FROM {table} WHERE _deleted = 0",
            (now,),
        ).fetchone() or (0, None, 0)
        deletes = con.execute(
            f"SELECT count(*), max(_event_seconds) FROM {table} WHERE _deleted <> 0"
        ).fetchone() or (0, None)
        if group.aggregations:
            folded, unreadable = _state_events(con, table, group)
    finally:
        con.close()
    if not group.aggregations:
        return _with_deletes(_store(int(count), newest, now, int(expired)), *deletes)
    found = _store(int(count), folded, now, int(expired))
    if not found.newest_event_time:  # records, but no event in any readable state
        found = replace(found, newest_event_time=None, age_seconds=None)
    return _with_deletes(
        replace(
            found,
            measured_by=STATE_EVENTS,
            newest_write_time=None if newest is None else _iso(float(newest)),
            unreadable=unreadable,
        ),
        *deletes,
    )


def _state_events(
    con: sqlite3.Connection, table: str, group: GroupSpec
) -> tuple[float | None, int]:
    """(the newest event time folded into any readable state, in epoch seconds; the state
    records with a state serving would refuse). A state is ``[format, fingerprint,
    watermark, ...]`` (:mod:`fsgen.runtime.aggcodec`), its watermark the newest applied
    event in µs; SQLite's JSON functions read it without decoding the tiles."""
    from fsgen.runtime.aggcodec import FORMAT_VERSION

    marks, bad, params = [], [], []
    for a in group.aggregations:
        col = '"' + a.state_column.replace('"', '""') + '"'
        # CASE, not AND: SQLite may evaluate both sides of an AND, and json_extract raises
        # on text that is not JSON
        ok = (
            f"(CASE WHEN json_valid({col}) THEN coalesce(json_type({col}) = 'array' AND "
            f"json_extract({col}, '$[0]') = ? AND json_extract({col}, '$[1]') = ?, 0) "
            "ELSE 0 END)"
        )
        marks.append(f"max(CASE WHEN {ok} THEN json_extract({col}, '$[2]') END)")
        bad.append(f"({col} IS NOT NULL AND NOT {ok})")
        params += [FORMAT_VERSION, a.runtime().fingerprint]
    row = con.execute(
        f"SELECT {', '.join(marks)}, coalesce(sum({' OR '.join(bad)}), 0) FROM {table} "
        "WHERE _deleted = 0",
        [*params, *params],
    ).fetchone()
    found = [m for m in (row[:-1] if row else ()) if isinstance(m, int | float)]
    newest = max(found) / 1_000_000 if found else None
    return newest, int(row[-1]) if row else 0


def offline_freshness(store_path: Path, group: GroupSpec, now: float) -> StoreFreshness:
    import duckdb

    from fsgen.store import iceberg, offline

    data = store_path / "offline" / group.name / "data"
    if group.offline.table_format == iceberg.ICEBERG:
        files = iceberg.data_file_names(store_path, group.name)
        if not files:
            return _store(0, None, now)
        source = offline.files_source_sql(files)
    else:
        iceberg.check_layout(data.parent, group.name, group.offline.table_format)
        if not any(data.glob("*/*/*/*/*.parquet")):
            return _store(0, None, now)
        source = f"read_parquet('{data.as_posix()}/*/*/*/*/[!._]*.parquet')"
    col = '"' + group.event_time.name.replace('"', '""') + '"'
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")  # ISO-8601 without an offset is UTC, as in fsgen
        if group.event_time.dtype.scalar.value == "Fractional":
            count, newest = con.execute(
                f"SELECT count(*), max({col}) FROM {source} WHERE NOT is_deleted"
            ).fetchone() or (0, None)
            deletes = con.execute(
                f"SELECT count(*), max({col}) FROM {source} WHERE is_deleted"
            ).fetchone() or (0, None)
            return _with_deletes(_store(int(count), newest, now), *deletes)
        # String event times: DuckDB parses ISO-8601; anything else the runtime's parser does.
        count, newest, odd = con.execute(
            f"SELECT count(*), max(epoch(try_cast({col} AS TIMESTAMPTZ))), "
            f"count(*) FILTER (WHERE try_cast({col} AS TIMESTAMPTZ) IS NULL) "
            f"FROM {source} WHERE NOT is_deleted"
        ).fetchone() or (0, None, 0)
        if odd:
            rows = con.execute(
                f"SELECT DISTINCT {col} FROM {source} WHERE NOT is_deleted AND "
                f"try_cast({col} AS TIMESTAMPTZ) IS NULL"
            ).fetchall()
            parsed = [float(parse_event_time("String", r[0])) for r in rows]
            newest = max([newest, *parsed] if newest is not None else parsed)
        tombstones = [
            parse_event_time("String", r[0])
            for r in con.execute(f"SELECT DISTINCT {col} FROM {source} WHERE is_deleted").fetchall()
        ]
        deleted = con.execute(f"SELECT count(*) FROM {source} WHERE is_deleted").fetchone()
    finally:
        con.close()
    latest = max((float(t) for t in tombstones), default=None)
    return _with_deletes(_store(int(count), newest, now), int(deleted[0]) if deleted else 0, latest)


def group_freshness(store_path: Path, group: GroupSpec, now: float) -> GroupFreshness:
    from fsgen.store.commit import settled

    with settled(store_path, "freshness"):  # online and offline read at one consistent moment
        online = online_freshness(store_path, group, now) if group.online.enabled else None
        offline = offline_freshness(store_path, group, now) if group.offline.enabled else None
    stores = {name: s for name, s in (("online", online), ("offline", offline)) if s}
    limit = group.max_staleness_seconds
    if not any(s.records for s in stores.values()):
        return GroupFreshness(
            group.name,
            limit,
            online,
            offline,
            "empty",
            "no records in " + " or ".join(stores) + " store",
        )
    ahead = [
        f"newest {name} record is {_span(-s.age_seconds)} after now"
        for name, s in stores.items()
        if s.age_seconds is not None and s.age_seconds < 0
    ]
    if limit is None:  # measured, never judged: a record after now is shown, not failed
        reason = "; ".join(["no max_staleness declared", *ahead])
        return GroupFreshness(group.name, None, online, offline, "unbounded", reason)
    if ahead:
        return GroupFreshness(
            group.name,
            limit,
            online,
            offline,
            "future",
            "; ".join(ahead) + " (is --now before the data, or a clock skewed?)",
        )
    too_old = [
        f"newest {name} record is {_span(s.age_seconds)} old"
        for name, s in stores.items()
        if limit is not None and (s.age_seconds is None or s.age_seconds > limit)
    ]
    if too_old:
        return GroupFreshness(
            group.name,
            limit,
            online,
            offline,
            "stale",
            "; ".join(too_old) + f" (max staleness {_span(limit)})",
        )
    return GroupFreshness(
        group.name, limit, online, offline, "fresh", f"within max staleness {_span(limit)}"
    )


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "infinitely"
    if seconds < 0:
        return f"-{_span(-seconds)}"
    out: list[str] = []
    rest = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size or (unit == "s" and not out):
            out.append(f"{rest // size}{unit}")
            rest %= size
        if len(out) == 2:
            break
    return " ".join(out)


def report(
    config: ProjectConfig, spec: ProjectSpec, *, now: float, groups: list[str] | None = None
) -> FreshnessReport:
    """Freshness of ``groups`` (default: every group) in the project's local store."""
    chosen = [spec.group(name) for name in groups] if groups else list(spec.groups)
    return FreshnessReport(
        now=_iso(now), groups=tuple(group_freshness(config.store_path, g, now) for g in chosen)
    )


def render(rep: FreshnessReport) -> str:
    lines: list[str] = [f"Freshness at {rep.now}:"]
    for g in rep.groups:
        lines.append(f"  {g.group}: {g.status.upper()} ({g.reason})")
        for name in ("online", "offline"):
            s: StoreFreshness | None = getattr(g, name)
            if s is None:
                continue
            states = s.measured_by == STATE_EVENTS
            noun = "aggregation state" if states else "record"
            count = f"{s.records:,} {noun}{'' if s.records == 1 else 's'}"
            if states:
                newest = (
                    f"newest event {s.newest_event_time} ({_age(s.age_seconds)})"
                    if s.newest_event_time
                    else "no event in any readable state"
                )
                newest += f", states last written {s.newest_write_time}"
                if s.unreadable:
                    newest += (
                        f"; {s.unreadable:,} state{'' if s.unreadable == 1 else 's'} serving "
                        "cannot read, not counted as fresh"
                    )
                expired = ""  # aggregation states have no TTL: their windows are their age
            else:
                newest = f"newest {s.newest_event_time} ({_age(s.age_seconds)})"
                expired = (
                    f", {s.expired:,} expired ({s.expired_share:.1%})" if name == "online" else ""
                )
            text = f"{count}, {newest}{expired}" if s.records else "no records"
            lines.append(f"    {name:<8} {text}{_deletes(name, s)}")
    lines.append(_verdict(rep))
    return "\n".join(lines) + "\n"


def _deletes(name: str, s: StoreFreshness) -> str:
    if not s.deletes:
        return ""
    what = "soft-deleted record" if name == "online" else "tombstone"
    return (
        f"; {s.deletes:,} {what}{'' if s.deletes == 1 else 's'} (newest "
        f"{s.newest_delete_time}), not counted as fresh"
    )


def _age(seconds: float | None) -> str:
    if seconds is not None and seconds < 0:
        return f"{_span(-seconds)} after now"
    return f"{_span(seconds)} old"


def _verdict(rep: FreshnessReport) -> str:
    """The closing line: failing groups by name, and unbounded ones never called fresh."""
    failing = rep.failing
    unbounded = [g.group for g in rep.groups if g.status == "unbounded"]
    fresh = sum(g.status == "fresh" for g in rep.groups)
    parts = []
    if failing:
        parts.append(
            f"{len(failing)} of {len(rep.groups)} group(s) failing: "
            + ", ".join(f"{g.group} ({g.status})" for g in failing)
        )
    elif fresh == len(rep.groups):
        parts.append(f"All {fresh} group(s) fresh")
    else:
        parts.append(f"{fresh} of {len(rep.groups)} group(s) fresh")
    if unbounded:
        parts.append(
            f"{len(unbounded)} unbounded (no max_staleness, not judged): " + ", ".join(unbounded)
        )
    return "; ".join(parts) + "."


def metric_data(rep: FreshnessReport, project: str) -> list[dict[str, Any]]:
    """CloudWatch MetricData for a report: ages in seconds, expired share, and Stale (0/1)."""
    from datetime import UTC, datetime

    when = datetime.fromisoformat(rep.now.replace("Z", "+00:00")).astimezone(UTC)
    data: list[dict[str, Any]] = []
    for g in rep.groups:
        dims = [{"Name": "Project", "Value": project}, {"Name": "FeatureGroup", "Value": g.group}]

        def put(name: str, value: float, unit: str, dims: list[dict[str, str]] = dims) -> None:
            if not math.isnan(value):
                data.append(
                    {
                        "MetricName": name,
                        "Dimensions": dims,
                        "Timestamp": when,
                        "Value": float(value),
                        "Unit": unit,
                    }
                )

        # a record after ``now`` has no age to report (status ``future`` says so: Stale = 1)
        if g.online is not None and g.online.age_seconds is not None:
            if g.online.age_seconds >= 0:
                put("OnlineNewestRecordAge", g.online.age_seconds, "Seconds")
            put("OnlineExpiredRecordShare", g.online.expired_share * 100.0, "Percent")
        if g.offline is not None and g.offline.age_seconds is not None:
            if g.offline.age_seconds >= 0:
                put("OfflineNewestRecordAge", g.offline.age_seconds, "Seconds")
        put("Stale", 1.0 if g.failing else 0.0, "Count")
    return data


def publish(
    rep: FreshnessReport,
    project: str,
    *,
    region: str,
    namespace: str = NAMESPACE,
    client: Any = None,
) -> int:
    """PutMetricData for the report (20 metrics a call); returns how many were sent."""
    if client is None:
        import boto3

        client = boto3.client("cloudwatch", region_name=region)
    data = metric_data(rep, project)
    for start in range(0, len(data), 20):
        client.put_metric_data(Namespace=namespace, MetricData=data[start : start + 20])
    return len(data)
