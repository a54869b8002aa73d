"""The demo's point-in-time step: `fsgen dataset fraud-model --labels data/labels.csv`."""

from __future__ import annotations

from datetime import UTC, datetime
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


AGG_SET = "spending"


def step_aggregation_features(ctx: DemoContext) -> None:
    """`fsgen dataset spending` (avg_purchase_value and purchase_count at every label time, from
    the purchase events), the same features served through the generated parser at one label
    time, and `fsgen skew-check spending`."""
    import pandas as pd

    from fsgen.generated_imports import import_generated
    from fsgen.loader import load
    from fsgen.pit import build_dataset
    from fsgen.pit.dataset import write_frame
    from fsgen.runtime.aggregate import AggregationState
    from fsgen.serving.skew import skew_check
    from fsgen.serving.sources import LocalRecordSource
    from fsgen.store import LocalStore

    spec = load(ctx.config.root)
    output = ctx.workdir / "training" / "spending.parquet"
    ctx.say(f"$ fsgen dataset {AGG_SET} --labels {LABELS} --output training/{output.name}")
    labels = pd.read_csv(ctx.config.root / LABELS)
    frame = build_dataset(ctx.config, spec, AGG_SET, labels)
    write_frame(frame, output)
    columns = list(spec.feature_set(AGG_SET).columns)
    ctx.say(
        f"  {len(frame)} label rows, each window computed at its label time from the purchase "
        f"events; {len(frame) - int((frame['purchase_count_lifetime'] > 0).sum())} rows have "
        "no purchase before their label time (counts 0, means missing). Some with purchases:"
    )
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.precision", 2):
        some = frame[frame["purchase_count_lifetime"] > 0]
        ctx.say(some[["customer_id", "event_time", *columns]].head(4).to_string(index=False))
    customer = str(some["customer_id"].iloc[0])
    parser = import_generated(ctx.config, "feature_sets.spending.parser")
    group = spec.group("purchases")
    with LocalStore.open(ctx.config, spec) as store:
        record = store.get_record("purchases", customer) or {}
        marks = [
            AggregationState.decode(a.runtime(), record.get(a.state_column)).watermark  # type: ignore[arg-type]
            for a in group.aggregations
        ]
        at_us = max(m for m in marks if m is not None) + 1
        at = datetime.fromtimestamp(at_us // 1_000_000, UTC).replace(microsecond=at_us % 1_000_000)
        request = {"customer_id": customer}
        response = LocalRecordSource(store).batch_get_record(**parser.batch_get_request(request))
        served = parser.from_batch_get_record(response, request, now=at_us / 1e6)
        one = pd.DataFrame({"customer_id": [customer], "event_time": [at.isoformat()]})
        trained = (
            build_dataset(ctx.config, spec, AGG_SET, one)[columns].astype(object).iloc[0].tolist()
        )

        def show(values: list[object]) -> str:
            return ", ".join(
                f"{c}={v:.4f}" if isinstance(v, float) else f"{c}={v}"
                for c, v in zip(columns, values, strict=True)
            )

        ctx.say(f"  {customer} at {at.isoformat()} (just after its newest purchase):")
        ctx.say(f"    training (fsgen dataset):   {show(trained)}")
        ctx.say(f"    serving (generated parser): {show(served)}")
        report = skew_check(ctx.config, spec, AGG_SET, sample=50, store=store)
    ctx.say(f"$ fsgen skew-check {AGG_SET}")
    ctx.say("  " + report.render().splitlines()[-1])
