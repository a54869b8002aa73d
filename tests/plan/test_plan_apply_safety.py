"""Apply's guarantees: stale plans refused, destructive stages gated by a flag, one apply at a
time, idempotent re-apply, and a history entry for every apply."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from planproj import Defs, Project

from fsgen.errors import StoreError
from fsgen.plan.apply import PlanError, StalePlan, apply_lock, apply_plan, read_history

MakeProject = Callable[[Defs], Project]


def test_apply_twice_changes_nothing(project: MakeProject) -> None:
    proj = project(Defs())
    first = proj.apply()
    assert first.stages
    second = proj.apply()
    assert second.stages == () and not second.has_changes
    history = read_history(proj.config.store_path)
    assert [h["result"] for h in history] == ["applied", "applied"]
    assert history[0]["who"].startswith("tester@")  # type: ignore[union-attr]
    assert history[0]["stages_done"] == len(first.stages)
    assert history[0]["plan"]["state_fingerprint"] == first.state_fingerprint  # type: ignore[index]


def test_stale_state_is_refused(project: MakeProject) -> None:
    proj = project(Defs())
    old = proj.plan()
    proj.apply()  # the deployed state moves
    with pytest.raises(StalePlan, match="deployed state changed since the plan was made"):
        apply_plan(proj.config, proj.spec, proj.backend(), old, regenerate=False)


def test_changed_definitions_are_refused(project: MakeProject) -> None:
    proj = project(Defs())
    old = proj.plan()
    proj.write(Defs(age_description="changed"))
    with pytest.raises(StalePlan, match="definitions changed"):
        apply_plan(proj.config, proj.spec, proj.backend(), old, regenerate=False)


def test_destructive_plan_needs_the_flag(project: MakeProject) -> None:
    proj = project(Defs())
    proj.apply()
    proj.write(Defs(with_score=False))
    plan = proj.plan()
    with pytest.raises(PlanError, match="--allow-replace"):
        apply_plan(proj.config, proj.spec, proj.backend(), plan, regenerate=False)
    assert proj.plan() == plan  # nothing ran
    apply_plan(
        proj.config, proj.spec, proj.backend(), plan, allow_destructive=True, regenerate=False
    )
    assert not proj.plan().stages


def test_second_apply_fails_clearly_while_the_lock_is_held(project: MakeProject) -> None:
    proj = project(Defs())
    plan = proj.plan()
    with (
        apply_lock(proj.config.store_path),
        pytest.raises(StoreError, match="another fsgen apply holds the lock"),
    ):
        apply_plan(proj.config, proj.spec, proj.backend(), plan, regenerate=False, lock_timeout=0.2)
    assert proj.plan() == plan


def test_two_applies_at_once_one_applies_the_other_is_refused(project: MakeProject) -> None:
    proj = project(Defs(second_group=True))
    plan = proj.plan()
    config, spec = proj.config, proj.spec
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def run() -> None:
        start.wait()
        try:
            apply_plan(config, spec, proj.backend(), plan, regenerate=False, lock_timeout=30)
            outcomes.append("applied")
        except StalePlan:
            outcomes.append("stale")

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["applied", "stale"]
    assert not proj.plan().stages
