"""Property: for any deployed group A and declared group B, executing the plan's stages on the
local registry yields a deployed group equal to B (except the description, which is shown and
deliberately not applied), and planning again yields no stages. The oracle is plain equality
of the state read back from the registry, independent of the differ's rule table."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsgen.backends.local import LocalBackend
from fsgen.config import ProjectConfig
from fsgen.plan.diff import make_plan
from fsgen.plan.model import ChangeKind, FeatureState, GroupState
from fsgen.sagemaker import LOCAL_ROLE_ARN, MANAGED_TAG, PROJECT_TAG
from fsgen.ttl_history import TAG as TTL_HISTORY_TAG

TYPES = ["Integral", "Fractional", "String", "List(String)", "Set(Integral)", "Vector(4)"]
POOL = [f"f{i}" for i in range(6)]


@st.composite
def features(draw: st.DrawFn) -> tuple[FeatureState, ...]:
    event_type = draw(st.sampled_from(["String", "Fractional"]))
    out = [FeatureState(name="id", type="String"), FeatureState(name="t", type=event_type)]
    for name in POOL:
        if draw(st.booleans()):
            out.append(
                FeatureState(
                    name=name,
                    type=draw(st.sampled_from(TYPES)),
                    description=draw(st.sampled_from(["", "a", "b"])),
                    parameters=draw(
                        st.dictionaries(
                            st.sampled_from(["x", "y", "fsgen:pii"]),
                            st.sampled_from(["1", "2"]),
                            max_size=2,
                        )
                    ),
                    logic_hash=draw(st.sampled_from([None, "sha256:1", "sha256:2"])),
                )
            )
    return tuple(out)


@st.composite
def group_states(draw: st.DrawFn) -> GroupState:
    online = draw(st.booleans())
    offline = draw(st.booleans()) or not online
    provisioned = draw(st.booleans())
    tags = draw(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.sampled_from(["1", "2"])))
    return GroupState(
        name="g",
        record_identifier="id",
        event_time_feature="t",
        features=draw(features()),
        online_enabled=online,
        online_ttl_seconds=draw(st.sampled_from([None, 3600, 2592000])) if online else None,
        # SageMaker takes Provisioned throughput only offline-only or on the Standard tier
        online_storage_type=draw(st.sampled_from(["Standard", "InMemory"]))
        if online and not provisioned
        else "Standard",
        online_kms_key=draw(st.sampled_from([None, "k1"])) if online else None,
        offline_enabled=offline,
        offline_s3_uri=draw(st.sampled_from(["s3://b/one", "s3://b/two"])) if offline else None,
        offline_table_format=draw(st.sampled_from(["Glue", "Iceberg"])) if offline else "Glue",
        offline_kms_key=draw(st.sampled_from([None, "k2"])) if offline else None,
        role_arn=LOCAL_ROLE_ARN if offline else None,
        throughput_mode="Provisioned" if provisioned else "OnDemand",
        throughput_read_units=draw(st.sampled_from([1, 5])) if provisioned else None,
        throughput_write_units=draw(st.sampled_from([1, 5])) if provisioned else None,
        description=draw(st.sampled_from(["one", "two"])),
        tags={**tags, MANAGED_TAG: "fsgen", PROJECT_TAG: "p"},
    )


def execute(backend: LocalBackend, desired: GroupState) -> None:
    deployed = backend.deployed()
    plan = make_plan(
        [desired],
        deployed,
        project="p",
        backend="local",
        state_fingerprint="-",
        spec_fingerprint="-",
    )
    for stage in plan.stages:
        backend.execute(stage, lambda _: None)


_counter = iter(range(10**9))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(before=group_states(), after=group_states())
def test_stages_take_any_state_to_the_declared_one(
    tmp_path: Path, before: GroupState, after: GroupState
) -> None:
    root = tmp_path / f"s{next(_counter)}"
    backend = LocalBackend(ProjectConfig(root=root))
    execute(backend, before)
    assert backend.deployed()["g"] == before
    execute(backend, after)
    got = backend.deployed()["g"]
    replaced = got.description == after.description
    # a TTL change in place also records itself in the fsgen:ttl-history tag (plan ignores it)
    if TTL_HISTORY_TAG in got.tags:
        assert before.online_ttl_seconds != after.online_ttl_seconds
    tags = {k: v for k, v in got.tags.items() if k != TTL_HISTORY_TAG}
    # FeatureAdditions append, as on SageMaker: a feature declared between deployed ones is
    # deployed after them (and the next plan is empty), so features compare by name
    by_name = {"features": tuple(sorted(after.features, key=lambda f: f.name))}
    got_by_name = tuple(sorted(got.features, key=lambda f: f.name))
    update = {"description": after.description, "tags": tags, "features": got_by_name}
    assert got.model_copy(update=update) == after.model_copy(update=by_name)
    if not replaced:  # kept in place: the description is the only thing left, as a note
        plan = make_plan(
            [after],
            backend.deployed(),
            project="p",
            backend="local",
            state_fingerprint="-",
            spec_fingerprint="-",
        )
        assert plan.stages == ()
        assert [d.kind for c in plan.changes for d in c.notes] == [ChangeKind.NOT_APPLIED]


def test_throughput_and_storage_change_in_an_order_sagemaker_accepts(tmp_path: Path) -> None:
    """Standard + Provisioned -> InMemory + OnDemand switches the throughput first, and back
    the storage first: SageMaker refuses Provisioned with InMemory at any step (the storage
    update used to come first and fail)."""
    fields = {"name": "id", "type": "String", "description": "", "parameters": {}}
    common = {
        "name": "g",
        "record_identifier": "id",
        "event_time_feature": "t",
        "features": (FeatureState(**fields), FeatureState(**(fields | {"name": "t"}))),
        "online_enabled": True,
        "offline_enabled": False,
        "description": "one",
        "tags": {MANAGED_TAG: "fsgen", PROJECT_TAG: "p"},
    }
    standard = GroupState(
        **common,
        online_storage_type="Standard",
        throughput_mode="Provisioned",
        throughput_read_units=1,
        throughput_write_units=1,
    )
    in_memory = GroupState(**common, online_storage_type="InMemory")
    for i, (before, after) in enumerate([(standard, in_memory), (in_memory, standard)]):
        backend = LocalBackend(ProjectConfig(root=tmp_path / str(i)))
        execute(backend, before)
        execute(backend, after)
        got = backend.deployed()["g"]
        assert (got.online_storage_type, got.throughput_mode) == (
            after.online_storage_type,
            after.throughput_mode,
        )
