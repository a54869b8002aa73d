"""The generated latest-snapshot SQL, run on DuckDB (transpiled from Athena by sqlglot), agrees
with an independent Python oracle over offline-store rows with ties and deletes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import sqlglot
from codegen_helpers import REPO
from hypothesis import given, settings
from hypothesis import strategies as st

BASE = datetime(2024, 1, 1, tzinfo=UTC)
rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(["C1", "C2", "C3"]),  # customer_id
        st.integers(0, 3),  # event time step (ties likely)
        st.sampled_from([0, 500]),  # milliseconds of the event time
        st.integers(0, 2),  # api_invocation_time step (ties likely)
        st.integers(0, 4),  # age
        st.booleans(),  # is_deleted
    ),
    max_size=25,
)


def _event(step: int, millis: int) -> str:
    moment = BASE + timedelta(hours=step, milliseconds=millis)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def oracle(rows: list[dict[str, object]]) -> list[tuple[object, ...]]:
    latest: dict[str, dict[str, object]] = {}
    for row in rows:
        key = (
            datetime.fromisoformat(str(row["last_updated_time"]).replace("Z", "+00:00")),
            row["api_invocation_time"],
            row["write_time"],
        )
        current = latest.get(str(row["customer_id"]))
        if current is None or key > current["_key"]:  # type: ignore[operator]
            latest[str(row["customer_id"])] = {**row, "_key": key}
    return sorted(
        (r["customer_id"], r["last_updated_time"], r["age"])
        for r in latest.values()
        if not r["is_deleted"]
    )


@settings(max_examples=60, deadline=None)
@given(rows_strategy)
def test_snapshot_sql_matches_the_oracle(raw: list[tuple[object, ...]]) -> None:
    rows = [
        {
            "customer_id": cid,
            "last_updated_time": _event(step, millis),
            "age": age,
            "avg_monthly_spend": float(age) / 2,
            "is_prime_member": age % 2,
            "api_invocation_time": BASE + timedelta(minutes=api),
            "write_time": BASE + timedelta(seconds=i),  # unique: no full tie
            "is_deleted": deleted,
        }
        for i, (cid, step, millis, api, age, deleted) in enumerate(raw)
    ]
    text = (REPO / "generated/groups/customer_features/snapshot.athena.sql").read_text()
    duck_sql = sqlglot.transpile(text, read="athena", write="duckdb")[0]
    con = duckdb.connect()
    con.execute("CREATE SCHEMA sagemaker_featurestore")
    con.execute("""CREATE TABLE sagemaker_featurestore."<customer-features offline store table>" (
        customer_id VARCHAR, last_updated_time VARCHAR, age BIGINT, avg_monthly_spend DOUBLE,
        is_prime_member BIGINT, api_invocation_time TIMESTAMPTZ, write_time TIMESTAMPTZ,
        is_deleted BOOLEAN)""")
    for r in rows:
        con.execute(
            'INSERT INTO sagemaker_featurestore."<customer-features offline store table>" '
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            list(r.values()),
        )
    got = sorted((c, t, a) for c, t, a, *_ in con.execute(duck_sql).fetchall())
    assert got == oracle(rows)
