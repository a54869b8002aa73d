"""The TTL history of a deployed feature group: which online TTL was in force when.

SageMaker stamps each online record with ``ExpiresAt = EventTime + TtlDuration`` at its write,
using the group's TTL at that moment; an UpdateFeatureGroup that changes the TTL applies to
records written after it only (records already stored keep their ExpiresAt). The offline
store keeps no ExpiresAt, so a point-in-time join that must agree with serving needs to know,
for each record, the TTL in force at its ``api_invocation_time``.

``fsgen apply`` records every TTL change it makes in the group's tag :data:`TAG` (on the
local backend in ``registry.json``, on AWS as a SageMaker tag), where the deployed state
lives, so every reader (``fsgen dataset`` on each engine, ``fsgen plan``) finds it with the
group. The value is a space-separated list of ``<µs>=<old>:<new>`` entries: the instant of
the change (the group's LastModifiedTime after the update, epoch microseconds) and the TTL
before and after it in seconds, ``none`` for no TTL. A tag value holds at most 256
characters (about seven changes); when a change does not fit, the oldest entries are
dropped, and records written before the oldest kept change are judged by the TTL that
change replaced.

Imports nothing else from fsgen: the plan, the backends and the PIT engines all read it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

TAG = "fsgen:ttl-history"
MAX_VALUE = 256
_ENTRY = re.compile(r"^(\d{1,19})=(\d{1,12}|none):(\d{1,12}|none)$")


class TtlHistoryError(ValueError):
    """A tag value that is no TTL history (edited by hand, or by another tool)."""


@dataclass(frozen=True, order=True)
class TtlChange:
    """The group's online TTL went from ``old_seconds`` to ``new_seconds`` at ``at_micros``."""

    at_micros: int
    old_seconds: int | None
    new_seconds: int | None


def _seconds(text: str) -> int | None:
    return None if text == "none" else int(text)


def _text(seconds: int | None) -> str:
    return "none" if seconds is None else str(int(seconds))


def parse(value: str) -> tuple[TtlChange, ...]:
    """The changes of a tag value, oldest first."""
    changes = []
    for entry in value.split():
        match = _ENTRY.match(entry)
        if match is None:
            raise TtlHistoryError(
                f"tag {TAG} entry {entry!r} is not <epoch µs>=<old seconds|none>:<new seconds|none>"
            )
        at, old, new = match.groups()
        changes.append(TtlChange(int(at), _seconds(old), _seconds(new)))
    return tuple(sorted(changes))


def render(changes: Iterable[TtlChange]) -> str:
    """The tag value of ``changes``: the newest that fit in :data:`MAX_VALUE` characters."""
    entries = [f"{c.at_micros}={_text(c.old_seconds)}:{_text(c.new_seconds)}" for c in changes]
    entries.sort(key=lambda e: int(e.split("=", 1)[0]))
    while entries and len(" ".join(entries)) > MAX_VALUE:
        entries.pop(0)
    return " ".join(entries)


def appended(value: str | None, change: TtlChange) -> str:
    """``value`` (the current tag, or None) with ``change`` added."""
    return render((*parse(value or ""), change))


def from_tags(tags: Sequence[Mapping[str, str]] | Mapping[str, str]) -> tuple[TtlChange, ...]:
    """The history in a group's tags (ListTags' ``[{"Key", "Value"}]`` or a dict)."""
    if isinstance(tags, Mapping):
        value = tags.get(TAG)
    else:
        value = next((t.get("Value") for t in tags if t.get("Key") == TAG), None)
    return parse(value) if value else ()


def segments(
    changes: Sequence[TtlChange], current: int | None
) -> tuple[tuple[int | None, int | None], ...]:
    """``((until µs, ttl seconds), ...)``: a record written (api_invocation_time) before
    ``until`` and after the previous segment's ``until`` had ``ttl``; the last segment
    (``until`` None) is ``current``, the TTL of records written after the last change.
    Segments with the same TTL as their successor are merged, so a group whose TTL never
    changed has one segment."""
    out: list[tuple[int | None, int | None]] = [
        (c.at_micros, c.old_seconds) for c in sorted(changes)
    ]
    out.append((None, current))
    fixed: list[tuple[int | None, int | None]] = []
    for until, ttl in out:
        if fixed and fixed[-1][1] == ttl:
            fixed[-1] = (until, ttl)
        else:
            fixed.append((until, ttl))
    return tuple(fixed)


__all__ = [
    "MAX_VALUE",
    "TAG",
    "TtlChange",
    "TtlHistoryError",
    "appended",
    "from_tags",
    "parse",
    "render",
    "segments",
]
