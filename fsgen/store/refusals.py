"""Where a refused aggregation state is on record, so ``fsgen get`` can say why an entity has
no online state although its events were written.

A state that would exceed SageMaker's 350 KB record is never written: the batch backfill
reports it as a ``<state>`` reject of the entity's first row (its events are written offline,
its state is not), the stream handler dead-letters the event that would overflow it (field
``<state>``, partition key = the record identifier). The store keeps no table of refusals; it
keeps the audit trail, whose ingestion runs name their rejects or dead-letter file. So the
refusal is looked up there: the newest run of the group first, the newest matching line of
its file first. A file that was moved or deleted since is passed over.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fsgen import audit

STATE_FIELD = "<state>"


@dataclass(frozen=True)
class StateRefusal:
    """One refused state of an entity: why, by which run, and where that is written."""

    reason: str
    run: str
    """``ingest of data/notes.csv at <time>``, ``stream replay of ...``, ``batch job ...``"""
    place: str
    """``row 1`` (a rejects file) or ``line 2`` (a dead-letter entry)"""
    file: Path

    def describe(self) -> str:
        return f"{self.reason} ({self.run}, {self.place}; the {STATE_FIELD} entry in {self.file})"


def find_state_refusal(store_path: Path, group: str, record_id: str) -> StateRefusal | None:
    """The newest refusal of ``record_id``'s state in ``group`` on record, or None."""
    looked: set[str] = set()
    for entry in reversed(audit.read_lines(Path(store_path) / audit.AUDIT_FILE)):
        details = entry.get("details")
        if entry.get("kind") != "ingest" or not isinstance(details, dict):
            continue
        if group not in (entry.get("groups") or ()):  # type: ignore[operator]
            continue
        path = details.get("rejects_path")
        if not isinstance(path, str) or path in looked:
            continue
        looked.add(path)  # a shared file (the dead-letter file) is read once, newest match
        found = _newest_in(Path(path), group, record_id)
        if found is not None:
            reason, place = found
            return StateRefusal(reason, _run(entry, details), place, Path(path))
    return None


def _run(entry: dict[str, object], details: dict[str, object]) -> str:
    run_id = str(details.get("run_id", ""))
    kind = (
        "stream replay"
        if run_id.startswith("stream-")
        else "batch job"
        if run_id.startswith("batch-")
        else "ingest"
    )
    return f"{kind} of {details.get('source')} at {entry.get('when')}"


def _newest_in(path: Path, group: str, record_id: str) -> tuple[str, str] | None:
    """(reason, place) of the last ``<state>`` line of ``record_id`` in a rejects file (its
    reason starts with the identifier) or a dead-letter file (its partition key is it)."""
    prefix = f"{record_id}: "
    found: tuple[str, str] | None = None
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if STATE_FIELD not in line:  # cheap: most lines are other rejects
                    continue
                try:
                    item = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if not isinstance(item, dict) or item.get("field") != STATE_FIELD:
                    continue
                reason = str(item.get("reason", ""))
                if "partitionKey" in item:  # a dead letter of the stream handler
                    if item.get("group", group) == group and item["partitionKey"] == record_id:
                        found = reason, f"line {item.get('line', '?')}"
                elif reason.startswith(prefix):
                    found = reason[len(prefix) :], f"row {item.get('row', '?')}"
    except OSError:
        return None
    return found


__all__ = ["STATE_FIELD", "StateRefusal", "find_state_refusal"]
