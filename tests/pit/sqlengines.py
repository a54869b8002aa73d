"""Two engines that execute the generated Athena SQL: DuckDB and PostgreSQL (a throw-away
cluster from the Debian package, started with initdb/pg_ctl on a free loopback port).

The SQL is transpiled by sqlglot; where a transpilation would lose exact microseconds
(Trino's ``to_unixtime`` becomes a double of seconds) the instant is rendered exactly instead:
DuckDB's ``epoch_us``, PostgreSQL's numeric ``EXTRACT(EPOCH ...)``. Where Trino is less exact
than the engine, the engine is made as exact as Trino: ``from_iso8601_timestamp`` keeps
milliseconds, as Trino's timestamp(3) does. PostgreSQL lacks two Trino
functions the query uses; the test database defines ``regexp_extract`` and the JSON text of an
array is written as ``to_json``. Each group's offline files become its Glue table, with
Athena's ``"$path"`` and the ``year``/``month``/``day``/``hour`` partition columns.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from sqlglot import exp

Engine = Literal["duckdb", "postgres"]
ENGINES: tuple[Engine, ...] = ("duckdb", "postgres")
_PART = re.compile(r"year=(\d+)/month=(\d+)/day=(\d+)/hour=(\d+)/")


def transpile(sql: str, engine: Engine) -> str:
    tree = sqlglot.parse_one(sql, read="athena").transform(_as_trino_parses)
    return tree.transform(lambda node: _exact(node, engine)).sql(dialect=engine)


def _as_trino_parses(node: exp.Expression) -> exp.Expression:
    """Trino's from_iso8601_timestamp returns timestamp(3): what it parses keeps milliseconds
    only, here as on Athena."""
    if isinstance(node, exp.FromISO8601Timestamp):
        return exp.TimestampTrunc(this=node.copy(), unit=exp.Var(this="MILLISECOND"))
    return node


def _exact(node: exp.Expression, engine: Engine) -> exp.Expression:
    if (
        isinstance(node, exp.Round)
        and isinstance(node.this, exp.Mul)
        and isinstance(node.this.this, exp.TimeToUnix)
        and node.this.expression.name == "1000000"
    ):
        instant = node.this.this.this
        if engine == "duckdb":
            return exp.Anonymous(this="epoch_us", expressions=[instant])
        return exp.Round(
            this=exp.Mul(
                this=exp.Extract(this=exp.Var(this="EPOCH"), expression=instant),
                expression=exp.Literal.number(1000000),
            )
        )
    if (
        engine == "postgres"
        and isinstance(node, exp.JSONFormat)
        and isinstance(node.this, exp.Cast)
        and node.this.to.this == exp.DataType.Type.JSON
    ):
        to_json = exp.Anonymous(this="to_json", expressions=[node.this.this])
        return exp.Cast(this=to_json, to=exp.DataType.build("text"))
    return node


def validate_trino(sql: str, dialect: str = "trino") -> None:
    """The statement passes trino-sql-validator and parses with sqlglot's Athena dialect."""
    import trino_sql_validator

    result = trino_sql_validator.validate(sql, dialect=dialect)
    assert result.valid, f"{result.error}\n{sql}"
    if dialect == "trino":
        assert not result.unknown_functions, result.unknown_functions
        assert not result.function_argument_warnings, result.function_argument_warnings
        sqlglot.parse_one(sql, read="athena", error_level=sqlglot.ErrorLevel.RAISE)


OPTIMIZE = re.compile(r"OPTIMIZE (?P<table>.+) REWRITE DATA USING BIN_PACK;")


def validate_maintenance(sql: str) -> None:
    """A maintenance.athena.sql file: besides comments, exactly Athena's ``OPTIMIZE <table>
    REWRITE DATA USING BIN_PACK`` and ``VACUUM <table>`` on one table. Trino has no OPTIMIZE
    statement (it is Athena's own DDL; Trino spells it ``ALTER TABLE ... EXECUTE optimize``),
    so its table reference is validated in a query and its words against Athena's documented
    grammar; VACUUM is Trino syntax and goes through trino-sql-validator whole."""
    code = [line for line in sql.splitlines() if line.strip() and not line.startswith("--")]
    assert len(code) == 2, sql
    found = OPTIMIZE.fullmatch(code[0])
    assert found, code[0]
    assert code[1] == f"VACUUM {found['table']};", code[1]
    validate_trino(f"SELECT * FROM {found['table']}")
    validate_trino(code[1].rstrip(";"))


def athena_text(value: object) -> str | None:
    """A result cell as Athena's GetQueryResults writes it (doubles as Java prints them)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value).replace("e-", "E-").replace("e+", "E")
    return str(value)


def athena_type(field: pa.Field) -> str:
    """The Trino type Athena reports for a result column (json_format output is varchar)."""
    if pa.types.is_integer(field.type):
        return "bigint"
    if pa.types.is_floating(field.type):
        return "double"
    return "varchar"


# ---------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class Table:
    """One table to create: schema-qualified name and its Arrow data."""

    schema: str
    name: str
    data: pa.Table


def offline_table(files: list[Path], schema: pa.Schema, name: str) -> Table:
    """The group's offline files as one table, as Athena sees the Glue table."""
    pieces = []
    for path in files:
        piece = pq.read_table(path)
        piece = pa.Table.from_arrays(
            [
                piece.column(f.name).cast(f.type)
                if f.name in piece.column_names
                else pa.nulls(piece.num_rows, f.type)
                for f in schema
            ],
            schema=schema,
        )
        match = _PART.search(path.as_posix())
        assert match, path
        extra = {
            "$path": path.as_posix(),
            **dict(zip(("year", "month", "day", "hour"), match.groups(), strict=True)),
        }
        for column, value in extra.items():
            piece = piece.append_column(column, pa.array([value] * piece.num_rows, pa.string()))
        pieces.append(piece)
    if not pieces:
        empty = schema
        for column in ("$path", "year", "month", "day", "hour"):
            empty = empty.append(pa.field(column, pa.string()))
        return Table("sagemaker_featurestore", name, empty.empty_table())
    return Table("sagemaker_featurestore", name, pa.concat_tables(pieces))


# ---------------------------------------------------------------------------- engines


def run_duckdb(sql: str, tables: list[Table]) -> pa.Table:
    import duckdb

    from fsgen.pit.local import fetch_arrow

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        for table in tables:
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{table.schema}"')
            con.register("incoming", table.data)
            con.execute(f'CREATE TABLE "{table.schema}"."{table.name}" AS SELECT * FROM incoming')
            con.unregister("incoming")
        return fetch_arrow(con, transpile(sql, "duckdb"))
    finally:
        con.close()


PG_FUNCTIONS = (
    "CREATE FUNCTION regexp_extract(s text, p text, g integer) RETURNS text "
    "LANGUAGE sql IMMUTABLE AS $$ SELECT (regexp_match(s, p))[g] $$"
)


def _pg_type(dtype: pa.DataType) -> str:
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return _pg_type(dtype.value_type) + "[]"
    if pa.types.is_timestamp(dtype):
        return "timestamptz"
    if pa.types.is_integer(dtype):
        return "bigint"
    if pa.types.is_floating(dtype):
        return "double precision"
    if pa.types.is_boolean(dtype):
        return "boolean"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_null(dtype):
        return "text"
    raise TypeError(f"no PostgreSQL type for {dtype}")


@dataclass
class Postgres:
    """A running throw-away cluster; :meth:`run` executes one query in a fresh database."""

    port: int
    counter: int = 0

    def connect(self, dbname: str = "postgres"):  # type: ignore[no-untyped-def]
        import psycopg

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="fsgen", dbname=dbname, autocommit=True
        )

    def run(self, sql: str, tables: list[Table]) -> pa.Table:
        """Load the tables and run the query in one transaction, then roll it all back."""
        with self.connect() as con:
            if not self.counter:
                con.execute(PG_FUNCTIONS)
            self.counter += 1
            con.execute("BEGIN")
            try:
                con.execute("SET LOCAL TimeZone = 'UTC'")
                for table in tables:
                    _pg_load(con, table)
                cursor = con.execute(transpile(sql, "postgres"))
                names = [d.name for d in cursor.description or []]
                rows = cursor.fetchall()
            finally:
                con.execute("ROLLBACK")
        return pa.table({n: pa.array([r[i] for r in rows]) for i, n in enumerate(names)})


def _pg_load(con, table: Table) -> None:  # type: ignore[no-untyped-def]
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{table.schema}"')
    columns = ", ".join(f'"{f.name}" {_pg_type(f.type)}' for f in table.data.schema)
    qualified = f'"{table.schema}"."{table.name}"'
    con.execute(f"CREATE TABLE {qualified} ({columns})")
    names = ", ".join(f'"{n}"' for n in table.data.column_names)
    with con.cursor() as cur, cur.copy(f"COPY {qualified} ({names}) FROM STDIN") as copy:
        for row in table.data.to_pylist():
            copy.write_row(list(row.values()))


def _postgres_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return versions[-1].parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def postgres_cluster() -> Iterator[Postgres]:
    """initdb + pg_ctl start as a non-root user (root: the Debian package's ``postgres``)."""
    bindir = _postgres_bin()
    if bindir is None:
        message = "PostgreSQL is not installed (apt-get install postgresql; .ci/run does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    root = Path(tempfile.mkdtemp(prefix="fsgen-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        prefix = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    data, log = root / "data", root / "log"
    port = _free_port()

    def as_owner(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)

    as_owner(
        str(bindir / "initdb"),
        "-D",
        str(data),
        "-U",
        "fsgen",
        "--auth=trust",
        "--locale=C",
        "--encoding=UTF8",
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
    as_owner(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
    try:
        cluster = Postgres(port)
        for _ in range(50):
            try:
                cluster.connect().close()
                break
            except Exception:
                time.sleep(0.1)
        yield cluster
    finally:
        as_owner(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def execute(engine: Engine, postgres: Postgres | None, sql: str, tables: list[Table]) -> pa.Table:
    if engine == "duckdb":
        return run_duckdb(sql, tables)
    assert postgres is not None
    return postgres.run(sql, tables)


def group_tables(spec: object, plan: object, store: Path, names: Mapping[str, str]) -> list[Table]:
    """Each joined group's offline files as the table ``names[group]``."""
    from pithelpers import arrow_schema

    from fsgen.pit.local import data_files

    out = []
    for join in plan.joins:  # type: ignore[attr-defined]
        files = data_files(store / "offline" / join.group.name)
        out.append(offline_table(files, arrow_schema(join.group), names[join.group.name]))
    return out
