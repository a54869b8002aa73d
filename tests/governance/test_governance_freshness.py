"""Freshness: ages of the newest online/offline records, expired share, stale/empty/fresh
status and exit codes, and CloudWatch metrics (moto server)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsgen import freshness
from fsgen.cli import main
from fsgen.config import load_config
from fsgen.loader import load
from fsgen.store import LocalStore

DEFS = """\
from fsgen import Entity, FeatureGroup, Fractional, Integral, Online, String

user = Entity("user_id", String, description="u")
clicks = FeatureGroup("clicks", entity=user, event_time="ts", owner="o", description="d",
                      online=Online(ttl="1d"), max_staleness="2h")
visits = FeatureGroup("visits", entity=user, event_time="at", event_time_type=Fractional,
                      owner="o", description="d", max_staleness="1h")
pages = FeatureGroup("pages", entity=user, event_time="ts", owner="o", description="d")


@clicks.feature(Integral, description="n")
def n_clicks(n: int) -> int:
    return n


@visits.feature(Integral, description="n")
def n_visits(n: int) -> int:
    return n


@pages.feature(Integral, description="n")
def n_pages(n: int) -> int:
    return n
"""

T0 = datetime(2024, 5, 1, tzinfo=UTC).timestamp()


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project({"featuredefs/defs.py": DEFS})


def _put(root: Path, group: str, rows: list[dict[str, object]]) -> None:
    config, spec = load_config(root), load(root)
    with LocalStore.open(config, spec) as store:
        store.put_raw(group, rows)


def _report(root: Path, now: float) -> dict[str, freshness.GroupFreshness]:
    rep = freshness.report(load_config(root), load(root), now=now)
    return {g.group: g for g in rep.groups}


def test_fresh_stale_empty_and_unbounded(project: Path) -> None:
    _put(
        project,
        "clicks",
        [
            {"user_id": "a", "ts": iso(T0 - 3600), "n": 1},
            {"user_id": "b", "ts": iso(T0 - 600), "n": 2},  # newest
            {"user_id": "c", "ts": "2024-04-01T00:00:00+02:00", "n": 3},
        ],
    )
    _put(project, "pages", [{"user_id": "a", "ts": iso(T0 - 86400 * 30), "n": 1}])
    rep = _report(project, T0)
    clicks = rep["clicks"]
    assert clicks.status == "fresh" and not clicks.failing
    assert clicks.online is not None and clicks.offline is not None
    assert clicks.online.records == clicks.offline.records == 3
    assert clicks.online.newest_event_time == clicks.offline.newest_event_time == iso(T0 - 600)
    assert clicks.online.age_seconds == clicks.offline.age_seconds == 600
    assert clicks.online.expired == 1  # user c: 30 days old, TTL 1 day
    assert clicks.online.expired_share == pytest.approx(1 / 3)
    assert rep["visits"].status == "empty" and rep["visits"].failing
    assert rep["pages"].status == "unbounded" and not rep["pages"].failing

    later = _report(project, T0 + 3 * 3600)["clicks"]
    assert later.status == "stale" and later.failing
    assert "newest online record is 3h 10m old" in later.reason
    assert "max staleness 2h" in later.reason


def test_deleted_records_do_not_count_as_fresh(project: Path) -> None:
    config, spec = load_config(project), load(project)
    _put(
        project,
        "clicks",
        [
            {"user_id": "a", "ts": iso(T0 - 7200 * 2), "n": 1},
            {"user_id": "b", "ts": iso(T0 - 7200 * 2), "n": 1},
        ],
    )
    with LocalStore.open(config, spec) as store:
        store.delete_record("clicks", "b", iso(T0 - 60))
    clicks = _report(project, T0)["clicks"]
    assert clicks.online is not None and clicks.online.records == 1
    assert clicks.online.age_seconds == 7200 * 2
    assert clicks.status == "stale"
    # the delete, a minute old, is reported beside the records on both sides, never as fresh
    assert clicks.offline is not None and clicks.offline.age_seconds == 7200 * 2
    assert clicks.offline.records == 2  # the data rows; the tombstone is not a record
    for side in (clicks.online, clicks.offline):
        assert (side.deletes, side.newest_delete_time) == (1, iso(T0 - 60))
    result = CliRunner().invoke(
        main, ["--project", str(project), "freshness", "--group", "clicks", "--now", iso(T0)]
    )
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert any(
        line.strip().startswith("online   1 record, newest")
        and line.endswith(f"; 1 soft-deleted record (newest {iso(T0 - 60)}), not counted as fresh")
        for line in lines
    ), result.output
    assert any(
        line.strip().startswith("offline  2 records, newest")
        and line.endswith(f"; 1 tombstone (newest {iso(T0 - 60)}), not counted as fresh")
        for line in lines
    ), result.output
    assert clicks.to_dict()["offline"]["deletes"] == 1  # type: ignore[index]


def test_fractional_event_time_and_offline_keeps_older_records(project: Path) -> None:
    _put(
        project,
        "visits",
        [{"user_id": "a", "at": T0 - 100.5, "n": 1}, {"user_id": "a", "at": T0 - 5000.0, "n": 2}],
    )
    visits = _report(project, T0)["visits"]
    assert visits.online is not None and visits.offline is not None
    assert (visits.online.records, visits.offline.records) == (1, 2)
    assert visits.offline.age_seconds == pytest.approx(100.5)
    assert visits.status == "fresh"


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=10 * 86400), min_size=1, max_size=12),
    now_offset=st.integers(min_value=0, max_value=86400),
)
def test_ages_match_an_oracle(
    make_project: Callable[..., Path], offsets: list[int], now_offset: int
) -> None:
    root = make_project({"featuredefs/defs.py": DEFS})
    rows = [{"user_id": f"u{i}", "ts": iso(T0 - o), "n": i} for i, o in enumerate(offsets)]
    _put(root, "clicks", rows)
    now = T0 + now_offset
    clicks = _report(root, now)["clicks"]
    newest = T0 - min(offsets)
    assert clicks.online is not None
    assert clicks.online.age_seconds == pytest.approx(now - newest)
    assert clicks.online.expired == sum(1 for o in offsets if T0 - o + 86400 < now)
    assert clicks.status == ("stale" if now - newest > 7200 else "fresh")


def _cli(root: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["--project", str(root), "freshness", *args], catch_exceptions=False
    )
    return result.exit_code, result.stdout


def test_cli_exit_codes_and_json(project: Path) -> None:
    _put(project, "clicks", [{"user_id": "a", "ts": iso(T0 - 60), "n": 1}])
    _put(project, "visits", [{"user_id": "a", "at": T0 - 60, "n": 1}])
    code, out = _cli(project, "--now", iso(T0), "--group", "clicks", "--group", "visits")
    assert code == 0 and "All 2 group(s) fresh." in out
    code, out = _cli(project, "--now", iso(T0), "--json")
    data = json.loads(out)
    assert code == 1 and data["ok"] is False  # pages is empty
    assert {g["group"]: g["status"] for g in data["groups"]} == {
        "clicks": "fresh",
        "visits": "fresh",
        "pages": "empty",
    }
    code, out = _cli(project, "--now", iso(T0 + 86400), "--group", "clicks")
    assert code == 1 and "CLICKS" not in out and "clicks: STALE" in out
    result = CliRunner().invoke(main, ["--project", str(project), "freshness", "--now", "tomorrow"])
    assert result.exit_code == 1 and "'--now': expected an ISO-8601 timestamp" in result.stderr


def test_publish_cloudwatch_metrics(project: Path, aws_env: str) -> None:
    import boto3

    _put(project, "clicks", [{"user_id": "a", "ts": iso(T0 - 60), "n": 1}])
    rep = freshness.report(load_config(project), load(project), now=T0)
    sent = freshness.publish(rep, "featuredefs", region="us-east-1", namespace="fsgen/Test")
    assert sent == len(freshness.metric_data(rep, "featuredefs"))
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    stats = cw.get_metric_statistics(
        Namespace="fsgen/Test",
        MetricName="OnlineNewestRecordAge",
        Dimensions=[
            {"Name": "Project", "Value": "featuredefs"},
            {"Name": "FeatureGroup", "Value": "clicks"},
        ],
        StartTime=datetime.fromtimestamp(T0 - 600, UTC),
        EndTime=datetime.fromtimestamp(T0 + 600, UTC),
        Period=60,
        Statistics=["Maximum"],
    )
    assert [p["Maximum"] for p in stats["Datapoints"]] == [60.0]
    names = {m["MetricName"] for m in cw.list_metrics(Namespace="fsgen/Test")["Metrics"]}
    assert names == {
        "OnlineNewestRecordAge",
        "OnlineExpiredRecordShare",
        "OfflineNewestRecordAge",
        "Stale",
    }
    stale = cw.get_metric_statistics(
        Namespace="fsgen/Test",
        MetricName="Stale",
        Dimensions=[
            {"Name": "Project", "Value": "featuredefs"},
            {"Name": "FeatureGroup", "Value": "visits"},
        ],
        StartTime=datetime.fromtimestamp(T0 - 600, UTC),
        EndTime=datetime.fromtimestamp(T0 + 600, UTC),
        Period=60,
        Statistics=["Maximum"],
    )
    assert [p["Maximum"] for p in stale["Datapoints"]] == [1.0]  # visits is empty


def test_cli_publish(project: Path, aws_env: str) -> None:
    import boto3

    _put(project, "clicks", [{"user_id": "a", "ts": iso(T0 - 60), "n": 1}])
    result = CliRunner().invoke(
        main,
        [
            "--project",
            str(project),
            "freshness",
            "--now",
            iso(T0),
            "--group",
            "clicks",
            "--publish",
            "--namespace",
            "fsgen/CliTest",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0
    assert "published 4 CloudWatch metric(s) to namespace fsgen/CliTest" in result.stderr
    metrics = boto3.client("cloudwatch", region_name="us-east-1").list_metrics(
        Namespace="fsgen/CliTest"
    )["Metrics"]
    assert {m["MetricName"] for m in metrics} == {
        "OnlineNewestRecordAge",
        "OnlineExpiredRecordShare",
        "OfflineNewestRecordAge",
        "Stale",
    }


def test_now_before_the_newest_record_is_future_never_fresh(project: Path) -> None:
    _put(project, "clicks", [{"user_id": "a", "ts": iso(T0), "n": 1}])
    code, out = _cli(project, "--now", iso(T0 - 5400), "--group", "clicks")
    assert code == 1
    assert "clicks: FUTURE (newest online record is 1h 30m after now;" in out
    assert "(1h 30m after now)" in out and not re.search(r"(?<![\d-])-\d", out)
    assert "FRESH" not in out and out.rstrip().endswith("1 of 1 group(s) failing: clicks (future).")
    data = json.loads(_cli(project, "--now", iso(T0 - 5400), "--group", "clicks", "--json")[1])
    assert data["ok"] is False and data["groups"][0]["online"]["age_seconds"] == -5400
    rep = freshness.report(load_config(project), load(project), now=T0 - 5400, groups=["clicks"])
    names = {m["MetricName"]: m["Value"] for m in freshness.metric_data(rep, "p")}
    assert names["Stale"] == 1.0 and "OnlineNewestRecordAge" not in names  # no negative age


def test_an_unbounded_group_with_a_record_after_now_is_shown_never_failed(project: Path) -> None:
    """No max_staleness: measured, never judged, also when --now is before its newest record
    (as an aggregation group's states, written at the wall clock, always are for a past --now)."""
    _put(project, "pages", [{"user_id": "a", "ts": iso(T0), "n": 1}])
    code, out = _cli(project, "--now", iso(T0 - 5400), "--group", "pages")
    assert code == 0, out
    assert "pages: UNBOUNDED (no max_staleness declared; newest online record is 1h 30m" in out
    assert "(1h 30m after now)" in out and "FUTURE" not in out
    closing = "0 of 1 group(s) fresh; 1 unbounded (no max_staleness, not judged): pages."
    assert out.rstrip().endswith(closing)


def test_unbounded_groups_are_not_summarised_as_fresh(project: Path) -> None:
    _put(project, "clicks", [{"user_id": "a", "ts": iso(T0 - 60), "n": 1}])
    _put(project, "pages", [{"user_id": "a", "ts": iso(T0 - 60), "n": 1}])
    code, out = _cli(project, "--now", iso(T0), "--group", "clicks", "--group", "pages")
    assert code == 0
    assert out.rstrip().splitlines()[-1] == (
        "1 of 2 group(s) fresh; 1 unbounded (no max_staleness, not judged): pages."
    )
    assert "All" not in out and "online   1 record, newest" in out


def test_the_scaffold_declares_max_staleness(tmp_path: Path) -> None:
    target = tmp_path / "new"
    assert CliRunner().invoke(main, ["init", str(target)]).exit_code == 0
    (group,) = load(target).groups
    assert group.max_staleness_seconds == 2 * 86400
    code, out = _cli(target, "--now", "2024-01-01T00:00:00Z")
    assert code == 1 and "user-activity: EMPTY" in out  # judged, not 'unbounded'


AGG_DEFS = """\
from fsgen import Entity, FeatureGroup, Integral, String

user = Entity("user_id", String, description="u")
orders = FeatureGroup("orders", entity=user, event_time="ts", owner="o", description="d")


@orders.aggregation(Integral, function="count", windows=["1d"], hop="1h", description="n")
def order_count(amount: float) -> int:
    return 1
"""


def test_an_aggregation_groups_online_side_is_the_newest_event_its_states_hold(
    make_project: Callable[..., Path],
) -> None:
    """An aggregation group's online records are per-entity states, rewritten at the wall
    clock by every write -- a backfill of months-old events included. That write is no new
    data: the online side is measured by the newest event folded into any state (the states'
    watermark, what serving answers from), says so, and shows the write time beside it."""
    root = make_project(
        {
            "featuredefs/defs.py": AGG_DEFS.replace(
                'description="d")', 'description="d", max_staleness="1d")'
            )
        }
    )
    events = root / "orders.csv"
    events.write_text(
        f"user_id,ts,amount\nu1,{iso(T0)},3.0\nu2,{iso(T0 + 60)},4.0\nu1,{iso(T0 + 120)},5.0\n"
    )
    config, spec = load_config(root), load(root)
    before = datetime.now(UTC).timestamp()
    with LocalStore.open(config, spec) as store:
        result = store.ingest("orders", events)  # the backfill: states written now
    assert result.written == 3
    now = T0 + 3 * 86400
    group = _report(root, now)["orders"]
    assert group.online is not None and group.offline is not None
    assert group.online.measured_by == "newest event in the states" and group.online.records == 2
    assert group.online.newest_event_time == iso(T0 + 120)
    assert group.online.age_seconds == 3 * 86400 - 120
    assert group.online.newest_write_time is not None
    written = datetime.fromisoformat(group.online.newest_write_time).timestamp()
    assert written >= before - 1  # when the backfill wrote them
    assert group.offline.measured_by == "event time"
    assert group.offline.newest_event_time == iso(T0 + 120)
    # stale on both sides, not "future" (the write after --now) nor fresh online
    assert group.status == "stale", group.reason
    assert "newest online record is 2d 23h old" in group.reason, group.reason
    text = freshness.render(freshness.report(config, spec, now=now))
    assert (
        f"online   2 aggregation states, newest event {iso(T0 + 120)} (2d 23h old), "
        "states last written " in text
    ), text
    assert "offline  3 records, newest " + iso(T0 + 120) in text
    metrics = freshness.metric_data(freshness.report(config, spec, now=now), "p")
    online_age = [m["Value"] for m in metrics if m["MetricName"] == "OnlineNewestRecordAge"]
    assert online_age == [3 * 86400 - 120]

    # a state serving cannot read holds no fresh data: it is counted apart
    import sqlite3

    con = sqlite3.connect(config.store_path / "online.sqlite")
    with con:
        con.execute(
            'UPDATE "fg:orders" SET "order_count__state" = \'[3,"x",\' WHERE _record_id = ?',
            ("u1",),
        )
    con.close()
    group = _report(root, now)["orders"]
    assert group.online is not None
    assert (group.online.records, group.online.unreadable) == (2, 1)
    assert group.online.newest_event_time == iso(T0 + 60)  # u2's, the one readable state
    text = freshness.render(freshness.report(config, spec, now=now))
    assert "1 state serving cannot read, not counted as fresh" in text, text


def test_the_demos_second_report_is_an_hour_after_the_newest_event_not_a_state_write(
    make_project: Callable[..., Path],
) -> None:
    """The demo's `fsgen freshness --now <an hour after the newest record>` took the newest
    time of any store, and an aggregation group's states are written at the wall clock: its
    'then' was today, and every group of the 2024 sample data stayed stale."""
    from fsgen.catalog.demo import newest_event_seconds

    root = make_project({"featuredefs/defs.py": AGG_DEFS})
    events = root / "orders.csv"
    events.write_text(f"user_id,ts,amount\nu1,{iso(T0)},3.0\nu2,{iso(T0 + 120)},4.0\n")
    config, spec = load_config(root), load(root)
    with LocalStore.open(config, spec) as store:
        store.ingest("orders", events)
    rep = freshness.report(config, spec, now=datetime.now(UTC).timestamp())
    assert newest_event_seconds(rep) == T0 + 120
