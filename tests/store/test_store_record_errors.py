"""A rejected record names every bad field, in definition order, on the row and the
column-wise path alike, and the rejects file and the CLI say the same."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from storehelpers import make_project, user_row

from fsgen.bind import group_runtime
from fsgen.cli import main
from fsgen.runtime.bulk import process_block, process_rows, row_of
from fsgen.runtime.pipeline import GroupRuntime, RecordError
from fsgen.spec import ProjectSpec

BAD: dict[str, list[object]] = {
    "user_id": [None, 5, ["u"]],
    "ts": [None, "soon", "2024-02-30T00:00:00Z", 7],
    "amount": [None, "ten", "nan", "1e400", [1.0], math.nan],
    "count": [None, "x", 2.5, "٣"],
    "name": [None, 3, 1.5],
    "tags": [None, 4],
}


def problems_of(rt: GroupRuntime, row: dict[str, object]) -> tuple[tuple[str, str], ...]:
    try:
        rt.validate(row)
    except RecordError as exc:
        return exc.problems
    return ()


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_every_bad_field_is_named_in_definition_order(
    spec: ProjectSpec, data: st.DataObject
) -> None:
    """Oracle: a record's problems are the problems each of its bad fields has alone."""
    rt = group_runtime(spec.group("user-events"))
    broken = data.draw(st.dictionaries(st.sampled_from(sorted(BAD)), st.just(0), min_size=1))
    row = user_row("u1", "2024-01-01T00:00:00Z")
    alone: dict[str, tuple[str, str]] = {}
    for name in broken:
        value = data.draw(st.sampled_from(BAD[name]))
        single = {**user_row("u1", "2024-01-01T00:00:00Z"), name: value}
        (alone[name],) = problems_of(rt, single)
        row[name] = value
    expected = tuple(alone[f.name] for f in rt.fields if f.name in alone)
    with pytest.raises(RecordError) as caught:
        rt.validate(row)
    error = caught.value
    assert error.problems == expected
    assert error.field == expected[0][0]
    assert f"{error.field}: {error.message}" == "; ".join(f"{f}: {m}" for f, m in expected)
    # the column-wise path reports the same, byte for byte
    cols: dict[str, list[object]] = {name: [value] for name, value in row.items()}
    block = process_block(rt, cols, 1, min_block=1)
    slow = process_rows(rt, [row_of(cols, 0)])
    assert [(i, e.field, e.message, e.problems) for i, e in block.errors] == [  # type: ignore[union-attr]
        (0, error.field, error.message, error.problems)
    ]
    assert [(i, e.message) for i, e in slow.errors] == [(0, error.message)]


def test_one_bad_field_reads_as_before(spec: ProjectSpec) -> None:
    rt = group_runtime(spec.group("user-events"))
    with pytest.raises(RecordError) as caught:
        rt.validate(user_row("u1", "2024-01-01T00:00:00Z", amount="ten"))
    assert (caught.value.field, caught.value.message) == ("amount", "expected a number, got 'ten'")
    assert caught.value.problems == (("amount", "expected a number, got 'ten'"),)


def test_a_nan_for_a_required_number_says_so(spec: ProjectSpec) -> None:
    """JSON lines' NaN (or a Parquet NaN) is no value: the reason says it was a NaN."""
    rt = group_runtime(spec.group("user-events"))
    with pytest.raises(RecordError) as caught:
        rt.validate(user_row("u1", "2024-01-01T00:00:00Z", amount=math.nan))
    assert (caught.value.field, caught.value.message) == (
        "amount",
        "missing required field (NaN is no value)",
    )


def test_a_value_a_feature_cannot_hold_is_said_returned_not_raised(spec: ProjectSpec) -> None:
    """double_count of a count past 2**62 returns an int beyond 64 bits: the function did not
    raise, so the reason says what it returned, on the row and the column-wise path alike."""
    from fsgen.runtime.pipeline import TransformError

    rt = group_runtime(spec.group("user-events"))
    row = user_row("u1", "2024-01-01T00:00:00Z", count=2**62)
    with pytest.raises(TransformError) as caught:
        rt.transform(rt.validate(row))
    reason = "integer 9223372036854775808 does not fit SageMaker's 64-bit Integral"
    assert caught.value.field == "double_count"
    # and where the function is defined: nothing raised, so no line of it did
    assert re.fullmatch(
        rf"transformation returned 9223372036854775808: {reason} "
        r"\(double_count defined at \S+\.py:\d+\)",
        caught.value.message,
    ), caught.value.message
    cols: dict[str, list[object]] = {name: [value] for name, value in row.items()}
    block = process_block(rt, cols, 1, min_block=1)
    assert [(e.field, e.message) for _, e in block.errors] == [
        ("double_count", caught.value.message)
    ]


HEADER = "user_id,ts,amount,count,name,tags\n"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, deploy: Callable[[Path], None]) -> Path:
    project = make_project(tmp_path_factory.mktemp("errproject"), package="storeerrdefs")
    deploy(project)
    return project


def test_cli_and_rejects_file_list_every_bad_field(root: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "u1,soon,ten,x,Ann,a\nu2,2024-01-01T00:00:00Z,1,2,Ann,a\n")
    rejects = tmp_path / "rejects.jsonl"
    result = CliRunner().invoke(
        main,
        ["--project", str(root), "ingest", "user-events", str(bad), "--rejects", str(rejects)],
        env={"COLUMNS": "80", "NO_COLOR": "1"},
    )
    assert result.exit_code == 1
    assert "read 2, written 1, rejected 1" in result.stderr  # one reject per record
    (line,) = rejects.read_text().splitlines()
    entry = json.loads(line)
    assert entry["field"] == "ts"
    assert entry["reason"].startswith("expected an ISO-8601 timestamp")
    assert entry["reason"].endswith(
        "; amount: expected a number, got 'ten'; count: expected an integer, got 'x'"
    )
    assert f"row 1: ts: {entry['reason']}" in " ".join(result.stderr.split())


PROFILE_DEFS = '''
"""A group with required and optional text."""

from fsgen import Entity, FeatureGroup, Integral, String

user = Entity("user_id", String, description="A user")
profiles = FeatureGroup("profiles", entity=user, event_time="ts", owner="t", description="p")


@profiles.feature(String, description="Name")
def label(name: str) -> str:
    return name


@profiles.feature(Integral, description="Length of the note, missing without one")
def note_length(note: str | None) -> int | None:
    return None if note is None else len(note)


@profiles.feature(Integral, description="Level")
def grade(level: int | None) -> int | None:
    return level
'''


@pytest.fixture(scope="module")
def profiles(tmp_path_factory: pytest.TempPathFactory) -> ProjectSpec:
    from fsgen.loader import load

    root = tmp_path_factory.mktemp("profiles")
    (root / "profiledefs").mkdir()
    (root / "profiledefs" / "__init__.py").write_text('"""Profiles."""\n')
    (root / "profiledefs" / "groups.py").write_text(PROFILE_DEFS)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "p"\nversion = "0"\n\n[tool.fsgen]\ndefinitions = "profiledefs"\n'
    )
    return load(root)


def _ingest(spec: ProjectSpec, source: object, where: Path) -> tuple[list[object], object]:
    from fsgen.store import LocalStore

    found: list[object] = []
    with LocalStore(where, spec) as store:
        store.ingest("profiles", source, found)  # type: ignore[arg-type]
        stored = store.read_offline("profiles")
    rejects = [(r.row, r.field, r.reason) for r in found]  # type: ignore[attr-defined]
    columns = ["user_id", "ts", "label", "note_length", "grade"]
    return rejects, stored[columns].astype(object).where(
        stored[columns].notna(), None
    ).values.tolist()


_cells = st.sampled_from(["", "a", " "])


@settings(max_examples=15, deadline=None)
@given(rows=st.lists(st.tuples(_cells, _cells, st.sampled_from(["", "3"])), min_size=1, max_size=5))
def test_empty_text_means_the_same_in_csv_jsonl_and_parquet(
    profiles: ProjectSpec, rows: list[tuple[str, str, str]]
) -> None:
    """An empty CSV cell, "" in JSON lines and "" in Parquet give the same records and the
    same rejects: a required String field's empty value is missing (rejected), an optional
    String field keeps "", an optional Integral field's empty value is missing (None)."""
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [
        {"user_id": f"u{i}", "ts": "2024-01-01T00:00:00Z", "name": n, "note": t, "level": lv}
        for i, (n, t, lv) in enumerate(rows)
    ]
    expected_rejects = [
        (i + 1, "name", "missing required field") for i, (n, _, _) in enumerate(rows) if n == ""
    ]
    expected_rows = [
        [f"u{i}", "2024-01-01T00:00:00Z", n, len(t), 3 if lv else None]
        for i, (n, t, lv) in enumerate(rows)
        if n != ""
    ]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        csv = base / "in.csv"
        csv.write_text(
            "user_id,ts,name,note,level\n"
            + "".join(
                f"{r['user_id']},{r['ts']},{r['name']},{r['note']},{r['level']}\n" for r in records
            )
        )
        jsonl = base / "in.jsonl"
        jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
        parquet = base / "in.parquet"
        typed = [{**r, "level": int(r["level"]) if r["level"] else None} for r in records]
        pq.write_table(pa.Table.from_pylist(typed), parquet)
        for n, source in enumerate((csv, jsonl, parquet)):
            rejects, stored = _ingest(profiles, source, base / f"store{n}")
            assert rejects == expected_rejects, source.name
            assert sorted(stored) == expected_rows, source.name


def test_a_parquet_null_in_required_text_is_missing_too(
    profiles: ProjectSpec, tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = tmp_path / "in.parquet"
    pq.write_table(
        pa.table(
            {
                "user_id": ["u1", "u2"],
                "ts": ["2024-01-01T00:00:00Z"] * 2,
                "name": [None, "b"],
                "note": [None, None],
                "level": pa.array([None, None], pa.int64()),
            }
        ),
        parquet,
    )
    rejects, stored = _ingest(profiles, parquet, tmp_path / "store")
    assert rejects == [(1, "name", "missing required field")]
    assert stored == [["u2", "2024-01-01T00:00:00Z", "b", None, None]]


@settings(max_examples=60, deadline=None)
@given(
    field=st.sampled_from(["amount", "count"]),
    value=st.booleans(),
    others=st.lists(st.integers(1, 5), min_size=0, max_size=6),
)
def test_a_boolean_is_no_number_on_either_path(
    spec: ProjectSpec, field: str, value: bool, others: list[int]
) -> None:
    """JSON true/false (a Python bool, which is an int) for an Integral or Fractional field is
    rejected, by the row path and the column-wise path alike, among valid rows."""
    rt = group_runtime(spec.group("user-events"))
    rows = [user_row(f"u{i}", "2024-01-01T00:00:00Z", count=n) for i, n in enumerate(others)]
    rows.insert(len(rows) // 2, {**user_row("ub", "2024-01-01T00:00:00Z"), field: value})
    cols: dict[str, list[object]] = {name: [r[name] for r in rows] for name in rows[0]}
    fast = process_block(rt, cols, len(rows), min_block=2)
    slow = process_rows(rt, rows)
    expected = "an integer" if field == "count" else "a number"
    word = "true" if value else "false"
    for block in (fast, slow):
        assert [(i, e.field, e.message) for i, e in block.errors] == [
            (
                len(others) // 2,
                field,
                f"expected {expected}, got the boolean {word} "
                "(a boolean is not a number: annotate the field bool, or give 1/0)",
            )
        ]
        assert len(block.rows) == len(others)


def test_a_boolean_for_a_number_is_rejected_from_json_lines_and_parquet(
    spec: ProjectSpec, tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fsgen.store import LocalStore

    rows = [
        user_row("u1", "2024-01-01T00:00:00Z", count=True),
        user_row("u2", "2024-01-01T00:00:00Z", amount=False),
        user_row("u3", "2024-01-01T00:00:00Z"),
    ]
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    parquet = tmp_path / "in.parquet"  # a boolean column for an Integral field
    pq.write_table(
        pa.table({**{k: [r[k] for r in rows] for k in rows[2]}, "count": [True, False, True]}),
        parquet,
    )
    got = []
    for n, source in enumerate((jsonl, parquet)):
        found: list[object] = []
        with LocalStore(tmp_path / f"store{n}", spec) as store:
            result = store.ingest("user-events", source, found)  # type: ignore[arg-type]
        got.append((result.written, [(r.row, r.field) for r in found]))  # type: ignore[attr-defined]
    assert got == [
        (1, [(1, "count"), (2, "amount")]),
        (0, [(1, "count"), (2, "count"), (3, "count")]),
    ]


def test_a_repeated_key_in_a_json_object_is_a_reject_not_the_last_value(
    spec: ProjectSpec, tmp_path: Path
) -> None:
    """json keeps the last of a repeated key without a word; a JSON-lines record that gives
    one twice is refused (the stream's decoder is the same, tests/stream/test_stream_poison.py)."""
    from fsgen.store import LocalStore

    first = json.dumps(user_row("u1", "2024-01-01T00:00:00Z"))
    source = tmp_path / "in.jsonl"
    source.write_text(
        first[:-1]
        + ', "user_id": "u9"}\n'
        + json.dumps(user_row("u2", "2024-01-01T00:00:00Z"))
        + "\n"
        + first[:-1]
        + ', "amount": 1.0, "amount": 2.0}\n'
    )
    found: list[object] = []
    with LocalStore(tmp_path / "store", spec) as store:
        result = store.ingest("user-events", source, found)  # type: ignore[arg-type]
        assert store.get_record("user-events", "u9", now=0) is None
    assert result.written == 1
    assert [(r.row, r.field) for r in found] == [(1, "<record>"), (3, "<record>")]  # type: ignore[attr-defined]
    assert "'user_id' 2 times" in found[0].reason  # type: ignore[attr-defined]
    assert "'amount' 3 times" in found[1].reason  # type: ignore[attr-defined]
