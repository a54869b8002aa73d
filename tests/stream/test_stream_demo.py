"""The demo's aggregation step names the dead-lettered late event as ``fsgen stream replay``
does: by the stream file's line as well as its sequence number."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamhelpers import REPO

from fsgen.config import load_config
from fsgen.demo_context import DemoContext
from fsgen.stream import demo


class Recording(DemoContext):
    said: list[str]

    def say(self, text: str) -> None:
        self.said.append(text)


def test_the_demo_names_the_late_event_by_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(REPO)
    workdir = tmp_path / "work"
    workdir.mkdir()
    store = workdir / "store"
    ctx = Recording(config=config.model_copy(update={"store_dir": str(store)}), workdir=workdir)
    ctx.said = []
    demo.step_aggregations(ctx)
    late = [line for line in ctx.said if ": dead-lettered: " in line]
    assert len(late) == 1, ctx.said
    assert late[0].startswith("  data/purchase_stream.jsonl:24: seq "), late[0]
    assert "<late>: event time 2024-02-14T23:03:00Z" in late[0]
    # as `fsgen stream replay`: the handler's own JSON log line is not printed besides it
    captured = capsys.readouterr()
    assert '"deadLettered"' not in captured.out + captured.err
