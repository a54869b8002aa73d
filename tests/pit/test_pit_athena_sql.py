"""The generated Athena SQL named case by case, each executed on DuckDB and on PostgreSQL: exact
sub-millisecond label times at a TTL edge, a missing label time, label order, partitions
outside the label times' hours left unread, the explicit Glue-table placeholders; and every
generated ``.athena.sql`` through trino-sql-validator."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from pithelpers import Row, athena_on, iso, runner_on, write_offline
from sqlengines import validate_maintenance, validate_trino

from fsgen.cli import main
from fsgen.pit import PitError, build_dataset, finish, plan_for
from fsgen.pit.athena import Bounds, hour_text, render_pit_sql
from fsgen.pit.labels import read_labels

REPO = Path(__file__).resolve().parents[2]
T0 = 1_710_028_800 * 1_000_000  # 2024-03-10T00:00:00Z
MIN = 60 * 1_000_000
HOUR = 60 * MIN


def account(key: str, event_us: int, level: int, ts: str | None = None) -> Row:
    values = {"acct_id": key, "ts": ts or iso(event_us), "level": level, "label": "l", "hist": []}
    return Row(values=values, event_us=event_us, write_us=event_us, api_us=event_us)


def labels(times: list[object], key: str = "a") -> pd.DataFrame:
    frame = pd.DataFrame({"acct_id": [key] * len(times), "ts_label": times})
    return frame.assign(p=1, q="x", amount=1.0)


def levels(stored: object, plan: object, frame: pd.DataFrame) -> list[object]:
    out = finish(plan, read_labels(frame, plan), stored)  # type: ignore[arg-type]
    return [None if pd.isna(v) else int(v) for v in out["level"]]


def test_every_generated_athena_sql_passes_the_trino_validator() -> None:
    files = sorted(REPO.glob("generated/**/*.athena.sql"))
    files += sorted(REPO.glob("tests/golden/*/generated/**/*.athena.sql"))
    assert any(f.name == "pit_query.athena.sql" for f in files)
    assert any(f.name == "snapshot.athena.sql" for f in files)
    for path in files:
        if path.name == "maintenance.athena.sql":  # Athena DDL statements, one at a time
            validate_maintenance(path.read_text())
        else:
            validate_trino(path.read_text())


def test_cli_sql_is_valid_trino_in_both_modes(pit_project) -> None:
    config, _ = pit_project
    for extra in ([], ["--knowledge-time"]):
        result = CliRunner().invoke(
            main, ["--project", str(config.root), "dataset", "pit-set", "--sql", *extra]
        )
        assert result.exit_code == 0, result.output
        validate_trino(result.output)
        assert '"<accounts offline store table>"' in result.output
        assert 'ORDER BY "s"."fsgen_row"' in result.output


def test_sub_millisecond_label_times_at_the_ttl_edge(pit_project, tmp_path, sql_engine) -> None:
    """Record at 00:40:00.007Z, the set's TTL 30 min: a label at 01:10:00.007000Z sees it, one
    1 µs later does not -- in the artifact with ISO label times (Trino's from_iso8601_timestamp
    alone would keep milliseconds only) and in the runner's query."""
    config, spec = pit_project
    e = T0 + 40 * MIN + 7000
    write_offline(tmp_path, spec.group("accounts"), [account("a", e, 4)], "b0")
    frame = labels(
        [
            "2024-03-10T01:10:00.007000Z",
            "2024-03-10T01:10:00.007001Z",
            "2024-03-10t01:10:00.006999z",
        ]
    )
    local = build_dataset(config, spec, "pit-defaults", frame, store=tmp_path)
    assert local["level"].tolist() == [4, -1, 4]
    plan = plan_for(spec, "pit-defaults")
    for form in ("iso8601", "runner"):
        stored = (
            athena_on(*sql_engine, spec, "pit-defaults", tmp_path, frame, "iso8601")
            if form == "iso8601"
            else runner_on(*sql_engine, spec, "pit-defaults", tmp_path, frame)
        )
        assert levels(stored, plan, frame) == [4, -1, 4], form


def test_a_missing_label_time_fails_on_every_engine(pit_project, tmp_path, sql_engine) -> None:
    config, spec = pit_project
    write_offline(tmp_path, spec.group("accounts"), [account("a", T0, 4)], "b0")
    frame = labels([iso(T0), None, iso(T0)])
    with pytest.raises(PitError, match=r"label row 2: label time 'ts_label' is empty"):
        build_dataset(config, spec, "pit-defaults", frame, store=tmp_path)
    with pytest.raises(Exception, match=r"no label time ts_label in label row fsgen_row = 1"):
        athena_on(*sql_engine, spec, "pit-defaults", tmp_path, frame, "iso8601")


def test_partitions_outside_the_label_hours_are_not_read(pit_project, tmp_path, sql_engine):
    """A poisoned record (an event time no engine can parse) in an hour after the last label
    time, and one in an hour before the first label time less the TTL: neither is read, in
    the artifact (bounds from the labels) or the runner's query (constant bounds). A label
    inside a poisoned hour does read it -- so the test can fail."""
    _, spec = pit_project
    group = spec.group("accounts")  # TTL 1h
    write_offline(tmp_path, group, [account("a", T0 + 3 * HOUR, 4)], "b0")
    write_offline(tmp_path, group, [account("a", T0 + 5 * HOUR, 9, "poison")], "b1")
    write_offline(tmp_path, group, [account("a", T0 + HOUR + MIN, 8, "poison")], "b2")
    plan = plan_for(spec, "pit-defaults")
    frame = labels([iso(T0 + 3 * HOUR + 30 * MIN), iso(T0 + 4 * HOUR + 59 * MIN)])
    assert levels(
        athena_on(*sql_engine, spec, "pit-defaults", tmp_path, frame, "iso8601"), plan, frame
    ) == [4, -1]
    assert levels(runner_on(*sql_engine, spec, "pit-defaults", tmp_path, frame), plan, frame) == [
        4,
        -1,
    ]
    for late in (iso(T0 + 5 * HOUR), iso(T0 + HOUR + 30 * MIN)):
        with pytest.raises(Exception, match="poison"):
            runner_on(
                *sql_engine, spec, "pit-defaults", tmp_path, labels([iso(T0 + 3 * HOUR), late])
            )


def test_constant_partition_bounds(pit_project) -> None:
    _, spec = pit_project
    assert hour_text(T0 + HOUR - 1) == "2024031000"
    assert hour_text(T0 + HOUR) == "2024031001"
    assert hour_text(-1) == "1969123123"
    sql = render_pit_sql(
        spec,
        "pit-set",
        tables={"accounts": "a1", "pairs": "p1", "duals": "d1"},
        bounds=Bounds(first=T0, last=T0 + 26 * HOUR),
    )
    # accounts (TTL 1h) from the hour before the first label; pairs (no TTL) unbounded below
    assert """concat("year", "month", "day", "hour") >= '2024030923'""" in sql
    assert """concat("year", "month", "day", "hour") <= '2024031102'""" in sql
    assert sql.count('concat("year", "month", "day", "hour") >= ') == 2
    assert "offline store table>" not in sql
    validate_trino(sql)
