"""Each change class of the rule table, end to end on the local backend: definitions edited,
plan computed against the deployed registry, stages executed, re-plan empty."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from planproj import Defs, Project

from fsgen.plan.diff import MAX_FEATURE_ADDITIONS, RULES, rule_for
from fsgen.plan.model import ChangeKind, Plan
from fsgen.plan.render import EMPTY, render_plan

MakeProject = Callable[[Defs], Project]


def deployed_then(project: MakeProject, before: Defs, after: Defs) -> tuple[Project, Plan]:
    proj = project(before)
    proj.apply()
    assert not proj.plan().has_changes
    proj.write(after)
    return proj, proj.plan()


def kinds(plan: Plan) -> dict[str, ChangeKind]:
    return {d.path: d.kind for c in plan.changes for d in (*c.diffs, *c.notes)}


def stage_kinds(plan: Plan) -> list[str]:
    return [s.kind for s in plan.stages]


def converges(proj: Project) -> None:
    proj.apply()
    again = proj.plan()
    assert not again.stages, render_plan(again)


def test_create_then_empty(project: MakeProject) -> None:
    proj = project(Defs())
    plan = proj.plan()
    assert [c.action for c in plan.changes] == ["create"]
    assert stage_kinds(plan)[0] == "create_group"
    proj.apply()
    again = proj.plan()
    assert again.changes == () and again.stages == ()
    assert render_plan(again) == EMPTY + "\n"


def test_metadata_only_is_update_feature_metadata(project: MakeProject) -> None:
    proj, plan = deployed_then(project, Defs(), Defs(age_description="Age, whole years"))
    assert [c.action for c in plan.changes] == ["update"]
    assert kinds(plan)["features.age.description"] is ChangeKind.METADATA
    assert "update_feature_metadata" in stage_kinds(plan)
    assert not plan.destructive
    meta = [s for s in plan.stages if s.kind == "update_feature_metadata"]
    assert meta[0].request == {
        "FeatureGroupName": "users",
        "FeatureName": "age",
        "Description": "Age, whole years",
    }
    converges(proj)


def test_pii_change_is_a_parameter_update(project: MakeProject) -> None:
    proj, plan = deployed_then(project, Defs(), Defs(age_pii="none"))
    assert kinds(plan)["features.age.parameters.fsgen:pii"] is ChangeKind.METADATA
    converges(proj)


def test_new_feature_is_feature_addition(project: MakeProject) -> None:
    proj, plan = deployed_then(project, Defs(with_score=False), Defs())
    assert kinds(plan)["features.score"] is ChangeKind.ADD_FEATURES
    update = [s for s in plan.stages if s.kind == "update_group"]
    assert update[0].request["FeatureAdditions"] == [
        {"FeatureName": "score", "FeatureType": "Fractional"}
    ]
    assert plan.changes[0].action == "update"
    # FeatureAdditions change the schema only: the plan says what the stored records hold
    text = render_plan(plan)
    assert "Warning: users: feature 'score' added. Records already stored" in text
    assert "give null until each record is written again" in text
    converges(proj)


def test_feature_additions_are_chunked_by_100(project: MakeProject) -> None:
    proj, plan = deployed_then(project, Defs(), Defs(extra_features=MAX_FEATURE_ADDITIONS + 5))
    additions = [
        len(s.request["FeatureAdditions"])
        for s in plan.stages  # type: ignore[arg-type]
        if s.kind == "update_group" and "FeatureAdditions" in s.request
    ]
    assert additions == [100, 5]
    converges(proj)


def test_ttl_and_storage_are_updates(project: MakeProject) -> None:
    proj, plan = deployed_then(project, Defs(), Defs(ttl="14d", storage="InMemory"))
    assert kinds(plan)["online_ttl_seconds"] is ChangeKind.UPDATE
    assert kinds(plan)["online_storage_type"] is ChangeKind.UPDATE
    (update,) = [s for s in plan.stages if s.kind == "update_group"]
    assert update.request["OnlineStoreConfig"] == {
        "StorageType": "InMemory",
        "TtlDuration": {"Unit": "Weeks", "Value": 2},
    }
    converges(proj)


def test_throughput_is_update(project: MakeProject) -> None:
    proj, plan = deployed_then(
        project,
        Defs(),
        Defs(throughput='Throughput(mode="Provisioned", read_units=10, write_units=5)'),
    )
    assert kinds(plan)["throughput_mode"] is ChangeKind.UPDATE
    (update,) = [s for s in plan.stages if s.kind == "update_group"]
    assert update.request["ThroughputConfig"] == {
        "ThroughputMode": "Provisioned",
        "ProvisionedReadCapacityUnits": 10,
        "ProvisionedWriteCapacityUnits": 5,
    }
    converges(proj)


@pytest.mark.parametrize(
    ("after", "path"),
    [
        (Defs(with_score=False), "features.score"),
        (Defs(age_type="Fractional", age_body="float(raw_age)"), "features.age.type"),
        (Defs(event_time="ts2"), "event_time_feature"),
        (Defs(online=False, ttl=None), "online_enabled"),
    ],
)
def test_replacements(project: MakeProject, after: Defs, path: str) -> None:
    if after.event_time == "ts2":
        after.age_body = "int(raw_age)"
    proj, plan = deployed_then(project, Defs(), after)
    assert kinds(plan)[path] is ChangeKind.REPLACE
    (change,) = plan.changes
    assert change.action == "replace"
    assert "online store" in (change.data_loss or "") or not after.online
    assert stage_kinds(plan)[:2] == ["delete_group", "create_group"]
    assert plan.destructive
    text = render_plan(plan)
    assert '-/+ feature_group "users"' in text
    assert f"{path} = " in text and "# forces replacement" in text
    converges(proj)


def test_kms_key_forces_replacement(project: MakeProject) -> None:
    proj, _ = deployed_then(project, Defs(), Defs())
    proj.write(Defs(), aws='[tool.fsgen.aws]\nonline_kms_key_id = "alias/feature-store"')
    plan = proj.plan()
    assert kinds(plan)["online_kms_key"] is ChangeKind.REPLACE
    converges(proj)


def test_logic_change_is_backfill(project: MakeProject) -> None:
    proj, plan = deployed_then(project, Defs(), Defs(age_body="int(raw_age) + 1"))
    assert kinds(plan)["features.age.logic_hash"] is ChangeKind.BACKFILL
    assert plan.backfill == {"users": ("age",)}
    assert plan.changes[0].action == "update"
    text = render_plan(plan)
    assert "Backfill needed" in text and "users: age" in text
    converges(proj)


def test_description_change_is_shown_not_applied(project: MakeProject) -> None:
    proj, plan = deployed_then(project, Defs(), Defs(description="Shop users"))
    notes = [d for c in plan.changes for d in c.notes]
    assert [d.path for d in notes] == ["description"]
    assert notes[0].kind is ChangeKind.NOT_APPLIED
    # the group's metadata hash tag moves with it; the description itself is never sent
    assert all(
        "Description" not in getattr(s, "request", {}) or s.kind != "update_group"
        for s in plan.stages
    )
    assert "set only at creation: not applied" in render_plan(plan)
    proj.apply()
    notes_only = proj.plan()
    assert notes_only.stages == ()
    assert [d.path for c in notes_only.changes for d in c.notes] == ["description"]


def test_group_tags_are_tag_updates(project: MakeProject) -> None:
    proj, plan = deployed_then(project, Defs(), Defs(tags={"domain": "user", "tier": "gold"}))
    assert kinds(plan)["tags.tier"] is ChangeKind.TAGS
    assert "set_tags" in stage_kinds(plan)
    converges(proj)


def test_removed_group_is_destroyed(project: MakeProject) -> None:
    proj, plan = deployed_then(project, Defs(second_group=True), Defs())
    assert [(c.group, c.action) for c in plan.changes] == [("shops", "destroy")]
    assert stage_kinds(plan) == ["delete_group"]
    converges(proj)


def test_unknown_paths_are_replace() -> None:
    assert rule_for("something_new") == ("something_new", ChangeKind.REPLACE)
    assert rule_for("features.x.new_field")[1] is ChangeKind.REPLACE
    assert rule_for("tags.anything") == ("tags.*", ChangeKind.TAGS)
    assert RULES["description"] is ChangeKind.NOT_APPLIED


def test_a_failed_group_is_replaced(project: MakeProject) -> None:
    from fsgen.plan.diff import make_plan

    proj = project(Defs())
    proj.apply()
    healthy = proj.backend().deployed()["users"]
    broken = {"users": healthy.model_copy(update={"status": "CreateFailed"})}
    plan = make_plan(
        [healthy],
        broken,
        project="scratch",
        backend="local",
        state_fingerprint="-",
        spec_fingerprint="-",
    )
    assert [c.action for c in plan.changes] == ["replace"]
    assert kinds(plan)["status"] is ChangeKind.REPLACE


def test_removing_the_ttl_is_an_update(project: MakeProject) -> None:
    proj, plan = deployed_then(project, Defs(), Defs(ttl=None))
    assert kinds(plan)["online_ttl_seconds"] is ChangeKind.UPDATE
    (update,) = [s for s in plan.stages if s.kind == "update_group"]
    assert update.request["OnlineStoreConfig"] == {"StorageType": "Standard", "TtlDuration": {}}
    converges(proj)
