"""``fsgen demo`` / ``make demo``: everything fsgen can do, end to end, on the example project
and the embedded local store. Each step prints what it shows; the demo's store lives in
``<store_dir>/demo`` and is recreated on every run, so the demo is repeatable."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fsgen.config import ProjectConfig


@dataclass
class DemoContext:
    config: ProjectConfig
    workdir: Path

    def say(self, text: str) -> None:
        from fsgen.cli._app import stderr_console

        stderr_console().print(text)


Step = Callable[[DemoContext], None]


def step_validate(ctx: DemoContext) -> None:
    from fsgen.loader import load

    spec = load(ctx.config.root)
    ctx.say(f"{spec.summary()}: valid")
    for g in spec.groups:
        ctx.say(f"  {g.name}: entity {g.entity.name} ({g.identifier}), event time "
                f"{g.event_time.name}, features {', '.join(f.name for f in g.features)}")
    for fs in spec.feature_sets:
        ctx.say(f"  feature set {fs.name}: {', '.join(fs.columns)}")


STEPS: list[tuple[str, Step]] = [
    ("Validate the feature definitions", step_validate),
]


def run_demo(config: ProjectConfig, workdir: Path | None = None) -> None:
    workdir = (workdir or config.store_path / "demo").resolve()
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    demo_config = config.model_copy(update={"store_dir": str(workdir / "store")})
    ctx = DemoContext(config=demo_config, workdir=workdir)
    for number, (title, step) in enumerate(STEPS, start=1):
        ctx.say(f"\n[bold]{number}. {title}[/bold]")
        step(ctx)
    ctx.say(f"\nDemo finished. Its store and outputs are in {workdir}")
