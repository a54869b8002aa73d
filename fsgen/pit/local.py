"""The local point-in-time engine: DuckDB over the offline store's Parquet files.

One ``ASOF LEFT JOIN`` per group, keyed on the real key columns (never a concatenation), with
the ordering key a struct ``(event µs, api_invocation µs, write µs, tie)``. The label side
asks for ``(T, NULL, NULL, NULL)``: DuckDB orders a NULL struct field above every value, so
the match is the greatest record at or before T *including* its tie-breaks -- a total order
in one sort-merge pass, no labels x history inequality join and no separate deduplication.
``tie`` packs is_deleted (a delete wins a complete tie), the file's position in the sorted
file list and the row's position in its file (the later row wins), so the answer is unique
even for rows that agree on every timestamp. The join carries only the keys, the values and
that struct (event time and delete flag are read back from it), and no ORDER BY: the rows are
put back in label order by their row number afterwards.

Knowledge-time mode (only records with write_time <= T count) is a running ``arg_max`` over
each entity's records ordered by ``greatest(event, write)`` -- the moment a record became
both true and known -- of the best record's unique tie, then the same ASOF join on that
moment and a join back to the record by its tie for the values (so a -0.0 stays -0.0).

The ASOF form's cost follows labels + history whatever the depth; on shallow histories the
window form -- the key / time inequality join and ``row_number()`` per label row over the
same order, field by field on plain columns (a struct in the sorted payload cost about a
fifth of its CPU) -- is cheaper, and fsgen.pit.planner picks between them per group from the
data (same answer: the struct is a total order). Both read the group's history cache
(fsgen.pit.cache: one file, times parsed once) when there is one for the current file list.

TTL and deletes are applied to the chosen record: a tombstone or a record older than the TTL
(``T - event > ttl``; exactly TTL old still counts) yields missing values. A tombstone at D
thus hides older records for label times >= D only. The TTL is the one in force when the
record was written (its api_invocation_time against the group's TTL history,
fsgen.ttl_history), as its online ExpiresAt was stamped; it is applied in the query, never
stored in the history cache, so the cache's key needs no TTL.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from fsgen.pit.cache import COMPUTED, cached_history
from fsgen.pit.labels import Labels, key_alias
from fsgen.pit.model import INTERNAL, GroupJoin, PitError, PitPlan
from fsgen.pit.planner import plan_form
from fsgen.spec import GroupSpec
from fsgen.types import DType, Scalar

GLOB = "data/*/*/*/*/*.parquet"


def q(name: str) -> str:
    """A DuckDB identifier, double-quoted (names come from a validated spec)."""
    return '"' + name.replace('"', '""') + '"'


def data_files(group_dir: Path) -> list[Path]:
    """The group's published Parquet files in a stable order; temp and staging names (a
    leading '.' or '_') are skipped."""
    return [Path(name) for name in data_file_names(group_dir)]


def data_file_names(group_dir: Path) -> list[str]:
    """:func:`data_files` as POSIX path strings: the compacted layer's files followed by the
    published files written after it (fsgen.store.layer), or, without a valid layer, every
    published file in sorted order -- the same rows in an order that decides every tie the
    same way."""
    from fsgen.store.layer import published_files, read_files

    return read_files(group_dir, published_files(group_dir))


def group_files(store: Path, group: GroupSpec) -> list[str]:
    """The files holding ``group``'s offline history, sorted: a Glue-format group's published
    files, or an Iceberg group's current data files from its scan plan
    (:mod:`fsgen.store.iceberg`); both orders break complete ties alike."""
    from fsgen.store import iceberg

    group_dir = store / "offline" / group.name
    if group.offline.table_format == iceberg.ICEBERG:
        return iceberg.data_file_names(store, group.name)
    iceberg.check_layout(group_dir, group.name, group.offline.table_format)
    return data_file_names(group_dir)


def duck_type(dtype: DType) -> str:
    return dtype.duckdb_type


def event_micros(join: GroupJoin, column: str) -> str:
    if join.group.event_time.dtype.scalar is Scalar.STRING:
        return f"epoch_us(CAST({column} AS TIMESTAMPTZ))"
    return f"CAST(round(CAST({column} AS DOUBLE) * 1000000) AS BIGINT)"


def history_sql(
    con: duckdb.DuckDBPyConnection,
    join: GroupJoin,
    files: list[str],
    union_by_name: bool = False,
    cached: str | None = None,
) -> str:
    """One row per offline record: keys ``__k<j>``, ``__e`` / ``__a`` / ``__w`` (event, api
    invocation, write µs), ``__x`` (the tie), ``__d`` (deleted) and the needed values
    ``__v<i>``, all plain columns (:func:`ordered_sql` adds the ASOF forms' struct).

    Files are read by the first file's schema (DuckDB matches columns by name and fails on a
    file that lacks one, which makes :func:`stored_values` retry) unless ``union_by_name`` or
    the first file lacks a needed column: then every file's schema is unified (slower).
    ``cached``: the group's history cache for ``files`` (fsgen.pit.cache), read instead."""
    keys = [
        f"CAST({q(k.name)} AS {duck_type(k.dtype)}) AS {q(f'{INTERNAL}k{j}')}"
        for j, k in enumerate(join.keys)
    ]
    if not files:
        nulls = [
            f"CAST(NULL AS {duck_type(k.dtype)}) AS {q(f'{INTERNAL}k{j}')}"
            for j, k in enumerate(join.keys)
        ]
        values = [
            f"CAST(NULL AS {duck_type(i.dtype)}) AS {q(f'{INTERNAL}v{n}')}"
            for n, i in enumerate(join.inputs)
        ]
        return (
            f"SELECT {', '.join(nulls)}, CAST(NULL AS BIGINT) AS __e, "
            "CAST(NULL AS BIGINT) AS __a, CAST(NULL AS BIGINT) AS __w, "
            "CAST(NULL AS BIGINT) AS __x, CAST(NULL AS BOOLEAN) AS __d"
            f"{''.join(', ' + v for v in values)} WHERE false"
        )

    def source_of(union: bool, paths: list[str]) -> str:
        listed = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"
        return (
            f"read_parquet({listed}, union_by_name = {str(union).lower()}, "
            "hive_partitioning = false, file_row_number = true)"
        )

    def columns_of(source: str) -> set[str]:
        return {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}

    if cached is not None:
        source = "read_parquet('" + cached.replace("'", "''") + "')"
        present = columns_of(source)
    else:
        source = source_of(union_by_name, files)
        # without union_by_name DuckDB binds the first file's schema: describe just that file
        present = columns_of(source if union_by_name else source_of(False, files[:1]))
        needed = {k.name for k in join.keys} | {i.feature for i in join.inputs}
        if not union_by_name and not needed <= present:
            source = source_of(True, files)
            present = columns_of(source)
    values = [
        (
            f"CAST({q(i.feature)} AS {duck_type(i.dtype)})"
            if i.feature in present
            else f"CAST(NULL AS {duck_type(i.dtype)})"
        )
        + f" AS {q(f'{INTERNAL}v{n}')}"
        for n, i in enumerate(join.inputs)
    ]
    event = event_micros(join, q(join.group.event_time.name))
    tie = (
        "(CAST(coalesce(is_deleted, false) AS BIGINT) << 62) "
        "| (CAST(file_index AS BIGINT) << 40) | file_row_number"
    )
    if cached is not None:  # computed once when the cache was written
        e, w, a, x, d = (q(INTERNAL + c) for c in COMPUTED)
        return (
            f"SELECT {', '.join(keys)}, {e} AS __e, {a} AS __a, {w} AS __w, {x} AS __x, "
            f"{d} AS __d{''.join(', ' + v for v in values)} FROM {source}"
        )
    return (
        f"SELECT {', '.join(keys)}, {event} AS __e, epoch_us(api_invocation_time) AS __a, "
        f"epoch_us(write_time) AS __w, {tie} AS __x, coalesce(is_deleted, false) AS __d"
        f"{''.join(', ' + v for v in values)} "
        f"FROM {source} WHERE {q(join.group.event_time.name)} IS NOT NULL"
    )


def ordered_sql(join: GroupJoin, history: str) -> str:
    """``history`` with its ordering struct ``__o`` = (event, api, write, tie), the key the
    ASOF forms join on, after the keys and values (the event time and delete flag are read
    back from it, so the join carries a narrower payload)."""
    names = [q(f"{INTERNAL}k{j}") for j in range(len(join.keys))]
    names += [q(f"{INTERNAL}v{n}") for n in range(len(join.inputs))]
    return (
        f"SELECT {', '.join(names)}, __e, __w, __d, "
        f"struct_pack(e := __e, a := __a, w := __w, x := __x) AS __o FROM ({history})"
    )


def knowledge_sql(join: GroupJoin, history: str) -> str:
    """Per record, the moment it became both true and known (``__av``) and the tie of the best
    record known by then (``__bx``, unique per record: file and row). The values are read
    back by that tie, never carried through ``arg_max`` (which normalises a -0.0 inside a
    struct to 0.0)."""
    keys = ", ".join(q(f"{INTERNAL}k{j}") for j in range(len(join.keys)))
    return (
        f"SELECT {keys}, greatest(__e, __w) AS __av, "
        f"arg_max((__o).x, __o) OVER (PARTITION BY {keys} "
        "ORDER BY greatest(__e, __w) RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) "
        f"AS __bx FROM {history}"
    )


def window_sql(join: GroupJoin, alias: str, knowledge_time: bool) -> str:
    """The window form for one group: every (label, record) pair of the same key with the
    record at or before the label time (and, in knowledge-time mode, written by then), the
    greatest ordering struct per label row kept -- the record the ASOF form picks, since the
    struct (event, api, write, tie) is a total order."""
    t = f"l.{q(INTERNAL + 't')}"
    equal = " AND ".join(
        f"l.{q(key_alias(join.index, j))} = h.{q(f'{INTERNAL}k{j}')}" for j in range(len(join.keys))
    )
    known = f" AND h.__w <= {t}" if knowledge_time else ""
    values = "".join(f", h.{q(f'{INTERNAL}v{n}')}" for n in range(len(join.inputs)))
    return (
        f"SELECT l.{q(INTERNAL + 'row')} AS __r, h.__e, h.__a, h.__x{values} "
        f"FROM labels AS l JOIN {alias}_h AS h ON {equal} AND h.__e <= {t}{known} "
        f"QUALIFY row_number() OVER (PARTITION BY l.{q(INTERNAL + 'row')} ORDER BY "
        # plain columns, not the ordering struct: a struct in the sorted payload costs about
        # a fifth of the CPU, and sorting by it turns a -0.0 in the payload into 0.0;
        # NULLS FIRST ranks a missing time above every value, as the struct comparison does
        "h.__e DESC, h.__a DESC NULLS FIRST, h.__w DESC NULLS FIRST, h.__x DESC) = 1"
    )


def dataset_sql(
    con: duckdb.DuckDBPyConnection,
    plan: PitPlan,
    store: Path,
    knowledge_time: bool = False,
    union_by_name: bool = False,
    labels: int = 0,
) -> str:
    """The full query over the registered ``labels`` relation (see Labels.join_table) of
    ``labels`` rows; each group's join form comes from fsgen.pit.planner."""
    ctes: list[str] = []
    joins: list[str] = []
    select = [f"l.{q(INTERNAL + 'row')}"]
    t = f"l.{q(INTERNAL + 't')}"
    for join in plan.joins:
        alias = f"g{join.index}"
        files = group_files(store, join.group)
        if len(files) >= 1 << 22:  # the tie packs the file index in bits 40-61
            raise PitError(
                f"group {join.group.name!r} has {len(files)} offline files; at most "
                f"{(1 << 22) - 1} can be joined"
            )
        cached = (
            None
            if union_by_name
            else cached_history(
                con,
                store / "offline" / join.group.name,
                files,
                q(join.group.event_time.name),
                event_micros(join, q(join.group.event_time.name)),
            )
        )
        history = history_sql(con, join, files, union_by_name, cached)
        equal = " AND ".join(
            f"l.{q(key_alias(join.index, j))} = {alias}.{q(f'{INTERNAL}k{j}')}"
            for j in range(len(join.keys))
        )
        form = plan_form(con, join, store / "offline" / join.group.name, files, labels, cached)
        if form == "window":
            ctes.append(f"{alias}_h AS ({history})")
            ctes.append(f"{alias}_m AS ({window_sql(join, alias, knowledge_time)})")
            joins.append(f"LEFT JOIN {alias}_m AS {alias} ON {alias}.__r = l.{q(INTERNAL + 'row')}")
            gone, event, api = f"({alias}.__x >> 62) = 1", f"{alias}.__e", f"{alias}.__a"
        elif knowledge_time:
            ctes.append(f"{alias}_h AS ({ordered_sql(join, history)})")
            ctes.append(f"{alias}_k AS ({knowledge_sql(join, f'{alias}_h')})")
            known = equal.replace(f"{alias}.", f"{alias}_k.")
            joins.append(f"ASOF LEFT JOIN {alias}_k ON {known} AND {t} >= {alias}_k.__av")
            joins.append(f"LEFT JOIN {alias}_h AS {alias} ON ({alias}.__o).x = {alias}_k.__bx")
            gone, event, api = f"{alias}.__d", f"{alias}.__e", f"({alias}.__o).a"
        else:
            ctes.append(f"{alias} AS ({ordered_sql(join, history)})")
            probe = (
                f"struct_pack(e := {t}, a := NULL::BIGINT, w := NULL::BIGINT, x := NULL::BIGINT)"
            )
            joins.append(f"ASOF LEFT JOIN {alias} ON {equal} AND {probe} >= {alias}.__o")
            # read from the ordering struct the join carries anyway (a narrower payload):
            # its event time, and the delete flag packed in the tie's bit 62
            gone, event, api = (
                f"(({alias}.__o).x >> 62) = 1",
                f"({alias}.__o).e",
                f"({alias}.__o).a",
            )
        # the TTL in force at the record's write (its api_invocation_time), as serving has it
        expired = join.expired_sql(t, event, api)
        if expired is not None:
            gone += f" OR {expired}"
        for n, item in enumerate(join.inputs):
            select.append(
                f"CASE WHEN {gone} THEN NULL ELSE {alias}.{q(f'{INTERNAL}v{n}')} END "
                f"AS {q(item.column)}"
            )
    # no ORDER BY: stored_values puts the rows back in label order by their row number
    return f"WITH {', '.join(ctes)} SELECT {', '.join(select)} FROM labels AS l {' '.join(joins)}"


def fetch_arrow(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """The query's result as an Arrow table (DuckDB 2.x ``to_arrow_table``, 1.x ``arrow``)."""
    relation = con.sql(sql)
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    table: pa.Table = fetch()
    return table


def stored_values(
    plan: PitPlan,
    labels: Labels,
    store: Path,
    knowledge_time: bool = False,
    threads: int | None = None,
) -> pa.Table:
    """Row number plus every stored value of every label row (NULL when missing), in label
    order."""
    con = duckdb.connect()
    try:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        # the schema probe and the query read the same footers once
        con.execute("SET parquet_metadata_cache = true")
        n = len(labels.frame)
        con.register("labels", labels.join_table(plan))
        try:
            table = fetch_arrow(con, dataset_sql(con, plan, store, knowledge_time, labels=n))
        except (duckdb.InvalidInputException, duckdb.BinderException, duckdb.IOException):
            # files written under different schemas (a feature added later): unify them; or
            # a history cache replaced by a concurrent build: read the published files
            table = fetch_arrow(con, dataset_sql(con, plan, store, knowledge_time, True, labels=n))
    finally:
        con.close()
    return in_label_order(table)


def in_label_order(table: pa.Table) -> pa.Table:
    """The rows sorted by ``__fsgen_row`` -- an inverse permutation, linear time. Each label
    row must come back exactly once."""
    column = f"{INTERNAL}row"
    rows = table.column(column).to_numpy()
    n = len(rows)
    order = np.full(n, -1, dtype="int64")
    valid = (rows >= 0) & (rows < n)
    order[rows[valid]] = np.arange(n, dtype="int64")[valid]
    if not valid.all() or (order < 0).any():
        raise PitError(f"the engine did not return each of the {n} label rows exactly once")
    return table.take(pa.array(order))


__all__ = [
    "data_file_names",
    "data_files",
    "dataset_sql",
    "group_files",
    "history_sql",
    "stored_values",
]
