"""The command line: ``fsgen stream replay`` accounts for every line and shows online values
changing; ``fsgen package lambda`` reports the zip."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from streamhelpers import GROUP, REPO, good

from fsgen.cli import main
from fsgen.config import ProjectConfig
from fsgen.runtime.deadletter import read_jsonl


def run(project: ProjectConfig, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main, ["--project", str(project.root), *args], env={"COLUMNS": "200", "NO_COLOR": "1"}
    )
    return result.exit_code, result.stdout, result.stderr


def test_replay_counts_every_line_and_shows_values_change(
    project_copy: ProjectConfig, tmp_path: Path
) -> None:
    updates = (REPO / "data" / "customer_updates.jsonl").read_text()
    source = tmp_path / "updates.jsonl"
    source.write_text(updates + "{oops\n" + json.dumps(good("C0001", tenure_months="x")) + "\n")
    code, out, err = run(
        project_copy,
        "stream",
        "replay",
        GROUP,
        str(source),
        "--batch-size",
        "8",
        "--show",
        "C0001",
        "--json",
    )
    assert code == 1  # two records were dead-lettered
    counts = json.loads(out)
    n = len(updates.splitlines())
    assert counts["read"] == n + 2 == counts["written"] + counts["dead_lettered"] + counts["failed"]
    assert (counts["dead_lettered"], counts["failed"], counts["batches"]) == (2, 0, 4)
    assert "C0001: before (none)" in err and "C0001: after  customer_id='C0001'" in err
    dlq = project_copy.store_path / "dead-letter" / f"{GROUP}.jsonl"
    assert [e["field"] for e in read_jsonl(dlq)] == ["<record>", "tenure_months"]
    # replaying again: the same online values, no new dead letters, now shown as 'before'
    code, out, err = run(
        project_copy, "stream", "replay", GROUP, str(source), "--show", "C0001", "--json"
    )
    assert json.loads(out)["written"] == counts["written"]
    assert "C0001: before customer_id='C0001'" in err
    assert len(list(read_jsonl(dlq))) == 2


def test_replay_of_a_clean_file_exits_zero(project_copy: ProjectConfig) -> None:
    code, _, err = run(
        project_copy,
        "stream",
        "replay",
        GROUP,
        str(REPO / "data" / "customer_updates.jsonl"),
        "--show",
        "C0003",
    )
    assert code == 0, err
    assert "dead-lettered 0, failed 0" in err and "C0003: after" in err


def test_package_lambda_command(project_copy: ProjectConfig, tmp_path: Path) -> None:
    code, out, err = run(
        project_copy, "package", "lambda", GROUP, "--output", str(tmp_path / "f.zip"), "--json"
    )
    assert code == 0, err
    info = json.loads(out)
    assert info["handler"] == "generated.groups.customer_features.stream_handler.handler"
    assert "imports from the zip alone: ok" in err


def test_unknown_group_is_a_clear_error(project_copy: ProjectConfig) -> None:
    code, _, err = run(
        project_copy, "stream", "replay", "nope", str(REPO / "data" / "customer_updates.jsonl")
    )
    assert code == 1 and "error:" in err and "nope" in err


def test_replaying_two_files_keeps_both_files_dead_letters(
    project_copy: ProjectConfig, tmp_path: Path
) -> None:
    dlq = project_copy.store_path / "dead-letter" / f"{GROUP}.jsonl"
    before = len(list(read_jsonl(dlq)))
    for i in range(2):
        source = tmp_path / f"part{i}.jsonl"
        bad = json.dumps(good(f"C9{i}", tenure_months="x"))
        source.write_text(json.dumps(good(f"C8{i}")) + "\n" + bad + "\n")
        code, out, _ = run(project_copy, "stream", "replay", GROUP, str(source), "--json")
        assert code == 1 and json.loads(out)["dead_lettered"] == 1
    assert len(list(read_jsonl(dlq))) == before + 2


def test_replay_names_each_failure_by_file_line_and_sequence(
    project_copy: ProjectConfig, tmp_path: Path
) -> None:
    """A failed record is shown as ``<file>:<line>: seq <n>: ...`` and its dead-letter entry
    holds ``source`` and ``line``: lines count from 1, blank lines included, across batches."""
    source = tmp_path / "updates.jsonl"
    source.write_text(
        "\n".join(
            [
                json.dumps(good("C0001")),
                "",  # line 2: blank, skipped but counted
                '{"customer_id": "C0002", "last_updated',  # line 3: truncated JSON
                json.dumps(good("C0003")),
                json.dumps(good("C0004", tenure_months="x")),  # line 5: a bad value
                "",
            ]
        )
        + "\n"
    )
    code, _, err = run(project_copy, "stream", "replay", GROUP, str(source), "--batch-size", "2")
    assert code == 1, err
    shown = [line.strip() for line in err.splitlines() if ": dead-lettered: " in line]
    dlq = list(read_jsonl(project_copy.store_path / "dead-letter" / f"{GROUP}.jsonl"))
    assert [(e["source"], e["line"], e["field"]) for e in dlq] == [
        (str(source), 3, "<record>"),
        (str(source), 5, "tenure_months"),
    ]
    assert shown == [
        f"{source}:3: seq {dlq[0]['sequenceNumber']}: dead-lettered: <record>: {dlq[0]['reason']}",
        f"{source}:5: seq {dlq[1]['sequenceNumber']}: dead-lettered: tenure_months: "
        f"{dlq[1]['reason']}",
    ]


def test_replay_keeps_the_handler_log_lines_off_the_screen(
    project_copy: ProjectConfig, tmp_path: Path
) -> None:
    """The handler logs one JSON line per failed record (Lambda's CloudWatch lines): replay lists
    the failures itself, so those lines go only to ``--handler-log``, one per dead letter."""
    source = tmp_path / "updates.jsonl"
    bad = [json.dumps(good(f"C{i:04d}", tenure_months="x")) for i in range(1, 13)]
    source.write_text("\n".join([json.dumps(good("C0100")), *bad]) + "\n")
    code, _, err = run(project_copy, "stream", "replay", GROUP, str(source))
    assert code == 1, err
    assert not [line for line in err.splitlines() if line.lstrip().startswith("{")], err
    assert "... and 2 more" in err

    log = tmp_path / "handler.log"
    code, _, err = run(
        project_copy, "stream", "replay", GROUP, str(source), "--handler-log", str(log)
    )
    assert code == 1, err
    assert not [line for line in err.splitlines() if line.lstrip().startswith("{")], err
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 12
    assert {e["level"] for e in lines} == {"error"}
    assert {e["field"] for e in lines} == {"tenure_months"}


def test_a_dead_letter_path_that_cannot_be_a_file_is_refused_before_replaying(
    project_copy: ProjectConfig, tmp_path: Path
) -> None:
    """As ingest's --rejects: a directory (or a path under a file) is one error before anything
    is read or written, instead of every poison record 'failing' after the good ones landed."""
    source = tmp_path / "updates.jsonl"
    source.write_text(json.dumps(good("C8001")) + "\n{oops\n")
    (tmp_path / "plain").write_text("x")
    for bad in (tmp_path, tmp_path / "plain" / "dlq.jsonl"):
        code, _, err = run(
            project_copy, "stream", "replay", GROUP, str(source), "--dead-letter", str(bad)
        )
        assert code == 1 and err.startswith(f"error: --dead-letter {bad}: "), err
        assert "nothing was read" in err and "Traceback" not in err
    with_store = run(project_copy, "get", GROUP, "C8001", "--as-of", "2024-03-01T00:00:01Z")
    assert with_store[0] == 1  # nothing was written


def test_replay_of_a_file_without_records_says_so(
    project_copy: ProjectConfig, tmp_path: Path
) -> None:
    for name, text in (("empty.jsonl", ""), ("blank.jsonl", "\n\n")):
        source = tmp_path / name
        source.write_text(text)
        code, _, err = run(project_copy, "stream", "replay", GROUP, str(source))
        assert code == 0, err
        assert f"warning: {source} holds no records (an empty file, or blank lines)" in err


def test_replay_from_a_dead_letter_file_sends_the_decoded_payloads(
    project_copy: ProjectConfig, tmp_path: Path
) -> None:
    """What the plan's warning says to do after a backfill ("replay the stream's dead letters"):
    the entries' base64 payloads go through the handler, not the entries themselves."""
    import base64

    def entry(record: object, **extra: object) -> str:
        data = base64.b64encode(json.dumps(record).encode()).decode()
        return json.dumps({"data": data, "reason": "earlier failure", **extra}) + "\n"

    dlq = tmp_path / "dlq.jsonl"
    dlq.write_text(entry(good("C8101")) + "\n" + entry(good("C8102"), line=7))
    code, out, err = run(
        project_copy, "stream", "replay", GROUP, str(dlq), "--from-dead-letter", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["written"] == 2
    assert f"dead-lettered payloads of {dlq} decoded into " in err
    at = ["--as-of", "2024-03-01T00:00:01Z"]  # good()'s event time, within the TTL
    for rid in ("C8101", "C8102"):
        assert run(project_copy, "get", GROUP, rid, *at)[0] == 0
    plain = tmp_path / "plain.jsonl"
    plain.write_text(json.dumps(good("C8103")) + "\n")
    code, _, err = run(project_copy, "stream", "replay", GROUP, str(plain), "--from-dead-letter")
    assert code == 1
    assert err.startswith(f"error: {plain}:1: not a dead-letter entry")
    assert run(project_copy, "get", GROUP, "C8103", *at)[0] == 1


def test_replay_of_a_csv_or_parquet_file_is_refused_before_anything_is_sent(
    project_copy: ProjectConfig, tmp_path: Path
) -> None:
    """Every line of such a file would be a dead letter 'not JSON' (the header too); it is one
    error naming fsgen ingest instead, and no dead-letter file appears."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    csv = tmp_path / "customers.csv"
    csv.write_text("customer_id,last_updated_time\nC1,2024-03-01T00:00:00Z\n")
    parquet = tmp_path / "export.bin"  # a Parquet file by its bytes, whatever its name
    pq.write_table(pa.table({"customer_id": ["C1"]}), parquet)
    for source, kind in ((csv, "CSV"), (parquet, "Parquet")):
        code, _, err = run(project_copy, "stream", "replay", GROUP, str(source))
        assert code == 1 and err.startswith(f"error: {source} is a {kind} file; "), err
        assert f"`fsgen ingest {GROUP} {source}`; nothing was sent" in err
    assert not (project_copy.store_path / "dead-letter").exists()


def test_redriving_the_default_dead_letter_file_keeps_it_as_it_was(
    project_copy: ProjectConfig, tmp_path: Path
) -> None:
    """Redriving ``<store>/dead-letter/<group>.jsonl`` sends its entries; the ones that fail
    again go to a new file, not back into the file redriven (an aggregation group's replay
    numbers records anew, so they would be new entries there), and redriving each file once
    sends each record once."""
    group = "purchases"
    source = tmp_path / "events.jsonl"
    bad = {"customer_id": "C0001", "purchased_at": "2024-03-01T00:00:00Z", "amount": "x"}
    source.write_text("{oops\n" + json.dumps(bad) + "\n")
    assert run(project_copy, "stream", "replay", group, str(source))[0] == 1
    dlq = project_copy.store_path / "dead-letter" / f"{group}.jsonl"
    before = dlq.read_bytes()
    assert len(list(read_jsonl(dlq))) == 2
    code, out, err = run(
        project_copy, "stream", "replay", group, str(dlq), "--from-dead-letter", "--json"
    )
    assert code == 1, err  # both fail again
    assert json.loads(out)["dead_lettered"] == 2
    assert dlq.read_bytes() == before  # the file redriven is left as it was
    (fresh,) = dlq.parent.glob(f"{group}-redrive-*.jsonl")
    assert [e["field"] for e in read_jsonl(fresh)] == ["<record>", "amount"]
    assert f"dead letters: {fresh}" in err
