"""Re-ingesting an aggregation group's events: a batch row's sequence is its row number, so the
same events re-exported (one more row on top, another order, split over two files) would be new
events to the history and be counted twice. ``fsgen ingest`` finds the events the offline
history holds from an earlier ingestion (same entity, event time and values, beyond copies of
the very same rows) with one anti-join, and refuses the file before anything is written,
skips them (``--skip-seen``) or counts them again (``--allow-duplicates``). Two real purchases
with the same entity, time and values in one file stay two."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsgen.cli import main
from fsgen.config import load_config
from fsgen.errors import IngestError
from fsgen.loader import load
from fsgen.store import LocalStore

REPO = Path(__file__).resolve().parents[2]
GROUP = "purchases"
HEADER = "customer_id,purchased_at,amount"
ROWS = [
    "C1,2024-03-01T00:00:00Z,5.0",
    "C1,2024-03-01T00:00:00Z,5.0",  # two real purchases alike: two events
    "C2,2024-03-01T00:10:00Z,7.5",
    "C1,2024-03-01T01:00:00Z,2.0",
    "C2,2024-03-01T02:00:00Z,0.0",  # a refund: no count
]


@pytest.fixture(scope="module")
def spec() -> object:
    return load(REPO)


def write(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def events(store: LocalStore) -> Counter[tuple[object, ...]]:
    """The distinct events of the offline history (as the rebuild and the engines count
    them), by content: (customer, time, amount) -> how many."""
    frame = store.read_offline(GROUP, dedup=False)
    cols = ["customer_id", "purchased_at", "event_sequence", "event_hash"]
    distinct = frame.drop_duplicates(cols)
    value = distinct["avg_purchase_value__value"]
    return Counter(zip(distinct["customer_id"], distinct["purchased_at"], value, strict=True))


def lifetime(store: LocalStore, customer: str) -> int:
    """purchase_count_lifetime of the online state, finalized far after every event."""
    from fsgen.runtime.aggread import finalize_record

    group = store.group_spec(GROUP)
    record = store.get_record(GROUP, customer)
    assert record is not None
    states = {a.state_column: record.get(a.state_column) for a in group.aggregations}
    values = finalize_record(
        [a.runtime() for a in group.aggregations], states, 2_000_000_000 * 1_000_000
    )
    return int(values["purchase_count_lifetime"])  # type: ignore[call-overload]


def test_two_alike_purchases_in_one_file_stay_two(tmp_path: Path, spec: object) -> None:
    with LocalStore(tmp_path / "store", spec) as store:  # type: ignore[arg-type]
        result = store.ingest(GROUP, write(tmp_path / "a.csv", ROWS), workers=0)
        assert (result.written, result.skipped, result.rejected) == (5, 0, 0)
        assert events(store)[("C1", "2024-03-01T00:00:00Z", 5.0)] == 2
        assert lifetime(store, "C1") == 3


@pytest.mark.parametrize(
    "exports",
    [
        [["C9,2024-03-01T05:00:00Z,1.0", *ROWS]],  # one more row on top: every row shifted
        [list(reversed(ROWS))],  # another order
        [ROWS[:2], ROWS[2:]],  # split over two files (the second one's rows renumbered)
        [ROWS[3:], ROWS[:3]],  # split, the later half first
    ],
    ids=["one-more-row-on-top", "reversed", "split", "split-later-half-first"],
)
def test_a_reexport_is_refused_then_skipped_and_never_counted_twice(
    tmp_path: Path, spec: object, exports: list[list[str]]
) -> None:
    with LocalStore(tmp_path / "store", spec) as store:  # type: ignore[arg-type]
        store.ingest(GROUP, write(tmp_path / "original.csv", ROWS), workers=0)
        before = events(store)
        states_before = {c: store.get_record(GROUP, c) for c in ("C1", "C2")}
        refused = 0
        for n, rows in enumerate(exports):
            path = write(tmp_path / f"export{n}.csv", rows)
            rows_before = len(store.read_offline(GROUP, dedup=False))
            try:
                store.ingest(GROUP, path, workers=0)
            except IngestError as exc:
                refused += 1
                message = str(exc)
                assert f"of {path} are already in the offline history" in message
                assert "original.csv (ingested " in message
                assert "nothing was written" in message
                assert "--skip-seen" in message and "--allow-duplicates" in message
                assert len(store.read_offline(GROUP, dedup=False)) == rows_before
            # a file accepted here holds the very rows of the original (copies): no new event
            assert events(store) == before
        assert refused >= 1
        if len(exports) == 1:  # refused whole: the states were not touched either
            assert {c: store.get_record(GROUP, c) for c in ("C1", "C2")} == states_before
        for n, _ in enumerate(exports):
            store.ingest(GROUP, tmp_path / f"export{n}.csv", workers=0, duplicates="skip")
        expected = Counter(before)
        if exports[0][0].startswith("C9"):
            expected[("C9", "2024-03-01T05:00:00Z", 1.0)] = 1  # the one new event
        assert events(store) == expected
        assert lifetime(store, "C1") == 3 and lifetime(store, "C2") == 1


def test_the_identical_file_again_is_accepted_and_counts_once(tmp_path: Path, spec: object) -> None:
    """The very same rows again (same row numbers) are copies of the same events, one event
    each: accepted without a flag, as a backfill that rebuilds the states. Nothing is written
    (the history holds them), and the summary, --json and the audit trail say so."""
    from fsgen import audit

    root = tmp_path / "store"
    with LocalStore(root, spec) as store:  # type: ignore[arg-type]
        path = write(tmp_path / "a.csv", ROWS)
        store.ingest(GROUP, path, workers=0)
        before, rows = events(store), len(store.read_offline(GROUP, dedup=False))
        again = store.ingest(GROUP, path, workers=0)
        assert (again.written, again.stored, again.skipped) == (0, 5, 0)
        assert len(store.read_offline(GROUP, dedup=False)) == rows  # not one row appended
        assert events(store) == before and lifetime(store, "C1") == 3
    assert again.summary() == (
        "purchases: read 5, written 0, rejected 0, 5 already stored (the same rows ingested before)"
    )
    assert (again.to_dict()["written"], again.to_dict()["stored"]) == (0, 5)
    last = audit.read_lines(root / audit.AUDIT_FILE)[-1]
    assert last["summary"] == "read 5, written 0, rejected 0, 5 already stored"
    assert (last["details"]["written"], last["details"]["stored"]) == (0, 5)  # type: ignore[index]


def test_allow_duplicates_counts_them_as_new_events(tmp_path: Path, spec: object) -> None:
    with LocalStore(tmp_path / "store", spec) as store:  # type: ignore[arg-type]
        store.ingest(GROUP, write(tmp_path / "a.csv", ROWS), workers=0)
        path = write(tmp_path / "b.csv", list(reversed(ROWS)))
        result = store.ingest(GROUP, path, workers=0, duplicates="allow")
        assert (result.written, result.skipped) == (5, 0)
        assert lifetime(store, "C1") == 6  # what the user asked for: every event twice


def test_events_streamed_before_are_seen_by_a_backfill_of_them(
    tmp_path: Path, spec: object
) -> None:
    """Streamed events carry Kinesis sequences; a batch file of the same events has row
    numbers, so it would add each event again: refused, and the earlier write is named by its
    time (no batch run wrote it)."""
    from test_aggregation_write import ListDeadLetter, kinesis_event

    from fsgen.generated_imports import import_generated

    config = load_config(REPO)
    module = import_generated(config, "groups.purchases.stream_handler")
    rows = [
        {"customer_id": c, "purchased_at": t, "amount": float(a)}
        for c, t, a in (r.split(",") for r in ROWS)
    ]
    with LocalStore(tmp_path / "store", spec) as store:  # type: ignore[arg-type]
        event = kinesis_event(rows, 10**12)
        module.process_event(event, store.writer(GROUP), ListDeadLetter())  # type: ignore[attr-defined]
        with pytest.raises(IngestError, match=r"5 event\(s\) of .* from a write at "):
            store.ingest(GROUP, write(tmp_path / "backfill.csv", ROWS), workers=0)
        skipped = store.ingest(GROUP, tmp_path / "backfill.csv", workers=0, duplicates="skip")
        assert (skipped.written, skipped.skipped) == (0, 5)
        assert lifetime(store, "C1") == 3


# content keys from a small pool, so files share events and repeat them
content = st.tuples(
    st.sampled_from(["C1", "C2"]),
    st.sampled_from(["2024-03-01T00:00:00Z", "2024-03-01T00:05:00Z", "2024-03-02T00:00:00Z"]),
    st.sampled_from([1.0, 2.5]),
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    first=st.lists(content, min_size=1, max_size=8),
    second=st.lists(content, min_size=1, max_size=8),
)
def test_skip_seen_keeps_per_event_the_larger_of_the_two_files_counts(
    tmp_path_factory: pytest.TempPathFactory, spec: object, first, second
) -> None:
    """The oracle: each file says how many events of each (entity, time, values) happened;
    after file A, then file B with --skip-seen, the history holds max(count in A, count in B)
    of each -- never their sum -- whatever the rows' order and numbers. The default refuses B
    (writing nothing) exactly when --skip-seen would leave something out."""
    root = tmp_path_factory.mktemp("reingest")
    a = write(root / "a.csv", [f"{c},{t},{v}" for c, t, v in first])
    b = write(root / "b.csv", [f"{c},{t},{v}" for c, t, v in second])
    want = Counter(first) | Counter(second)  # per key: the larger count
    with LocalStore(root / "skip", spec) as store:  # type: ignore[arg-type]
        store.ingest(GROUP, a, workers=0)
        skipped = store.ingest(GROUP, b, workers=0, duplicates="skip")
        assert events(store) == want
        assert skipped.written + skipped.skipped == len(second)
        for customer in {c for c, _, _ in first + second}:
            assert lifetime(store, customer) == sum(n for k, n in want.items() if k[0] == customer)
    with LocalStore(root / "refuse", spec) as store:  # type: ignore[arg-type]
        store.ingest(GROUP, a, workers=0)
        before = events(store), len(store.read_offline(GROUP, dedup=False))
        try:
            store.ingest(GROUP, b, workers=0)
            refused = False
        except IngestError:
            refused = True
        # a row of B equal to A's row of the same number is a copy of that very event (the
        # same file again), never refused; anything else --skip-seen left out is
        copies = sum(1 for x, y in zip(first, second, strict=False) if x == y)
        assert refused == (skipped.skipped > copies)
        if refused:
            assert (events(store), len(store.read_offline(GROUP, dedup=False))) == before


def test_a_refused_file_writes_no_rejects_and_says_how_many_it_holds(
    tmp_path: Path, spec: object
) -> None:
    """A refusal writes nothing, the rejects file included: the --skip-seen run after it
    reports the file's bad rows once, not a second time on top of the refused run's."""
    rejects = tmp_path / "rejects.jsonl"
    with LocalStore(tmp_path / "store", spec) as store:  # type: ignore[arg-type]
        store.ingest(GROUP, write(tmp_path / "original.csv", ROWS), workers=0)
        path = write(tmp_path / "export.csv", ["C9,2024-03-01T05:00:00Z,abc", *ROWS])
        with pytest.raises(IngestError) as refused:
            store.ingest(GROUP, path, workers=0, rejects=rejects)
        assert "nothing was written, nor the rejects file (1 other row(s) are rejects" in str(
            refused.value
        )
        assert not rejects.exists()
        result = store.ingest(GROUP, path, workers=0, rejects=rejects, duplicates="skip")
        assert (result.rejected, result.skipped) == (1, 5)
        lines = [json.loads(line) for line in rejects.read_text().splitlines()]
        assert [(r["row"], r["field"]) for r in lines] == [(1, "amount")]


def test_fsgen_ingest_refuses_then_skip_seen(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command line: exit 1 with the refusal (count, first rows, earlier source), then
    --skip-seen prints what it left out; --json counts it; both flags at once are refused, and
    either flag on a row group."""
    import shutil

    for part in ("featuredefs", "data", "generated", "pyproject.toml"):
        src = REPO / part
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / part)
    runner = CliRunner()
    base = ["--project", str(tmp_path)]

    def run(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(main, [*base, *args], env={"COLUMNS": "200", "NO_COLOR": "1"})
        return result.exit_code, result.stdout, result.stderr

    assert run("apply", "--auto-approve")[0] == 0
    original = write(tmp_path / "original.csv", ROWS)
    assert run("ingest", GROUP, str(original))[0] == 0
    shifted = write(tmp_path / "shifted.csv", ["C9,2024-03-01T05:00:00Z,1.0", *ROWS])
    code, _, err = run("ingest", GROUP, str(shifted))
    assert code == 1
    # row 2 is C1's second alike purchase at the original's row 2 (a copy of that row); row 3
    # is the first one, shifted
    assert f"error: purchases: 4 event(s) of {shifted} are already in the offline history" in err
    assert "row 3 (C1, 2024-03-01T00:00:00Z); row 4 (C2, 2024-03-01T00:10:00Z)" in err
    assert f"{original} (ingested " in err
    # the generated batch job into the local store: the same check, the same flags
    from fsgen.backends import project_data_plane
    from fsgen.bind import group_runtime
    from fsgen.runtime.batch import main as batch_main

    job = group_runtime(load(tmp_path).group(GROUP))
    argv = [str(shifted), "--project", str(tmp_path)]
    capsys.readouterr()
    assert batch_main(job, [], argv, project_data_plane) == 1
    assert "4 event(s) of" in capsys.readouterr().err
    code, out, err = run("ingest", GROUP, str(shifted), "--skip-seen", "--json")
    assert code == 0, err
    assert "read 6, written 1, rejected 0, skipped 5 already ingested" in err
    summary = json.loads(out)
    assert (summary["read"], summary["written"], summary["skipped"]) == (6, 1, 5)
    assert batch_main(job, [], [*argv, "--skip-seen"], project_data_plane) == 0
    assert "written 0, rejected 0, skipped 6 already ingested" in capsys.readouterr().err
    code, _, err = run("ingest", GROUP, str(shifted), "--skip-seen", "--allow-duplicates")
    assert code == 1 and "not both" in err  # a usage error: exit 1 (2 means plan changes)
    code, _, err = run("ingest", "customer-features", "data/customers.csv", "--skip-seen")
    assert code == 1 and "is for aggregation groups" in err


def test_the_audit_trail_counts_the_skipped_events(tmp_path: Path, spec: object) -> None:
    """fsgen history's line of a --skip-seen run adds up: read = written + rejected + skipped."""
    from fsgen import audit

    root = tmp_path / "store"
    with LocalStore(root, spec) as store:  # type: ignore[arg-type]
        store.ingest(GROUP, write(tmp_path / "a.csv", ROWS), workers=0)
        path = write(tmp_path / "b.csv", ["C9,2024-03-01T05:00:00Z,1.0", *ROWS])
        store.ingest(GROUP, path, workers=0, duplicates="skip")
    last = audit.read_lines(root / audit.AUDIT_FILE)[-1]
    assert last["summary"] == "read 6, written 1, rejected 0, skipped 5 already ingested"
    assert last["details"]["skipped"] == 5  # type: ignore[index]


def test_the_audit_trail_of_a_refused_file_says_nothing_was_written(
    tmp_path: Path, spec: object
) -> None:
    """A refused file writes nothing, so fsgen history's line of that run counts no record
    written (it used to count the held events as written) and no reject (none was kept)."""
    from fsgen import audit

    root = tmp_path / "store"
    with LocalStore(root, spec) as store:  # type: ignore[arg-type]
        store.ingest(GROUP, write(tmp_path / "a.csv", ROWS), workers=0)
        path = write(tmp_path / "b.csv", ["C9,2024-03-01T05:00:00Z,abc", *ROWS])
        with pytest.raises(IngestError):
            store.ingest(GROUP, path, workers=0)
    last = audit.read_lines(root / audit.AUDIT_FILE)[-1]
    assert last["result"] == "failed"
    assert last["summary"] == "read 6, written 0, rejected 0"
    assert last["details"]["written"] == 0  # type: ignore[index]


def test_read_offline_keeps_events_at_one_time_and_one_of_each_copy(
    tmp_path: Path, spec: object
) -> None:
    """LocalStore.read_offline's visible rows of an aggregation group are its events: two
    purchases alike at one time are two (not one per customer and time), the same rows written
    again (unchecked) add none."""
    with LocalStore(tmp_path / "store", spec) as store:  # type: ignore[arg-type]
        path = write(tmp_path / "a.csv", ROWS)
        store.ingest(GROUP, path, workers=0)
        store.ingest(GROUP, path, workers=0, duplicates="allow")
        visible = store.read_offline(GROUP)
        assert len(visible) == len(ROWS) and len(store.read_offline(GROUP, dedup=False)) == 10
        assert (visible["customer_id"] == "C1").sum() == 3
