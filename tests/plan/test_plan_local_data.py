"""On the local backend a replace really drops the group's online records and archives its
offline data; an in-place update keeps both."""

from __future__ import annotations

from collections.abc import Callable

from planproj import Defs, Project

from fsgen.store import LocalStore

MakeProject = Callable[[Defs], Project]

RECORD = {"user_id": "u1", "ts": "2099-01-01T00:00:00Z", "age": 40, "score": 1.5}


def put(proj: Project) -> None:
    with LocalStore.open(proj.config, proj.spec) as store:
        store.put_records("users", [RECORD])


def get(proj: Project) -> dict[str, object] | None:
    with LocalStore.open(proj.config, proj.spec) as store:
        return store.get_record("users", "u1")


def test_update_keeps_data_replace_drops_online_and_archives_offline(project: MakeProject) -> None:
    proj = project(Defs())
    proj.apply()
    put(proj)
    offline = proj.config.store_path / "offline" / "users"
    assert get(proj) is not None and any(offline.rglob("*.parquet"))

    proj.write(Defs(age_description="changed"))
    proj.apply()
    assert get(proj) is not None  # metadata update: data stays

    proj.write(Defs(age_description="changed", age_type="Fractional", age_body="float(raw_age)"))
    plan = proj.apply()
    assert plan.changes[0].action == "replace"
    assert get(proj) is None
    assert not offline.exists()
    (archived,) = (proj.config.store_path / "archive" / "users").iterdir()
    assert any(archived.rglob("*.parquet"))
    with LocalStore.open(proj.config, proj.spec) as store:  # not "never written"
        why = store.missing_reason("users", "u1")
    assert why.startswith("no record was written for this id since the group was last created")
    assert str(archived.parent) in why
