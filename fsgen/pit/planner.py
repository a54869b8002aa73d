"""Which join form the local engine runs for one group, chosen from the data.

Two forms give the same answer (see fsgen.pit.local):

- ``window``: the key / time inequality join of the labels with the history, then
  ``row_number()`` per label row. Its work grows with the pairs it forms: about
  ``labels x rows per entity / 2`` (a label sees half of its entity's history on average).
  On shallow histories that is a small hash join and tiny per-label sorts.
- ``asof``: one sort-merge ``ASOF`` join over labels + history. Its work grows with
  ``labels + rows``, whatever the depth.

The planner estimates the pairs from the offline row count and the number of entities and
takes the window form while they stay within :data:`PAIRS_PER_ROW` times ``labels + rows``.
The counts come from ``_fsgen_cache/stats.json`` beside the group's ``data/`` folder, keyed by the
sorted file list with sizes and modification times; when the key does not match (new files,
compaction) they are counted again -- Parquet footers for the rows, an approximate distinct
count over the key columns for the entities, from the group's one history cache file
(fsgen.pit.cache) when there is one rather than every published file -- and the file is
rewritten atomically (a read-only store just counts every time).
``FSGEN_PIT_FORM=window|asof`` forces a form.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb

from fsgen.pit.cache import CACHE_DIR, fingerprint
from fsgen.pit.model import GroupJoin, PitError

Form = Literal["window", "asof"]
FORMS: tuple[Form, ...] = ("window", "asof")
STATS_FILE = "stats.json"
PAIRS_PER_ROW = 2.0
ENV = "FSGEN_PIT_FORM"


@dataclass(frozen=True)
class GroupStats:
    rows: int
    entities: int

    @property
    def rows_per_entity(self) -> float:
        return self.rows / max(self.entities, 1)


def forced_form() -> Form | None:
    """The form named by ``FSGEN_PIT_FORM`` (``auto`` or unset: none)."""
    value = os.environ.get(ENV, "auto").strip().lower()
    if value in ("", "auto"):
        return None
    if value not in FORMS:
        raise PitError(f"{ENV}={value!r}: expected one of auto, window, asof")
    return value  # type: ignore[return-value]


def choose_form(labels: int, stats: GroupStats) -> Form:
    """``window`` while its estimated pairs stay within PAIRS_PER_ROW x (labels + rows)."""
    pairs = labels * stats.rows_per_entity / 2
    return "window" if pairs <= PAIRS_PER_ROW * (labels + stats.rows) else "asof"


def plan_form(
    con: duckdb.DuckDBPyConnection,
    join: GroupJoin,
    group_dir: Path,
    files: list[str],
    labels: int,
    history: str | None = None,
) -> Form:
    """The form for ``join``; ``history``: the group's history cache for ``files``, counted
    instead of the files when the stats must be counted again."""
    forced = forced_form()
    if forced is not None:
        return forced
    if not files:
        return "asof"
    return choose_form(labels, group_stats(con, join, group_dir, files, history))


def group_stats(
    con: duckdb.DuckDBPyConnection,
    join: GroupJoin,
    group_dir: Path,
    files: list[str],
    history: str | None = None,
) -> GroupStats:
    """Rows and (approximate) entities of the group's offline files, cached by file list.
    ``history``: the history cache of ``files`` (fsgen.pit.cache), the same records in one
    file, read instead of the files (one footer, no schema unification)."""
    path = group_dir / CACHE_DIR / STATS_FILE
    key = fingerprint(files)
    try:
        cached = json.loads(path.read_text())
        if cached.get("files") == key:
            return GroupStats(int(cached["rows"]), int(cached["entities"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    listed = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in files) + "]"
    keys = ", ".join('"' + k.name.replace('"', '""') + '"' for k in join.keys)
    distinct = (
        f"approx_count_distinct(({keys}))"
        if len(join.keys) > 1
        else (f"approx_count_distinct({keys})")
    )
    source = (
        f"read_parquet({listed}, union_by_name = true, hive_partitioning = false)"
        if history is None
        else "read_parquet('" + history.replace("'", "''") + "')"
    )
    rows, entities = con.execute(f"SELECT count(*), {distinct} FROM {source}").fetchall()[0]
    stats = GroupStats(int(rows), int(entities or 0))
    tmp = path.with_name(f".{STATS_FILE}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(exist_ok=True)
        tmp.write_text(json.dumps({"files": key, "rows": stats.rows, "entities": stats.entities}))
        os.replace(tmp, path)
    except OSError:  # a read-only store: count again next time
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return stats


__all__ = ["FORMS", "Form", "GroupStats", "choose_form", "forced_form", "group_stats", "plan_form"]
