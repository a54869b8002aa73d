"""Bad label rows are refused all at once, in file order, with row and column, whatever is
wrong with them and whichever engine was asked; a label row without a key is kept but said."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner
from pithelpers import iso

from fsgen.cli import main
from fsgen.pit import PitError, build_dataset

T0 = 1_710_028_800 * 1_000_000  # 2024-03-10T00:00:00Z in µs


def _dataset(root: str, labels: str, output: str, *options: str) -> tuple[int, str]:
    args = ["--project", root, "dataset", "pit-set", "--labels", labels, "--output", output]
    result = CliRunner().invoke(main, [*args, *options])
    return result.exit_code, result.output


@pytest.mark.parametrize("engine", ["local", "athena", "spark"])
def test_every_bad_label_row_is_named_in_file_order_by_every_engine(
    pit_project, tmp_path, engine
) -> None:
    """Row 1's unreadable time used to be hidden by row 2's empty one (empty times were
    checked first), and a bad key by both."""
    config, _ = pit_project
    good = f"a,{iso(T0)},1,x,u,v,1.0,1"
    rows = [
        "a,yesterday,1,x,u,v,1.0,1",  # 1: unreadable time
        "a,,1,x,u,v,1.0,1",  # 2: empty time
        good,
        f"a,{iso(T0)},one,x,u,v,1.0,1",  # 4: an Integral key that is no integer
        *[f"a,later{i},1,x,u,v,1.0,1" for i in range(4)],  # 5-8: four more bad times
        good,
    ]
    labels = tmp_path / "labels.csv"
    labels.write_text("acct_id,ts_label,p,q,lu,lv,amount,target\n" + "\n".join(rows) + "\n")
    code, output = _dataset(
        str(config.root), str(labels), str(tmp_path / "out.parquet"), "--engine", engine
    )
    assert code == 1
    assert not (tmp_path / "out.parquet").exists()
    message = " ".join(output.split())
    assert message.startswith(f"error: {labels}: 7 bad label values in 7 of 9 label rows: ")
    first = message.split(" label rows: ", 1)[1]
    assert first.split("; ")[:5] == [
        "label row 1: ts_label 'yesterday' is not an ISO-8601 timestamp like "
        "2024-01-31T12:00:00Z or epoch seconds",
        "label row 2: label time 'ts_label' is empty",
        "label row 4: p 'one' cannot be pairs's key 'p', which is Integral",
        "label row 5: ts_label 'later0' is not an ISO-8601 timestamp like "
        "2024-01-31T12:00:00Z or epoch seconds",
        "label row 6: ts_label 'later1' is not an ISO-8601 timestamp like "
        "2024-01-31T12:00:00Z or epoch seconds",
    ]
    assert message.endswith("; and 2 more")


def test_a_single_bad_label_keeps_its_one_line_form(pit_project, tmp_path) -> None:
    config, spec = pit_project
    frame = pd.DataFrame({"acct_id": ["a", "a"], "ts_label": ["yesterday", iso(T0)]})
    with pytest.raises(PitError) as info:
        build_dataset(config, spec, "pit-strict", frame, store=tmp_path)
    assert str(info.value) == (
        "labels: label row 1: ts_label 'yesterday' is not an ISO-8601 timestamp like "
        "2024-01-31T12:00:00Z or epoch seconds"
    )


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        (
            [T0 // 1_000_000, 2e12, float("inf"), 3e12],  # epoch seconds: ms, inf, ms
            [
                "label row 2: ts_label 2000000000000 is not epoch seconds (milliseconds? "
                "divide by 1000)",
                "label row 3: ts_label inf is not epoch seconds",
                "label row 4: ts_label 3000000000000 is not epoch seconds (milliseconds? "
                "divide by 1000)",
            ],
        ),
        (
            [None, iso(T0), 1_710_028_800, True],  # objects: none, text, a number, a bool
            [
                "label row 1: label time 'ts_label' is empty",
                "label row 3: ts_label 1710028800 is epoch seconds in a column of ISO-8601 "
                "timestamps (label row 2 holds '2024-03-10T00:00:00Z'); give one column's "
                "label times in one form",
                "label row 4: ts_label True is not an ISO-8601 timestamp or epoch seconds",
            ],
        ),
    ],
)
def test_bad_times_of_every_kind_are_collected(pit_project, tmp_path, times, expected) -> None:
    config, spec = pit_project
    frame = pd.DataFrame({"acct_id": ["a"] * 4, "ts_label": pd.Series(times, dtype=object)})
    if all(isinstance(t, int | float) for t in times):
        frame["ts_label"] = frame["ts_label"].astype("float64")
    with pytest.raises(PitError) as info:
        build_dataset(config, spec, "pit-strict", frame, store=tmp_path)
    assert str(info.value) == (
        f"labels: {len(expected)} bad label values in {len(expected)} of 4 label rows: "
        + "; ".join(expected)
    )


def test_a_label_row_without_its_key_is_kept_and_warned_of(pit_project, tmp_path) -> None:
    """It matches no record (a set over several entities may mean that), so it is no error;
    but its values are missing-value fills, which a lost column in an export would explain."""
    config, _ = pit_project
    labels = tmp_path / "labels.csv"
    rows = [f"{key},{iso(T0)},1,x,1.0" for key in ("a", "", "")]
    labels.write_text("acct_id,ts_label,p,q,amount\n" + "\n".join(rows) + "\n")
    output = tmp_path / "out.parquet"
    result = CliRunner().invoke(
        main,
        [
            *("--project", str(config.root), "dataset", "pit-defaults", "--labels", str(labels)),
            *("--output", str(output), "--json"),
        ],
    )
    assert result.exit_code == 0, result.output
    warning = json.loads(result.stdout)["warnings"][0]
    assert warning["group"] == "accounts" and warning["columns"] == "acct_id"
    assert warning["message"] == (
        f"{labels}: 2 of 3 label rows have no acct_id (label rows 2, 3): they match no "
        "record of feature group 'accounts', so its values there follow the missing-value "
        "policy"
    )
    assert len(pd.read_parquet(output)) == 3


@pytest.mark.parametrize("name", ["out.txt", "out", "a-directory", "under-a-file"])
def test_an_output_it_cannot_write_is_refused_before_the_labels_are_read(
    pit_project, tmp_path, name
) -> None:
    """The output's name is checked first: a bad one is not found out after the dataset was
    built (labels that do not exist are not even opened)."""
    config, _ = pit_project
    output = tmp_path / name
    if name == "a-directory":
        output = tmp_path / "dir.parquet"
        output.mkdir()
    if name == "under-a-file":
        (tmp_path / "a-file").write_text("")
        output = tmp_path / "a-file" / "out.parquet"
    code, message = _dataset(str(config.root), str(tmp_path / "missing.csv"), str(output))
    assert code == 1
    message = " ".join(message.split())
    if name == "a-directory":
        assert "is a directory" in message, message
    elif name == "under-a-file":
        assert message.startswith(f"error: {output}: {tmp_path / 'a-file'} is a file, not a "), (
            message
        )
    else:
        assert message.startswith(f"error: {output}: output must be .parquet or .csv"), message
    assert "missing.csv" not in message
