"""The demo's point-in-time step: `fsgen dataset fraud-model --labels data/labels.csv`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fsgen.demo_context import DemoContext

FEATURE_SET = "fraud-model"
LABELS = "data/labels.csv"


def step_dataset(ctx: DemoContext) -> None:
    """Build the training set from the demo store's offline records; show its shape and rows."""
    import pandas as pd

    from fsgen.loader import load
    from fsgen.pit import build_dataset
    from fsgen.pit.dataset import write_frame

    spec = load(ctx.config.root)
    output = ctx.workdir / "training" / "fraud_model.parquet"
    ctx.say(f"$ fsgen dataset {FEATURE_SET} --labels {LABELS} --output training/{output.name}")
    frame = build_dataset(ctx.config, spec, FEATURE_SET, ctx.config.root / LABELS)
    write_frame(frame, output)
    fs = spec.feature_set(FEATURE_SET)
    found = frame[list(fs.columns)].ne(pd.Series(fs.defaults)).any(axis=1).sum()
    ctx.say(
        f"  {len(frame)} label rows x {len(frame.columns)} columns "
        f"({len(fs.columns)} features, missing={fs.missing!r}); {found} rows found at "
        "least one stored value current at their label time"
    )
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.precision", 3):
        ctx.say(frame.head(5).to_string(index=False))
