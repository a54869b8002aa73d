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
from fsgen.plan.render import render_plan


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
    assert "purchases: the aggregation of 'avg_purchase_value__state' changed" in found[0]
    assert "after apply, fsgen backfill purchases (every entity's state" in found[0]
    assert "refused" in found[0]
    assert plan.notes == tuple(w.removeprefix("Warning: ") for w in found)


def test_window_lateness_and_function_changes_warn_too(
    make_project: Callable[..., Path],
) -> None:
    for old, new, column in (
        ('windows=["1d", "7d"]', 'windows=["1d", "14d"]', "avg_purchase_value__state"),
        ('lateness="0s"', 'lateness="1h"', "last_categories__state"),
        ('function="max"', 'function="min"', "max_purchase__state"),
    ):
        _, text = edited(make_project, old, new)
        assert [column in w for w in warnings(text)] == [True], (old, text)


def test_a_description_change_does_not_warn(make_project: Callable[..., Path]) -> None:
    plan, text = edited(make_project, 'description="Largest purchase"', 'description="Top"')
    assert plan.has_changes
    assert warnings(text) == [], text
