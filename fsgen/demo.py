"""``fsgen demo`` / ``make demo``: everything fsgen can do, end to end, on the example project
and the embedded local store. Each step prints what it shows; the demo's store lives in
``<store_dir>/demo`` and is recreated on every run, so the demo is repeatable."""

from __future__ import annotations

import shutil
from pathlib import Path

from fsgen.catalog import demo as governance_demo
from fsgen.config import ProjectConfig
from fsgen.demo_context import DemoContext, Step
from fsgen.pit import demo as pit_demo
from fsgen.serving import demo as serving_demo
from fsgen.store import demo as store_demo
from fsgen.stream import demo as stream_demo


def step_validate(ctx: DemoContext) -> None:
    from fsgen.loader import load

    spec = load(ctx.config.root)
    ctx.say(f"{spec.summary()}: valid")
    for g in spec.groups:
        ctx.say(
            f"  {g.name}: entity {g.entity.name} ({g.identifier}), event time "
            f"{g.event_time.name}, features {', '.join(g.output_names())}"
        )
    for fs in spec.feature_sets:
        ctx.say(f"  feature set {fs.name}: {', '.join(fs.columns)}")


def step_generate(ctx: DemoContext) -> None:
    """What `fsgen generate --check` says about the committed generated/, and what is in it."""
    from collections import defaultdict

    from fsgen.codegen import MANIFEST, diff
    from fsgen.loader import load

    spec = load(ctx.config.root)
    result = diff(ctx.config, spec)
    prefix = ctx.config.generated_dir
    if result.changed:
        ctx.say(f"$ fsgen generate --check  ->  stale: {', '.join(result.changed)}")
        ctx.say("  (run 'fsgen generate' to refresh them; the demo leaves generated/ as it is)")
    else:
        ctx.say(
            f"$ fsgen generate --check  ->  {prefix}/ is up to date "
            f"({len(result.artifacts)} artifacts, listed in {prefix}/{MANIFEST})"
        )
    folders: dict[str, list[str]] = defaultdict(list)
    for artifact in result.artifacts:
        folder, _, name = artifact.path.rpartition("/")
        folders[folder].append(name)
    for folder, names in sorted(folders.items()):
        ctx.say(f"  {prefix}/{folder + '/' if folder else ''}: {', '.join(names)}")
    group = spec.groups[0].name.replace("-", "_")
    ctx.say(f"  run a batch job: python -m {prefix}.groups.{group}.batch_job --dry-run")


def step_plan_apply(ctx: DemoContext) -> None:
    """`fsgen plan`, `fsgen apply --auto-approve`, then `fsgen plan` again: empty."""
    from fsgen.backends.local import LocalBackend
    from fsgen.cli._app import stderr_console
    from fsgen.loader import load
    from fsgen.plan.apply import apply_plan, compute_plan
    from fsgen.plan.render import apply_summary, render_plan

    def show(text: str) -> None:
        stderr_console().print(text, markup=False, highlight=False)

    spec = load(ctx.config.root)
    backend = LocalBackend(ctx.config)
    # generated/ is left as it is (see the previous step), so the demo plans the store only
    plan = compute_plan(ctx.config, spec, backend, artifacts=False)
    show("$ fsgen plan")
    show(render_plan(plan).rstrip())
    show("$ fsgen apply --auto-approve")
    apply_plan(
        ctx.config,
        spec,
        backend,
        plan,
        regenerate=False,
        progress=lambda line: show(f"  {line}") if line.startswith("[") else None,
    )
    show(apply_summary(plan))
    show("$ fsgen plan   # again: applying twice changes nothing")
    show(render_plan(compute_plan(ctx.config, spec, backend, artifacts=False)).rstrip())


STEPS: list[tuple[str, Step]] = [
    ("Validate the feature definitions", step_validate),
    ("Generate the artifacts", step_generate),
    ("Plan and apply the feature groups to the local store", step_plan_apply),
    ("Ingest the sample data (batch)", store_demo.step_ingest),
    ("Read online records", store_demo.step_get),
    ("Build a point-in-time training set", pit_demo.step_dataset),
    ("Stream updates through the Kinesis -> Lambda handler", stream_demo.step_stream),
    ("Aggregations: backfill purchases, then stream them", stream_demo.step_aggregations),
    ("Aggregation features: training set, serving, skew check", pit_demo.step_aggregation_features),
    ("Train a model on the point-in-time training set", serving_demo.step_train),
    ("Serve the model and send requests", serving_demo.step_serve),
    ("Skew check: training = serving", serving_demo.step_skew_check),
    ("Freshness and the audit trail", governance_demo.step_freshness),
    ("Governance catalog", governance_demo.step_catalog),
]


#: what the steps read: the example project's groups, feature sets and sample files
EXAMPLE_GROUPS = ("customer-features", "merchant-features", "purchases")
EXAMPLE_SETS = ("fraud-model", "spending")
EXAMPLE_DATA = (
    "data/customers.csv",
    "data/customers_with_errors.csv",
    "data/merchants.jsonl",
    "data/labels.csv",
    "data/customer_updates.jsonl",
    "data/purchases.csv",
    "data/purchase_stream.jsonl",
)


def check_example(config: ProjectConfig) -> None:
    """Refuse, before any step runs or any store is made, a project that is not the example:
    the steps would plan and apply its groups, then stop at the first example group."""
    from fsgen.errors import FsgenError
    from fsgen.loader import load

    spec = load(config.root)
    groups = {g.name for g in spec.groups}
    sets = {f.name for f in spec.feature_sets}
    missing = [f"group {g}" for g in EXAMPLE_GROUPS if g not in groups]
    missing += [f"feature set {f}" for f in EXAMPLE_SETS if f not in sets]
    missing += [path for path in EXAMPLE_DATA if not (config.root / path).is_file()]
    if missing:
        raise FsgenError(
            f"fsgen demo runs on fsgen's example card-fraud project, and {config.root} lacks "
            f"{', '.join(missing)}; run it in the fsgen repository (make demo), and on your "
            "own project the commands it shows (fsgen plan, apply, ingest, get, dataset, ...)"
        )


def run_demo(config: ProjectConfig, workdir: Path | None = None) -> None:
    check_example(config)
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
