"""The local engine's file listing against pathlib's glob of the same layout."""

from __future__ import annotations

from pathlib import Path

from fsgen.pit.local import GLOB, data_file_names, data_files


def reference(group_dir: Path) -> list[Path]:
    return sorted(
        (p for p in group_dir.glob(GLOB) if not p.name.startswith((".", "_"))),
        key=lambda p: p.as_posix(),
    )


def test_listing_matches_glob(tmp_path: Path) -> None:
    group = tmp_path / "offline" / "g"
    names = [
        "data/year=2024/month=01/day=01/hour=00/b.parquet",
        "data/year=2024/month=01/day=01/hour=00/a.parquet",
        "data/year=2024/month=01/day=01/hour=00/.a.parquet.tmp",
        "data/year=2024/month=01/day=01/hour=00/.hidden.parquet",
        "data/year=2024/month=01/day=01/hour=00/_staged.parquet",
        "data/year=2024/month=01/day=01/hour=00/notes.txt",
        "data/year=2024/month=01/day=02/hour=13/c.parquet",
        "data/year=2023/month=12/day=31/hour=23/z.parquet",
        "data/.tmp/month=12/day=31/hour=23/h.parquet",
        "data/year=2024/month=01/day=01/x.parquet",
        "data/year=2024/month=01/day=01/hour=00/deeper/y.parquet",
    ]
    for name in names:
        path = group / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    (group / "data/year=2024/month=01/day=01/hour=00/dir.parquet").mkdir()
    expected = reference(group)
    assert data_files(group) == expected
    assert data_file_names(group) == [p.as_posix() for p in expected]
    assert len(expected) == 6


def test_missing_group_has_no_files(tmp_path: Path) -> None:
    assert data_files(tmp_path / "absent") == []
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "data").write_text("not a directory")
    assert data_file_names(tmp_path / "flat") == []
