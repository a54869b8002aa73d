"""`fsgen plan` warns when an aggregation's definition changes: the stored states were built
for the old one and are refused until a backfill rebuilds them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aggproject import DEFS

from fsgen.backends.local import LocalBackend
from fsgen.loader import load_with_config
from fsgen.plan.apply import apply_plan, compute_plan
from fsgen.plan.model import Plan
from fsgen.plan.render import backfill_lines, render_plan


def plan_of(root: Path) -> Plan:
    config, spec = load_with_config(root)
    return compute_plan(config, spec, LocalBackend(config), artifacts=False)


def deploy(root: Path) -> None:
    config, spec = load_with_config(root)
    backend = LocalBackend(config)
    plan = compute_plan(config, spec, backend, artifacts=False)
    apply_plan(config, spec, backend, plan, allow_destructive=True, regenerate=False)


def edited(make_project: Callable[..., Path], old: str, new: str) -> tuple[Plan, str]:
    root = make_project({"featuredefs/shop.py": DEFS})
    deploy(root)
    assert not plan_of(root).has_changes
    source = root / "featuredefs" / "shop.py"
    text = source.read_text()
    assert old in text
    source.write_text(text.replace(old, new))
    plan = plan_of(root)
    return plan, render_plan(plan)


def warnings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("Warning:")]


def test_a_changed_hop_warns_that_states_need_a_backfill(
    make_project: Callable[..., Path],
) -> None:
    old = 'windows=["1d", "7d"], hop="1h"'
    plan, text = edited(make_project, old, 'windows=["1d", "7d"], hop="2h"')
    found = warnings(text)
    assert len(found) == 1, text
    assert (
        "purchases: aggregation 'avg_purchase_value' changed: hop 1h -> 2h; lateness 1h -> 2h."
        in found[0]
    )
    assert "after apply, fsgen backfill purchases (every entity's state" in found[0]
    assert "refused" in found[0]
    assert plan.notes == tuple(w.removeprefix("Warning: ") for w in found)


def test_window_lateness_and_function_changes_warn_too(
    make_project: Callable[..., Path],
) -> None:
    for old, new, column in (
        ('windows=["1d", "7d"]', 'windows=["1d", "14d"]', "'avg_purchase_value' changed: windows"),
        ('lateness="0s"', 'lateness="1h"', "'last_categories' changed: lateness 0s -> 1h."),
        ('function="max"', 'function="min"', "'max_purchase' changed: function max -> min."),
    ):
        _, text = edited(make_project, old, new)
        assert [column in w for w in warnings(text)] == [True], (old, text)


def test_a_description_change_does_not_warn(make_project: Callable[..., Path]) -> None:
    plan, text = edited(make_project, 'description="Largest purchase"', 'description="Top"')
    assert plan.has_changes
    assert warnings(text) == [], text


def test_the_plan_says_in_words_what_changed_and_that_a_backfill_rebuilds_the_states(
    make_project: Callable[..., Path],
) -> None:
    old = 'windows=["1d", "7d"], hop="1h"'
    plan, text = edited(make_project, old, 'windows=["1d", "7d", "30d"], hop="30m"')
    (found,) = warnings(text)
    assert found.startswith(
        "Warning: purchases: aggregation 'avg_purchase_value' changed: windows 1d,7d -> "
        "1d,7d,30d; hop 1h -> 30m; lateness 1h -> 30m; feature 'avg_purchase_value_30d' new. "
    ), found
    assert "fsgen backfill purchases" in found and "offline event history, which is kept" in found
    # the group is updated in place (nothing lost), and the states are a backfill, not a detail
    (change,) = plan.changes
    assert change.action == "update" and change.data_loss is None
    state = next(d for d in change.diffs if d.path.endswith("fsgen:state-definition"))
    assert state.kind == "backfill"
    assert plan.backfill == {"purchases": ("avg_purchase_value__state",)}
    assert (
        "  purchases: avg_purchase_value__state: states built for the old aggregation "
        "definition (rebuild: fsgen backfill purchases)"
    ) in text.splitlines()
    # on the aws backend fsgen backfill cannot read the event history: the line says what can
    aws = plan.model_copy(update={"backend": "aws"})
    (line,) = backfill_lines(aws)
    assert "fsgen backfill" not in line.split("(rebuild: ", 1)[1].split(";")[0], line
    assert "fsgen --backend aws ingest purchases" in line and "whole event history" in line
    assert (
        '~ features.avg_purchase_value__state.parameters.fsgen:aggregation = "function=mean '
        'value=Fractional windows=1d/7d hop=1h lateness=1h" -> "function=mean value=Fractional '
        'windows=1d/7d/30d hop=30m lateness=30m"'
    ) in text


def test_a_removed_window_and_a_changed_n_are_named(make_project: Callable[..., Path]) -> None:
    _, text = edited(make_project, 'n=2, windows=["7d"]', 'n=3, windows=["7d"]')
    assert "aggregation 'last_categories' changed: n 2 -> 3." in text
    old = 'windows=["1d", "7d"], hop="1h"'
    _, text = edited(make_project, old, 'windows=["7d"], hop="1h"')
    assert (
        "aggregation 'avg_purchase_value' changed: windows 1d,7d -> 7d; feature "
        "'avg_purchase_value_1d' no longer served or in training sets."
    ) in text
