"""The audit trail: who changed the feature store, what was ingested, when, and how it ended.

Two append-only JSON-lines logs make up the trail, each written by the code that did the work,
at the moment it finished:

- the **apply history** of each backend (``<store>/history.jsonl`` for local,
  ``<store>/aws/history.jsonl`` for aws; written by :mod:`fsgen.plan.apply`): who applied which
  plan, when, the plan's summary and stages, and the result;
- the **ingestion log** ``<store>/audit.jsonl`` (written here, by :func:`record_ingest`, which
  the local store calls after every ingestion run): the group, the source, counts read /
  written / rejected, where the rejects went, and the result; and every ``fsgen
  delete-record`` (:func:`record_delete`: group, record id, event time, mode), so erasures
  are auditable too.

:func:`query` reads both into one time-ordered list of :class:`AuditEvent` (``fsgen history``).
Keeping each log with its writer means an apply never has to know about ingestion and no
event is stored twice. Writes are single ``O_APPEND`` writes of one line under an exclusive
``flock``, fsynced, so concurrent writers never interleave and a crash loses at most the line
being written; a line that does not parse is reported with its file and line number, never
skipped silently.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from fsgen.errors import StoreError

if TYPE_CHECKING:
    from fsgen.config import ProjectConfig

AUDIT_FILE = "audit.jsonl"
HISTORY_FILE = "history.jsonl"
EventKind = Literal["apply", "ingest", "delete", "backfill"]
KINDS: tuple[str, ...] = ("apply", "ingest", "delete", "backfill")


@dataclass(frozen=True)
class AuditEvent:
    """One entry of the trail, the same shape for every kind (``details`` holds the rest)."""

    kind: str
    when: str
    """UTC, ISO-8601 with a ``Z`` suffix: sorts as text."""
    who: str
    backend: str
    result: str
    """apply: ``applied`` / ``failed``; ingest: ``ok`` / ``rejects`` / ``failed``."""
    summary: str
    groups: tuple[str, ...] = ()
    details: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["groups"] = list(self.groups)
        return data


class IngestRun(Protocol):
    """What :func:`record_ingest` reads from an ingestion result (``fsgen.store.IngestResult``)."""

    group: str
    source: str
    run_id: str
    read: int
    written: int
    rejected: int
    skipped: int
    stored: int
    recomputed: int
    rejects_path: Path | None
    seconds: float


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def who() -> str:
    """``user@host``; ``FSGEN_USER`` overrides the user (CI service accounts)."""
    user = os.environ.get("FSGEN_USER")
    if not user:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
    return f"{user}@{socket.gethostname()}"


def append(path: Path, entry: Mapping[str, object]) -> None:
    """Append one JSON line to ``path`` atomically with respect to other writers."""
    line = (json.dumps(dict(entry), sort_keys=True, ensure_ascii=False, default=str) + "\n").encode(
        "utf-8"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)  # closing releases the lock


def record(store_path: Path, event: AuditEvent) -> None:
    """Append ``event`` to the store's audit log."""
    if event.kind not in KINDS:
        raise ValueError(f"unknown audit event kind {event.kind!r} (known: {', '.join(KINDS)})")
    append(Path(store_path) / AUDIT_FILE, event.to_dict())


def record_ingest(
    store_path: Path,
    run: IngestRun,
    *,
    backend: str = "local",
    error: str | None = None,
    when: str | None = None,
) -> AuditEvent:
    """Log one ingestion run (``error`` set: it stopped early; counts are what it got to)."""
    result = "failed" if error else ("rejects" if run.rejected else "ok")
    rejects = str(run.rejects_path) if run.rejected and run.rejects_path else None
    summary = f"read {run.read}, written {run.written}, rejected {run.rejected}"
    if run.stored:  # an aggregation group's same rows again: stored already, not written
        summary += f", {run.stored} already stored"
    if run.skipped:  # an aggregation group's events already ingested: read = the three
        summary += f", skipped {run.skipped} already ingested"
    if run.recomputed:  # written events whose earlier versions (other values) were retracted
        summary += f", recomputed {run.recomputed} ingested before with other values"
    event = AuditEvent(
        kind="ingest",
        when=when or now_utc(),
        who=who(),
        backend=backend,
        result=result,
        summary=summary,
        groups=(run.group,),
        details={
            "run_id": run.run_id,
            "source": run.source,
            "read": run.read,
            "written": run.written,
            "rejected": run.rejected,
            "skipped": run.skipped,
            "stored": run.stored,
            "recomputed": run.recomputed,
            "rejects_path": rejects,
            "seconds": round(run.seconds, 3),
            "error": error,
        },
    )
    record(store_path, event)
    return event


def record_delete(
    store_path: Path,
    *,
    group: str,
    record_id: str,
    event_time: str,
    mode: str,
    online_applied: bool,
    backend: str = "local",
) -> AuditEvent:
    """Log one DeleteRecord (``fsgen delete-record``): an erasure is auditable like a write."""
    event = AuditEvent(
        kind="delete",
        when=now_utc(),
        who=who(),
        backend=backend,
        result="ok" if online_applied else "kept-newer",
        summary=f"{mode} {record_id} at {event_time}",
        groups=(group,),
        details={
            "record_id": record_id,
            "event_time": event_time,
            "mode": mode,
            "online_applied": online_applied,
        },
    )
    record(store_path, event)
    return event


def record_backfill(
    store_path: Path,
    *,
    group: str,
    record_ids: Sequence[str],
    rebuilt: int,
    refused: Sequence[tuple[str, str]],
    seconds: float,
    backend: str = "local",
) -> AuditEvent:
    """Log one ``fsgen backfill``: it rewrites online states, so it is auditable like a write
    (``record_ids`` empty: every entity of the group)."""
    more = len(record_ids) - 5
    which = ", ".join(record_ids[:5]) + (f" and {more:,} more" if more > 0 else "")
    summary = f"rebuilt {rebuilt:,} online state(s) from the offline event history"
    if refused:
        summary += f", refused {len(refused):,} that would not fit a record"
    event = AuditEvent(
        kind="backfill",
        when=now_utc(),
        who=who(),
        backend=backend,
        result="refused" if refused else "ok",
        summary=summary + (f" (of {which})" if record_ids else " (every entity)"),
        groups=(group,),
        details={
            "record_ids": list(record_ids),
            "rebuilt": rebuilt,
            "refused": [list(r) for r in refused[:100]],
            "refused_count": len(refused),
            "seconds": round(seconds, 3),
        },
    )
    record(store_path, event)
    return event


@dataclass
class _CountedRun:
    group: str
    source: str
    run_id: str
    read: int
    written: int
    rejected: int
    rejects_path: Path | None
    seconds: float
    skipped: int = 0
    stored: int = 0
    recomputed: int = 0


def record_counts(
    store_path: Path,
    *,
    group: str,
    source: str,
    read: int,
    written: int,
    rejected: int,
    rejects: str | None,
    seconds: float,
    run: str,
) -> AuditEvent:
    """Log an ingestion run known by its counts (a stream replay or consume); ``run`` names
    the kind of run in its id."""
    run_id = f"{run}-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return record_ingest(
        store_path,
        _CountedRun(
            group=group,
            source=source,
            run_id=run_id,
            read=read,
            written=written,
            rejected=rejected,
            rejects_path=Path(rejects) if rejects else None,
            seconds=seconds,
        ),
    )


# ------------------------------------------------------------------------------- reading


def read_lines(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    out: list[dict[str, object]] = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                if not line.endswith("\n"):
                    continue  # the last line of a writer killed mid-write: never committed
                raise StoreError(f"{path}:{number}: corrupt audit line") from None
            if not isinstance(value, dict):
                raise StoreError(f"{path}:{number}: audit line is not a JSON object")
            out.append(value)
    return out


def history_files(config: ProjectConfig) -> dict[str, Path]:
    """Backend name -> its apply history file (see :class:`fsgen.backends.aws.AwsBackend`)."""
    store = config.store_path
    return {"local": store / HISTORY_FILE, "aws": store / "aws" / HISTORY_FILE}


def apply_event(entry: Mapping[str, object], backend: str) -> AuditEvent:
    """An apply-history entry (written by :mod:`fsgen.plan.apply`) as an AuditEvent."""
    plan = entry.get("plan")
    changes = plan.get("changes", []) if isinstance(plan, Mapping) else []
    groups = tuple(
        dict.fromkeys(str(c["group"]) for c in changes if isinstance(c, Mapping) and "group" in c)
    )
    details = {
        k: v
        for k, v in entry.items()
        if k not in ("when", "who", "backend", "result", "summary", "plan")
    }
    if isinstance(plan, Mapping):
        details["actions"] = {
            g: str(c.get("action"))
            for c in changes
            if isinstance(c, Mapping)
            for g in [str(c.get("group"))]
        }
        details["diffs"] = {
            str(c.get("group")): [
                _diff_text(d) for d in c.get("diffs", []) if isinstance(d, Mapping)
            ]
            for c in changes
            if isinstance(c, Mapping)
        }
    return AuditEvent(
        kind="apply",
        when=_iso(entry.get("when")),
        who=str(entry.get("who", "")),
        backend=str(entry.get("backend") or backend),
        result=str(entry.get("result", "")),
        summary=str(entry.get("summary", "")),
        groups=groups,
        details=details,
    )


def _diff_text(diff: Mapping[str, object]) -> str:
    """``features.age.parameters.fsgen:pii: "none" -> "personal"`` (a plan's PropertyDiff)."""
    return f"{diff.get('path')}: {json.dumps(diff.get('old'))} -> {json.dumps(diff.get('new'))}"


def ingest_event(entry: Mapping[str, object]) -> AuditEvent:
    return AuditEvent(
        kind=str(entry["kind"]),
        when=_iso(entry.get("when")),
        who=str(entry.get("who", "")),
        backend=str(entry.get("backend", "local")),
        result=str(entry.get("result", "")),
        summary=str(entry.get("summary", "")),
        groups=tuple(str(g) for g in entry.get("groups", []) or []),  # type: ignore[attr-defined]
        details=dict(entry.get("details", {}) or {}),  # type: ignore[call-overload]
    )


def _iso(value: object) -> str:
    """Normalize to milliseconds so apply ('...:05Z') and ingest ('...:05.123Z') sort together."""
    text = str(value or "")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def events(config: ProjectConfig) -> list[AuditEvent]:
    """Every event of the trail, oldest first (ties keep each log's own order)."""
    found: list[AuditEvent] = []
    for backend, path in history_files(config).items():
        found.extend(apply_event(e, backend) for e in read_lines(path))
    found.extend(ingest_event(e) for e in read_lines(config.store_path / AUDIT_FILE))
    return sorted(found, key=lambda e: e.when)


def query(
    config: ProjectConfig,
    *,
    kind: str | None = None,
    group: str | None = None,
    backend: str | None = None,
    limit: int | None = None,
) -> list[AuditEvent]:
    """Events filtered by kind, group (an apply touching the group counts) and backend; with
    ``limit``, only the newest ``limit``."""
    if kind is not None and kind not in KINDS:
        raise StoreError(f"unknown history kind {kind!r} (known: {', '.join(KINDS)})")
    selected: Iterable[AuditEvent] = events(config)
    if kind:
        selected = (e for e in selected if e.kind == kind)
    if group:
        selected = (e for e in selected if group in e.groups)
    if backend:
        selected = (e for e in selected if e.backend == backend)
    out = list(selected)
    return out[-limit:] if limit else out


def group_history(config: ProjectConfig, group: str) -> list[AuditEvent]:
    """What the catalog shows as a group's change history: applies and ingestions, newest
    first."""
    return list(reversed(query(config, group=group)))


def render_line(event: AuditEvent) -> str:
    """One entry of ``fsgen history``'s text view (an apply keeps the apply history's format)."""
    details = event.details
    head = f"{event.when}  {event.who}  {event.backend}  {event.result}  "
    if event.kind == "apply":
        text = (
            head + f"{details.get('stages_done')}/{details.get('stages_total')} stages  "
            f"{event.summary}"
        )
    elif event.kind == "delete":
        text = head + f"delete {','.join(event.groups)}: {event.summary}"
    elif event.kind == "backfill":
        text = head + f"backfill {','.join(event.groups)}: {event.summary}"
        for record_id, reason in list(details.get("refused") or [])[:3]:  # type: ignore[call-overload]
            text += f"\n    not rebuilt {record_id!r}: {reason}"
    else:
        # a stream replay or consume joins the trail as an ingestion run; its rejects are
        # dead letters
        verb, summary, rejects = "ingest", event.summary, "rejects"
        run_id = str(details.get("run_id", ""))
        for run in ("stream-replay-", "stream-consume-"):
            if run_id.startswith(run):
                verb, rejects = run[:-1].replace("-", " "), "dead letters"
                summary = summary.replace("rejected", "dead-lettered or failed")
        text = head + f"{verb} {','.join(event.groups)} from {details.get('source')}: {summary}"
        if details.get("rejects_path"):
            text += f"\n    {rejects}: {details['rejects_path']}"
    if details.get("error"):
        text += f"\n    {details['error']}"
    return text
