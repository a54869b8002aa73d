"""Transform workers die with a killed ``fsgen ingest``; an over-long JSON line is one
reject, read past without holding it in memory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from test_store_safety import make_csv

from fsgen.config import ProjectConfig
from fsgen.runtime import sources
from fsgen.spec import ProjectSpec
from fsgen.store import LocalStore

CHILD = """
import os, sys
from pathlib import Path
from fsgen.loader import load
from fsgen.store import LocalStore
root, store_dir, src = sys.argv[1:4]
store = LocalStore(Path(store_dir), load(Path(root)))
def progress(rows, position):
    print("chunk", flush=True)
    sys.stdin.readline()  # wait here, workers busy with the chunks ahead, until killed
store.ingest("user-events", src, chunk_rows=200, workers=2, progress=progress)
"""


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_workers_die_with_a_killed_parent(
    project: tuple[ProjectConfig, ProjectSpec], tmp_path: Path
) -> None:
    config, _ = project
    src = make_csv(tmp_path / "in.csv", 4_000, seed=5)
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(config.root), str(tmp_path / "store"), str(src)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(config.root)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "chunk"
    workers = _children(proc.pid)
    assert len(workers) == 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 60  # a bound for a busy machine, not a timing assertion
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [w for w in workers if _alive(w)]


def test_an_over_long_json_line_is_one_reject(
    spec: ProjectSpec, tmp_path: Path, monkeypatch: object
) -> None:
    src = tmp_path / "in.jsonl"
    good = {"user_id": "u1", "ts": "2024-02-01T00:00:00Z", "amount": 1.0, "count": 1}
    good.update(name="n", tags="t")
    limit = 1 << 16
    with src.open("w") as fh:
        fh.write(json.dumps(good) + "\n")
        fh.write('{"user_id": "' + "x" * (limit * 5) + '"}\n')  # over the limit
        fh.write(json.dumps({**good, "user_id": "u2"}) + "\n")
    import pytest

    mp = pytest.MonkeyPatch()
    mp.setattr(sources, "MAX_LINE_BYTES", limit)  # the limit, made small for the test
    try:
        store = LocalStore(tmp_path / "store", spec)
        result = store.ingest("user-events", src, rejects=tmp_path / "rejects.jsonl")
        store.close()
    finally:
        mp.undo()
    assert (result.read, result.written, result.rejected) == (3, 2, 1)
    reject = json.loads((tmp_path / "rejects.jsonl").read_text())
    assert reject["row"] == 2 and "longer than the limit" in reject["reason"]
    assert len(reject["record"]) <= 2000
