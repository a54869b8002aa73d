"""The demo's inference steps run on their own against a fresh store of the example project
(ingesting the sample data themselves) and end with a passing skew check."""

from __future__ import annotations

from pathlib import Path

from inference_helpers import REPO, copy_project

from fsgen.config import load_config
from fsgen.demo_context import DemoContext
from fsgen.serving import demo


class Recording(DemoContext):
    said: list[str]

    def say(self, text: str) -> None:
        self.said.append(text)


def test_demo_steps_train_serve_and_skew_check(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "proj")
    (root / "data").symlink_to(REPO / "data")
    config = load_config(root)
    workdir = tmp_path / "work"
    workdir.mkdir()
    ctx = Recording(
        config=config.model_copy(update={"store_dir": str(workdir / "store")}), workdir=workdir
    )
    ctx.said = []
    demo.step_train(ctx)
    assert (workdir / "model" / "model.json").is_file()
    demo.step_serve(ctx)
    demo.step_skew_check(ctx)
    text = "\n".join(ctx.said)
    assert "GET /ping -> 200" in text
    assert text.count("POST /invocations") == 3 and "-> probability" in text
    assert "OK: training = serving" in text
