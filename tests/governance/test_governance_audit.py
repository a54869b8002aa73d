"""The audit trail: ingestion runs and applies, queryable together (fsgen history)."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from fsgen import audit
from fsgen.config import load_config
from fsgen.errors import IngestError, StoreError


@dataclass
class Run:
    group: str
    source: str = "data/x.csv"
    run_id: str = "r1"
    read: int = 10
    written: int = 10
    rejected: int = 0
    rejects_path: Path | None = None
    seconds: float = 0.5
    skipped: int = 0
    stored: int = 0
    recomputed: int = 0


def test_record_ingest_and_query_filters(example_project: Path) -> None:
    config = load_config(example_project)
    store = config.store_path
    audit.record_ingest(store, Run("customer-features"), when="2024-01-01T00:00:01.000Z")
    audit.record_ingest(
        store,
        Run("merchant-features", read=5, written=3, rejected=2, rejects_path=Path("/r/m.jsonl")),
        when="2024-01-01T00:00:02.000Z",
    )
    audit.record_ingest(
        store,
        Run("customer-features", read=0, written=0),
        error="boom",
        when="2024-01-01T00:00:03.000Z",
    )
    every = audit.query(config)
    assert [e.when for e in every] == sorted(e.when for e in every)
    assert [e.result for e in every] == ["ok", "rejects", "failed"]
    merchant = audit.query(config, kind="ingest", group="merchant-features")
    assert len(merchant) == 1
    assert merchant[0].details["rejects_path"] == "/r/m.jsonl"
    assert merchant[0].details["rejected"] == 2
    assert merchant[0].summary == "read 5, written 3, rejected 2"
    assert audit.query(config, kind="apply") == []
    assert [e.result for e in audit.query(config, limit=1)] == ["failed"]
    with pytest.raises(StoreError, match="unknown history kind 'bogus'"):
        audit.query(config, kind="bogus")


def _append_many(args: tuple[str, int]) -> None:
    store, worker = args
    for i in range(40):
        audit.record_ingest(Path(store), Run(f"g{worker}", run_id=f"{worker}-{i}"))


def test_concurrent_writers_never_interleave(example_project: Path) -> None:
    config = load_config(example_project)
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.map(_append_many, [(str(config.store_path), w) for w in range(4)])
    lines = (config.store_path / audit.AUDIT_FILE).read_text().splitlines()
    assert len(lines) == 160
    runs = {json.loads(line)["details"]["run_id"] for line in lines}
    assert len(runs) == 160


def test_corrupt_line_is_reported_with_its_location(example_project: Path) -> None:
    config = load_config(example_project)
    audit.record_ingest(config.store_path, Run("customer-features"))
    path = config.store_path / audit.AUDIT_FILE
    with path.open("a") as fh:
        fh.write("{not json\n")
    audit.record_ingest(config.store_path, Run("customer-features"))
    with pytest.raises(StoreError, match=r"audit\.jsonl:2: corrupt audit line"):
        audit.query(config)


def test_a_torn_last_line_is_not_an_event(example_project: Path) -> None:
    config = load_config(example_project)
    audit.record_ingest(config.store_path, Run("customer-features"))
    with (config.store_path / audit.AUDIT_FILE).open("a") as fh:
        fh.write('{"kind": "ingest", "wh')  # a writer killed mid-line
    assert len(audit.query(config)) == 1


def test_applies_and_ingestions_in_one_trail(example_project: Path) -> None:
    from fsgen.backends import open_backend
    from fsgen.loader import load
    from fsgen.plan.apply import apply_plan, compute_plan
    from fsgen.store import LocalStore

    config = load_config(example_project)
    spec = load(example_project)
    backend = open_backend(config, "local")
    apply_plan(config, spec, backend, compute_plan(config, spec, backend), regenerate=False)
    with LocalStore.open(config, spec) as store:
        result = store.ingest("customer-features", example_project / "data/customers.csv")
        with pytest.raises(IngestError):
            store.ingest("customer-features", example_project / "data/missing.csv")
    trail = audit.query(config)
    assert [(e.kind, e.result) for e in trail] == [
        ("apply", "applied"),
        ("ingest", "ok"),
        ("ingest", "failed"),
    ]
    applied = trail[0]
    assert applied.result == "applied"
    assert applied.groups == ("customer-features", "merchant-features", "purchases")
    assert applied.details["actions"] == {
        "customer-features": "create",
        "merchant-features": "create",
        "purchases": "create",
    }
    assert applied.summary.startswith("Plan: 3 to add")
    assert [e.kind for e in audit.query(config, group="merchant-features")] == ["apply"]
    assert trail[1].details["written"] == result.written > 0
    assert trail[1].details["run_id"] == result.run_id
    assert "missing.csv" in str(trail[2].details["error"])
    text = audit.render_line(trail[1])
    assert "ingest" in text and "customer-features" in text and "data/customers.csv" in text


def test_history_command_filters_and_json(
    example_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from fsgen.cli import main

    monkeypatch.setenv("FSGEN_USER", "reviewer")
    monkeypatch.chdir(example_project)
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(
            main, ["--project", str(example_project), *args], catch_exceptions=False
        )
        return result.exit_code, result.stdout

    assert run("history") == (0, "No applies or ingestions recorded yet.\n")
    assert run("apply", "--auto-approve")[0] == 0
    assert run("ingest", "merchant-features", "data/merchants.jsonl")[0] == 0
    code, _ = run(
        "ingest", "customer-features", "data/customers_with_errors.csv", "--rejects", "rej.jsonl"
    )
    assert code == 1  # some records were rejected
    code, text = run("history")
    lines = [line for line in text.splitlines() if not line.startswith("    ")]
    assert code == 0 and len(lines) == 3
    assert "reviewer@" in lines[0] and "applied  14/14 stages  Plan: 3 to add" in lines[0]
    merchants = "ok  ingest merchant-features from data/merchants.jsonl: read 403, written 403"
    assert merchants in lines[1]
    assert "rejects  ingest customer-features" in lines[2]
    assert "    rejects: rej.jsonl" in text
    code, out = run("history", "--json", "--kind", "ingest", "--group", "customer-features")
    (event,) = [json.loads(line) for line in out.splitlines()]
    assert event["kind"] == "ingest" and event["groups"] == ["customer-features"]
    assert event["details"]["rejected"] > 0 and event["details"]["rejects_path"] == "rej.jsonl"
    assert event["details"]["read"] == event["details"]["written"] + event["details"]["rejected"]
    code, out = run("history", "--json", "--kind", "apply", "--group", "merchant-features")
    assert [json.loads(line)["result"] for line in out.splitlines()] == ["applied"]
    code, out = run("history", "--limit", "1")
    assert "customer-features" in out and "merchant-features" not in out
    code, out = run("--backend", "aws", "history")
    assert out == "No applies or ingestions recorded yet.\n"


def test_history_filters_that_match_nothing_say_so(
    example_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A misspelt --group is an error naming the known groups, a filter that matches nothing
    says so (not "nothing recorded yet"), and --limit takes only counts of at least 1."""
    from click.testing import CliRunner

    from fsgen.cli import main

    monkeypatch.chdir(example_project)

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, ["--project", str(example_project), *args])
        return result.exit_code, result.output

    assert run("apply", "--auto-approve")[0] == 0
    assert run("ingest", "merchant-features", "data/merchants.jsonl")[0] == 0
    code, out = run("history", "--group", "merchant-featurs")
    assert code == 1 and "Traceback" not in out
    assert out.startswith("error: no feature group named 'merchant-featurs'")
    assert "(known: customer-features, merchant-features, purchases)" in out
    code, out = run("history", "--kind", "delete")
    expected = "No events match --kind delete (2 recorded; 'fsgen history' lists them).\n"
    assert (code, out) == (0, expected)
    code, out = run("history", "--kind", "ingest", "--group", "purchases")
    assert code == 0 and out.startswith("No events match --kind ingest --group purchases")
    for bad in ("0", "-1"):
        code, out = run("history", "--limit", bad)
        assert code == 1 and f"Invalid value for '--limit': {bad} is not in the range" in out
    code, out = run("history", "--limit", "1")
    assert code == 0 and "merchant-features" in out and "applied" not in out


def test_generated_batch_job_runs_join_the_trail(
    example_project: Path, deploy: Callable[[Path], None]
) -> None:
    from fsgen.backends import project_data_plane
    from fsgen.bind import group_runtime
    from fsgen.loader import load
    from fsgen.runtime.batch import main as batch_main

    deploy(example_project)
    config, spec = load_config(example_project), load(example_project)
    runtime = group_runtime(spec.group("customer-features"))
    source = str(example_project / "data/customers_with_errors.csv")
    rejects = str(example_project / "out/rejects.jsonl")
    assert (
        batch_main(
            runtime,
            [],
            [source, "--project", str(example_project), "--rejects", rejects],
            project_data_plane,
        )
        == 1
    )
    assert batch_main(runtime, [], [source, "--dry-run"]) == 1  # writes nothing: no event
    (event,) = audit.query(config, kind="ingest")
    assert event.groups == ("customer-features",) and event.result == "rejects"
    assert event.details["source"] == source and event.details["rejects_path"] == rejects
    assert event.details["read"] == event.details["written"] + event.details["rejected"]
    assert str(event.details["run_id"]).startswith("batch-")


def test_stream_replay_joins_the_trail(
    example_project: Path, deploy: Callable[[Path], None]
) -> None:
    from click.testing import CliRunner

    from fsgen.cli import main

    deploy(example_project)
    source = example_project / "data/updates.jsonl"
    good = (example_project / "data/customer_updates.jsonl").read_text().splitlines()[:5]
    source.write_text("\n".join([*good, "{not json"]) + "\n")
    result = CliRunner().invoke(
        main,
        ["--project", str(example_project), "stream", "replay", "customer-features", str(source)],
        catch_exceptions=False,
    )
    assert result.exit_code == 1  # the poison line was dead-lettered
    (event,) = audit.query(load_config(example_project), kind="ingest")
    assert event.result == "rejects" and event.groups == ("customer-features",)
    assert (event.details["read"], event.details["written"], event.details["rejected"]) == (6, 5, 1)
    assert str(event.details["rejects_path"]).endswith("dead-letter/customer-features.jsonl")
    assert str(event.details["run_id"]).startswith("stream-replay-")
    shown = audit.render_line(event).splitlines()
    assert shown[0].endswith(
        f"stream replay customer-features from {source}: "
        "read 6, written 5, dead-lettered or failed 1"
    ), shown
    assert shown[1].startswith("    dead letters: ") and shown[1].endswith(
        "dead-letter/customer-features.jsonl"
    )


def test_the_batch_job_audits_what_fsgen_ingest_audits(
    example_project: Path, deploy: Callable[[Path], None]
) -> None:
    """The same inputs through ``fsgen ingest`` and the generated batch job's command line,
    each into a fresh store, without ``--rejects``: the audit entries agree in every count
    (read, written, rejected, already stored, skipped, recomputed), the result and the
    summary, and each names a rejects file holding the same rejects, so every record of a
    run is accounted for."""
    import shutil

    from click.testing import CliRunner

    from fsgen.backends import project_data_plane
    from fsgen.bind import aggregation_runtime, group_runtime
    from fsgen.cli import main
    from fsgen.loader import load
    from fsgen.runtime.batch import main as batch_main

    deploy(example_project)
    store = example_project / ".fsgen"
    registry = example_project / "registry.json"
    shutil.copy(store / "registry.json", registry)
    spec = load(example_project)
    jobs = {
        "customer-features": group_runtime(spec.group("customer-features")),
        "purchases": aggregation_runtime(spec.group("purchases")),
    }
    data = example_project / "data"
    lines = (data / "purchases.csv").read_text().splitlines()
    # the first events again, in another order: events the history holds (seen)
    (data / "shifted.csv").write_text("\n".join([lines[0], *reversed(lines[1:6])]) + "\n")
    runs = [
        ("customer-features", data / "customers_with_errors.csv", []),
        ("purchases", data / "purchases.csv", []),
        ("purchases", data / "purchases.csv", []),  # the same rows again: already stored
        ("purchases", data / "shifted.csv", ["--skip-seen"]),
    ]

    def trail(entry: str) -> list[tuple[object, ...]]:
        shutil.rmtree(store)
        store.mkdir()
        shutil.copy(registry, store / "registry.json")
        for group, source, flags in runs:
            if entry == "cli":
                CliRunner().invoke(
                    main, ["--project", str(example_project), "ingest", group, str(source), *flags]
                )
            else:
                args = [str(source), "--project", str(example_project), *flags]
                batch_main(jobs[group], [], args, project_data_plane)
        out = []
        for event in audit.query(load_config(example_project), kind="ingest"):
            details = dict(event.details)
            assert str(details.pop("run_id")).startswith("batch-") == (entry == "job")
            details.pop("seconds")
            path = details.pop("rejects_path")
            assert (path is not None) == bool(details["rejected"]), (entry, event)
            rejects = (
                sorted(
                    (r["source"], r["row"], r["field"], r["reason"])
                    for r in map(json.loads, Path(str(path)).read_text().splitlines())
                )
                if path
                else []
            )
            assert len(rejects) == details["rejected"]
            out.append((event.groups, event.result, event.summary, details, rejects))
        return out

    ingested, batch = trail("cli"), trail("job")
    assert batch == ingested
    summaries = [summary for _, _, summary, _, _ in ingested]
    assert summaries == [
        "read 5, written 1, rejected 4",
        "read 491, written 491, rejected 0",
        "read 491, written 0, rejected 0, 491 already stored",
        "read 5, written 0, rejected 0, skipped 5 already ingested",
    ]


def test_stream_consume_is_shown_as_a_consume_with_dead_letters(tmp_path: Path) -> None:
    """A consume's entry reads as what it was, like a replay's: not as a batch ingestion with
    rejects."""
    event = audit.record_counts(
        tmp_path,
        group="reader-clicks",
        source="kinesis:news-clicks",
        read=14,
        written=10,
        rejected=4,
        rejects=str(tmp_path / "dead-letter" / "reader-clicks.jsonl"),
        seconds=1.0,
        run="stream-consume",
    )
    shown = audit.render_line(event).splitlines()
    assert shown[0].endswith(
        "stream consume reader-clicks from kinesis:news-clicks: "
        "read 14, written 10, dead-lettered or failed 4"
    ), shown
    assert shown[1] == f"    dead letters: {tmp_path / 'dead-letter' / 'reader-clicks.jsonl'}"
