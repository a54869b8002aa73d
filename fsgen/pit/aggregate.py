"""Point-in-time aggregation features: each label row gets every window at its label time T,
computed from the raw event history, as DuckDB SQL (the local engine) or Athena (Trino) SQL.

Semantics are those of :mod:`fsgen.runtime.aggregate`: the window at T is
``[floor_h(T - w), T)``. The plan, the same in both dialects, never joins labels to the whole
history:

1. ``ev``: the distinct events (a replayed event is one event) with their tile
   ``k = floor(ts / h)``; over an offline history, tombstones dropped and a version of an
   event a backfill retracted (its latest row a tombstone: the backfill recomputed the event
   with other values, see ``fsgen.store.offline.EVENT_VERSION``) left out.
2. ``tiles``: one row per (entity, tile) with each function's partial state (count, sum, sum of
   squares, min, max, last by (event time, sequence, hash)).
3. ``full``: labels and tiles in one ordered set per entity; a window function over
   ``RANGE BETWEEN W PRECEDING AND 1 PRECEDING`` (tiles) merges the *complete* tiles of each
   window: O((labels + tiles) log) work, whatever the depth of the history.
4. ``head``: the exact head, the label's own tile, joined on (entity, tile) with ``ts < T``: only
   the events of one hop per label.
5. last_n and count_distinct keep at most n entries per tile (the n latest, the n smallest
   distinct values), so a range join of labels to those entries costs at most
   ``tiles in the window x n`` per label.

Inputs (both dialects): ``events`` with the entity key columns, ``ts`` (event time, BIGINT
epoch microseconds), ``event_sequence`` (BIGINT), ``event_hash`` (VARCHAR), one
``<name>__value`` column per aggregation and, for the offline history (``history=True``, see
:func:`history_relation`), ``is_deleted``, ``api_invocation_time`` and ``write_time``;
``labels`` with ``_row``
(BIGINT, unique), the key columns and ``ts`` (label time, BIGINT epoch microseconds). Output:
``_row`` and one column per feature, ordered by ``_row``.

Floating-point sums, means and variances are plain SQL double arithmetic in an engine-chosen
order, so they agree with the exact runtime within a stated relative tolerance (README); every
other value is bit-identical. Variances are computed over the values shifted by a pivot of
their entity (:func:`_pivots`), so values far from zero relative to their spread keep their
digits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from fsgen.runtime.aggregate import FRACTIONAL, INTEGRAL, AggregationDef
from fsgen.spec import EVENT_HASH_COLUMN, EVENT_SEQUENCE_COLUMN, GroupSpec

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

Dialect = Literal["duckdb", "athena"]
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_SCALAR_FUNCTIONS = frozenset(
    {"count", "sum", "mean", "min", "max", "last"}
    | {"variance", "variance_pop", "stddev", "stddev_pop"}
)
_SQL_TYPES = {
    "duckdb": {INTEGRAL: "BIGINT", FRACTIONAL: "DOUBLE", "String": "VARCHAR"},
    "athena": {INTEGRAL: "bigint", FRACTIONAL: "double", "String": "varchar"},
}


class AggregationQueryError(ValueError):
    """A query that cannot be built (a bad identifier, no definitions)."""


def q(name: str) -> str:
    """A double-quoted identifier, after checking it is a plain name."""
    if not _IDENT.match(name):
        raise AggregationQueryError(f"{name!r} is not a valid column name")
    return f'"{name}"'


@dataclass(frozen=True)
class AggregationQuery:
    keys: tuple[str, ...]
    definitions: tuple[AggregationDef, ...]

    def __post_init__(self) -> None:
        if not self.keys or not self.definitions:
            raise AggregationQueryError("an aggregation query needs key columns and definitions")

    @property
    def feature_columns(self) -> tuple[str, ...]:
        return tuple(name for d in self.definitions for name in d.feature_names)


class _Sql:
    """The few expressions that differ between DuckDB and Trino."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    def floor_div(self, expr: str, h: int) -> str:
        div = "//" if self.dialect == "duckdb" else "/"
        return f"(({expr}) - ((({expr}) % {h}) + {h}) % {h}) {div} {h}"

    def key(self, prefix: str = "") -> str:
        cols = f"{prefix}ts, {prefix}seq, {prefix}hash"
        return f"({cols})" if self.dialect == "duckdb" else f"ROW({cols})"

    def arg_max(self, value: str, key: str) -> str:
        return f"{'arg_max' if self.dialect == 'duckdb' else 'max_by'}({value}, {key})"

    def typed_null(self, kind: str) -> str:
        return f"CAST(NULL AS {_SQL_TYPES[self.dialect][kind]})"

    @property
    def decimal(self) -> str:
        return "DECIMAL(38, 0)" if self.dialect == "duckdb" else "decimal(38, 0)"

    @property
    def double(self) -> str:
        return _SQL_TYPES[self.dialect][FRACTIONAL]

    @property
    def bigint(self) -> str:
        return _SQL_TYPES[self.dialect][INTEGRAL]


def _partials(
    d: AggregationDef, i: int, v: str, sql: _Sql, prefix: str = ""
) -> list[tuple[str, str]]:
    """(column, aggregate over events) of definition i's partial state."""
    f = d.function
    dbl = f"CAST({v} AS {sql.double})"
    out: list[tuple[str, str]] = []
    if f in ("count", "mean") or f.startswith(("variance", "stddev")):
        out.append((f"c{i}", f"count({v})"))
    if f in ("sum", "mean"):
        out.append(
            (
                f"s{i}",
                f"sum({v})" if d.value_kind == FRACTIONAL else f"sum(CAST({v} AS {sql.decimal}))",
            )
        )
    if f.startswith(("variance", "stddev")):
        out += [(f"s{i}", f"sum({dbl})"), (f"q{i}", f"sum({dbl} * {dbl})")]
        d_ = f"({dbl} - {prefix}k{i})"  # shifted by the entity's pivot (see _pivots)
        out += [(f"r{i}", f"sum({d_})"), (f"p{i}", f"sum({d_} * {d_})")]
        out += [(f"a{i}", f"min({dbl})"), (f"b{i}", f"max({dbl})")]  # equal values: exactly 0
    if f in ("min", "max"):
        out.append((f"m{i}", f"{f}({v})"))
    if f == "last":
        out += [
            (f"l{i}", sql.arg_max(v, sql.key(prefix)) + f" FILTER (WHERE {v} IS NOT NULL)"),
            (f"lk{i}", f"max({sql.key(prefix)}) FILTER (WHERE {v} IS NOT NULL)"),
        ]
    return out


def _frame(d: AggregationDef, w: int | None) -> str:
    start = "UNBOUNDED" if w is None else str(w // d.hop)
    return f"RANGE BETWEEN {start} PRECEDING AND 1 PRECEDING"


def _window_partial(d: AggregationDef, i: int, column: str, over: str, sql: _Sql) -> str:
    if column.startswith("lk"):
        return f"max({column}) OVER ({over})"
    if column.startswith("l"):
        return f"{sql.arg_max(column, f'lk{i}')} OVER ({over})"
    if column.startswith("m"):
        return f"{d.function}({column}) OVER ({over})"
    if column.startswith(("a", "b")):  # a variance's least and greatest value
        return f"{'min' if column.startswith('a') else 'max'}({column}) OVER ({over})"
    return f"sum({column}) OVER ({over})"


def _combine(d: AggregationDef, i: int, full: str, head: str, sql: _Sql) -> str:
    """The feature value from the full tiles' partial (prefix ``full``) and the head's."""
    f = d.function

    def total(col: str, zero: str = "0") -> str:
        return f"(coalesce({full}{col}{i}, {zero}) + coalesce({head}{col}{i}, {zero}))"

    if f == "count":
        return f"CAST({total('c')} AS {sql.bigint})"
    if f == "sum" and d.value_kind == FRACTIONAL:
        return total("s", "0.0")
    if f == "sum":
        s = total("s")
        return (
            f"CASE WHEN {s} BETWEEN -9223372036854775808 AND 9223372036854775807 "
            f"THEN CAST({s} AS {sql.bigint}) END"
        )
    if f == "mean":
        n = total("c")
        return f"CASE WHEN {n} > 0 THEN CAST({total('s')} AS {sql.double}) / {n} END"
    if f.startswith(("variance", "stddev")):
        n, s, sq = total("c"), total("s", "0.0"), total("q", "0.0")
        r, p = total("r", "0.0"), total("p", "0.0")
        sample = not f.endswith("_pop")
        denominator = f"({n} - 1)" if sample else n
        # n·Σx² - (Σx)² cancels to noise when the values sit far from 0 relative to their
        # spread (101325 ± 1 Pa, epoch seconds): the same formula over x - k, k the entity's
        # pivot, keeps the spread; it is taken where its sum of squares is at most half of
        # Σx² (so its rounding bound is within the stated one) and Σx² is finite
        shifted = f"({p} <= {sq} * 0.5 AND {sq} <= {_MAX_DOUBLE})"
        lo, hi = (  # over the full tiles and the head (Trino's least of a NULL is NULL)
            f"coalesce({pick}({full}{c}{i}, {head}{c}{i}), {full}{c}{i}, {head}{c}{i})"
            for c, pick in (("a", "least"), ("b", "greatest"))
        )
        var = (
            f"CASE WHEN {lo} = {hi} THEN 0.0 ELSE greatest(CASE WHEN {shifted} "
            f"THEN ({p} - {r} * {r} / {n}) / {denominator} "
            f"ELSE ({sq} - {s} * {s} / {n}) / {denominator} END, 0.0) END"
        )
        value = f"sqrt({var})" if f.startswith("stddev") else var
        return f"CASE WHEN {n} > {1 if sample else 0} THEN {value} END"
    if f in ("min", "max"):
        a, b = f"{full}m{i}", f"{head}m{i}"
        pick = "least" if f == "min" else "greatest"
        return f"CASE WHEN {a} IS NULL THEN {b} WHEN {b} IS NULL THEN {a} ELSE {pick}({a}, {b}) END"
    return f"coalesce({head}l{i}, {full}l{i})"  # last: the head's events are the newest


@dataclass(frozen=True)
class QueryParts:
    """The query as a view-model: named CTEs, the output columns and the joins to the labels."""

    ctes: tuple[tuple[str, str], ...]
    columns: tuple[str, ...]
    joins: tuple[str, ...]


def aggregation_sql(
    query: AggregationQuery,
    events: str,
    labels: str,
    dialect: Dialect = "duckdb",
    *,
    history: bool = False,
) -> str:
    """The point-in-time query over relations ``events`` and ``labels`` (SQL text).

    ``history``: ``events`` is a group's offline history (:func:`history_relation`): rows
    with ``is_deleted`` true are not events, nor is a version of one (entity, ``ts``,
    ``event_sequence``, ``event_hash``) whose latest write (``api_invocation_time``, then
    ``write_time``) is such a tombstone. Else every distinct row is an event.
    """
    parts = query_parts(query, events, labels, dialect, history=history)
    if dialect == "athena":
        from fsgen.codegen.env import render

        return render(
            "aggregate_query.athena.sql.jinja", q=parts, query=query, events=events, labels=labels
        )
    body = ",\n".join(f"{name} AS (\n  {text}\n)" for name, text in parts.ctes)
    columns = ",\n  ".join(parts.columns)
    joins = "\n  ".join(parts.joins)
    return f"WITH {body}\nSELECT\n  {columns}\nFROM lab0\n  {joins}\nORDER BY lab0._row"


def query_parts(
    query: AggregationQuery,
    events: str,
    labels: str,
    dialect: Dialect,
    *,
    history: bool = False,
) -> QueryParts:
    sql = _Sql(dialect)
    keys = [q(k) for k in query.keys]
    key_list = ", ".join(keys)
    values = {d.name: q(d.value_column) for d in query.definitions}
    ctes: list[tuple[str, str]] = []
    value_list = ", ".join(values.values())
    if history:
        # one row per version of an event (entity, time, sequence, hash), its latest: an
        # event unless that is a tombstone (fsgen.store.offline.EVENT_VERSION)
        ctes.append(
            (
                "ev0",
                f"SELECT {key_list}, ts, seq, hash, {value_list} FROM (SELECT {key_list}, ts, "
                f"event_sequence AS seq, event_hash AS hash, {value_list}, is_deleted, "
                f"row_number() OVER (PARTITION BY {key_list}, ts, event_sequence, event_hash "
                "ORDER BY api_invocation_time DESC, write_time DESC, is_deleted DESC) AS _version "
                f"FROM {events}) AS v WHERE _version = 1 AND NOT coalesce(is_deleted, false)",
            )
        )
    else:
        ctes.append(
            (
                "ev0",
                f"SELECT DISTINCT {key_list}, ts, event_sequence AS seq, event_hash AS hash, "
                f"{value_list} FROM {events}",
            )
        )
    selects: list[str] = ["lab0._row"]
    joins: list[str] = []
    by_hop: dict[int, list[tuple[int, AggregationDef]]] = {}
    for i, d in enumerate(query.definitions):
        by_hop.setdefault(d.hop, []).append((i, d))
    for b, (hop, defs) in enumerate(sorted(by_hop.items())):
        scalar = [(i, d) for i, d in defs if d.function in _SCALAR_FUNCTIONS]
        entries = [(i, d) for i, d in defs if d.function not in _SCALAR_FUNCTIONS]
        ctes.append(
            (
                f"ev{b}_t",
                f"SELECT *, {sql.floor_div('ts', hop)} AS tile{_pivots(scalar, keys, values, sql)} "
                "FROM ev0",
            )
        )
        ctes.append(
            (
                f"lab{b}",
                f"SELECT _row, {key_list}, ts, {sql.floor_div('ts', hop)} AS tile FROM {labels}",
            )
        )
        if scalar:
            ctes += _scalar_block(b, scalar, keys, values, sql)
            joins.append(f"LEFT JOIN full{b} USING (_row) LEFT JOIN head{b} USING (_row)")
            for i, d in scalar:
                for w, name in zip(d.windows, d.feature_names, strict=True):
                    full = f"full{b}.w{_wname(w)}_"
                    selects.append(f"{_combine(d, i, full, f'head{b}.', sql)} AS {q(name)}")
        for i, d in entries:
            ctes += _entry_block(b, i, d, keys, values[d.name], sql)
            joins.append(f"LEFT JOIN agg{b}_{i} USING (_row)")
            for name in d.feature_names:
                selects.append(_entry_select(d, i, b, name, sql))
    return QueryParts(ctes=tuple(ctes), columns=tuple(selects), joins=tuple(joins))


#: the largest finite double, a literal both dialects read as a double
_MAX_DOUBLE = "1.7976931348623157e308"


def _pivots(
    defs: list[tuple[int, AggregationDef]], keys: list[str], values: dict[str, str], sql: _Sql
) -> str:
    """``, <mean of the entity's values> AS k<i>`` per variance or stddev: a constant per
    entity near its values, which every tile and head of the entity shifts by alike, so
    their shifted partial sums still add up (any constant gives the same variance)."""
    over = f"PARTITION BY {', '.join(keys)}"
    return "".join(
        f", avg(CAST({values[d.name]} AS {sql.double})) OVER ({over}) AS k{i}"
        for i, d in defs
        if d.function.startswith(("variance", "stddev"))
    )


def _wname(w: int | None) -> str:
    return "life" if w is None else str(w)


def _scalar_block(
    b: int,
    defs: list[tuple[int, AggregationDef]],
    keys: list[str],
    values: dict[str, str],
    sql: _Sql,
) -> list[tuple[str, str]]:
    key_list = ", ".join(keys)
    partials = [
        (i, d, col, agg) for i, d in defs for col, agg in _partials(d, i, values[d.name], sql)
    ]
    tile_cols = ", ".join(f"{agg} AS {col}" for _, _, col, agg in partials)
    null_cols = ", ".join(f"NULL AS {col}" for _, _, col, _ in partials)
    part_cols = ", ".join(col for _, _, col, _ in partials)
    window_cols: list[str] = []
    for i, d, col, _ in partials:
        for w in d.windows:
            over = f"PARTITION BY {key_list} ORDER BY tile {_frame(d, w)}"
            window_cols.append(f"{_window_partial(d, i, col, over, sql)} AS w{_wname(w)}_{col}")
    head_cols = ", ".join(f"{agg} AS {col}" for _, _, col, agg in _head_partials(defs, values, sql))
    on = " AND ".join(f"e.{k} = l.{k}" for k in keys)
    return [
        (
            f"tiles{b}",
            f"SELECT {key_list}, tile, {tile_cols} FROM ev{b}_t GROUP BY {key_list}, tile",
        ),
        (
            f"u{b}",
            f"SELECT {key_list}, tile, CAST(NULL AS {sql.bigint}) AS _row, {part_cols} "
            f"FROM tiles{b} UNION ALL SELECT {key_list}, tile, _row, {null_cols} FROM lab{b}",
        ),
        (
            f"full{b}",
            f"SELECT * FROM (SELECT _row, {', '.join(window_cols)} FROM u{b}) AS x "
            "WHERE _row IS NOT NULL",
        ),
        (
            f"head{b}",
            f"SELECT l._row, {head_cols} FROM lab{b} AS l JOIN ev{b}_t AS e "
            f"ON {on} AND e.tile = l.tile AND e.ts < l.ts GROUP BY l._row",
        ),
    ]


def _head_partials(
    defs: list[tuple[int, AggregationDef]], values: dict[str, str], sql: _Sql
) -> list[tuple[int, AggregationDef, str, str]]:
    return [
        (i, d, col, agg)
        for i, d in defs
        for col, agg in _partials(d, i, f"e.{values[d.name]}", sql, "e.")
        if not col.startswith("lk")
    ]


def _entry_block(
    b: int, i: int, d: AggregationDef, keys: list[str], v: str, sql: _Sql
) -> list[tuple[str, str]]:
    """last_n / count_distinct: at most n entries per tile, range-joined to the labels."""
    key_list = ", ".join(keys)
    n = d.n or 1
    if d.function == "count_distinct":
        rank = f"row_number() OVER (PARTITION BY {key_list}, tile ORDER BY v)"
        entries = (
            f"SELECT {key_list}, tile, {v} AS v, 0 AS ts, 0 AS seq, '' AS hash FROM "
            f"(SELECT DISTINCT {key_list}, tile, {v} FROM ev{b}_t WHERE {v} IS NOT NULL) AS x"
        )
    else:
        order = "ts DESC, seq DESC, hash DESC"
        rank = f"row_number() OVER (PARTITION BY {key_list}, tile ORDER BY {order})"
        source = (
            f"SELECT {key_list}, tile, {v} AS v, ts, seq, hash FROM ev{b}_t WHERE {v} IS NOT NULL"
        )
        if d.distinct:
            latest = f"row_number() OVER (PARTITION BY {key_list}, tile, {v} ORDER BY {order})"
            source = (
                f"SELECT {key_list}, tile, v, ts, seq, hash FROM (SELECT {key_list}, tile, "
                f"{v} AS v, ts, seq, hash, {latest} AS rk FROM ev{b}_t WHERE {v} IS NOT NULL) AS x "
                "WHERE rk = 1"
            )
        entries = source
    capped = f"SELECT * FROM (SELECT *, {rank} AS rn FROM ({entries}) AS y) AS z WHERE rn <= {n}"
    on = " AND ".join(f"t.{k} = l.{k}" for k in keys)
    cases = []
    for w in d.windows:
        low = "" if w is None else f"t.tile >= l.tile - {w // d.hop} AND "
        cases.append(
            f"SELECT l._row, '{_wname(w)}' AS win, t.v, t.ts, t.seq, t.hash FROM lab{b} AS l "
            f"JOIN capped{b}_{i} AS t ON {on} AND {low}t.tile < l.tile"
        )
    on_e = " AND ".join(f"e.{k} = l.{k}" for k in keys)
    head = (
        f"SELECT l._row, e.{v} AS v, e.ts, e.seq, e.hash FROM lab{b} AS l JOIN ev{b}_t AS e "
        f"ON {on_e} AND e.tile = l.tile AND e.ts < l.ts WHERE e.{v} IS NOT NULL"
    )
    wins = " UNION ALL ".join(f"SELECT '{_wname(w)}' AS win" for w in d.windows)
    hits = (
        " UNION ALL ".join(cases)
        + f" UNION ALL SELECT h._row, w.win, h.v, h.ts, h.seq, h.hash FROM head{b}_{i} AS h "
        f"CROSS JOIN ({wins}) AS w"
    )
    if d.function == "count_distinct":
        agg_cols = ", ".join(
            f"least(count(DISTINCT v) FILTER (WHERE win = '{_wname(w)}'), {n}) AS w{_wname(w)}"
            for w in d.windows
        )
        final = f"SELECT _row, {agg_cols} FROM hits{b}_{i} GROUP BY _row"
    else:
        order = "ts DESC, seq DESC, hash DESC"
        dedupe = (
            f", row_number() OVER (PARTITION BY _row, win, v ORDER BY {order}) AS dup"
            if d.distinct
            else ", 1 AS dup"
        )
        ranked = (
            f"SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY _row, win ORDER BY {order}) "
            f"AS pos FROM (SELECT * FROM (SELECT *{dedupe} FROM hits{b}_{i}) AS a WHERE dup = 1) "
            f"AS c) AS d WHERE pos <= {n}"
        )
        agg_cols = ", ".join(
            f"array_agg(v ORDER BY pos) FILTER (WHERE win = '{_wname(w)}') AS w{_wname(w)}"
            for w in d.windows
        )
        final = f"SELECT _row, {agg_cols} FROM ({ranked}) AS r GROUP BY _row"
    return [
        (f"capped{b}_{i}", capped),
        (f"head{b}_{i}", head),
        (f"hits{b}_{i}", hits),
        (f"agg{b}_{i}", final),
    ]


def _entry_select(d: AggregationDef, i: int, b: int, name: str, sql: _Sql) -> str:
    w = d.windows[d.feature_names.index(name)]
    col = f"agg{b}_{i}.w{_wname(w)}"
    if d.function == "count_distinct":
        return f"CAST(coalesce({col}, 0) AS {sql.bigint}) AS {q(name)}"
    empty = f"CAST(ARRAY[] AS {_SQL_TYPES[sql.dialect][d.value_kind]}[])"
    if sql.dialect == "athena":
        empty = f"CAST(ARRAY[] AS array({_SQL_TYPES['athena'][d.value_kind]}))"
    return f"coalesce({col}, {empty}) AS {q(name)}"


# --------------------------------------------------------------------------- local engine


def compute_local(
    con: duckdb.DuckDBPyConnection,
    query: AggregationQuery,
    events: str,
    labels: str,
    *,
    history: bool = False,
) -> pa.Table:
    """Run the DuckDB query on ``con`` over relations (tables, views or subqueries) ``events``
    and ``labels`` (``history`` as in :func:`aggregation_sql`); returns ``_row`` and the
    feature columns, ordered by ``_row``."""
    sql = aggregation_sql(query, events, labels, "duckdb", history=history)
    relation = con.sql(sql)
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    return fetch()


def feature_rows(table: pa.Table, columns: Sequence[str]) -> list[dict[str, object]]:
    """Arrow result -> one dict per label row (tests and the dataset hook)."""
    data = table.to_pydict()
    return [{c: data[c][r] for c in columns} for r in range(table.num_rows)]


# --------------------------------------------------------------------------- from the spec


def query_for_group(group: GroupSpec, names: Sequence[str] | None = None) -> AggregationQuery:
    """The query of a group's aggregations (all, or those named), keyed by its entity's keys."""
    aggs = [a for a in group.aggregations if names is None or a.name in names]
    return AggregationQuery(
        keys=tuple(k.name for k in group.entity.keys),
        definitions=tuple(a.runtime() for a in aggs),
    )


def history_relation(group: GroupSpec, source: str, dialect: Dialect = "duckdb") -> str:
    """A subquery turning a group's offline event rows (``source``: a table or
    ``read_parquet(...)``) into the engine's ``events`` input: event time in epoch µs, with
    the columns a query with ``history=True`` reads (tombstones, write order). A row without
    an ``event_sequence`` (a state record, or a row another PutRecord client wrote) is no
    event, as for the state rebuild (:func:`fsgen.store.offline.event_history`)."""
    column = q(group.event_time.name)
    if group.event_time.dtype.scalar.value == "String":
        ts = (
            f"epoch_us(CAST({column} AS TIMESTAMPTZ))"
            if dialect == "duckdb"
            else f"CAST(round(to_unixtime(from_iso8601_timestamp({column})) * 1000000) AS bigint)"
        )
    else:
        ts = f"CAST(round(CAST({column} AS {_SQL_TYPES[dialect][FRACTIONAL]}) * 1000000) AS "
        ts += f"{_SQL_TYPES[dialect][INTEGRAL]})"
    keys = ", ".join(q(k.name) for k in group.entity.keys)
    values = ", ".join(q(a.value_column) for a in group.aggregations)
    return (
        f"(SELECT {keys}, {ts} AS ts, {q(EVENT_SEQUENCE_COLUMN)}, {q(EVENT_HASH_COLUMN)}, "
        f"{values}, is_deleted, api_invocation_time, write_time FROM {source} "
        f"WHERE {q(EVENT_SEQUENCE_COLUMN)} IS NOT NULL)"
    )
