"""The skew check covers aggregation features: serving (the generated handler finalizing the
online state at the label time) against the training set's windows for the same rows, and it
fails on a deliberately skewed copy of the online state."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aggproject import HOUR, T0, event_rows, iso, make, state_runtime, write_events, write_states
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsgen.codegen import generate
from fsgen.serving.skew import skew_check
from fsgen.store.local import LocalStore

EVENTS = [
    ("c1", T0 + 0.5 * HOUR, 1, {"amount": 10.1, "category": "books"}),
    ("c1", T0 + 2 * HOUR, 2, {"amount": 30.7, "category": "games"}),
    ("c1", T0 + 2 * HOUR, 3, {"amount": 0.0, "category": "books"}),
    ("c1", T0 + 30 * HOUR, 4, {"amount": 5.3, "category": "toys"}),
    ("c2", T0 + 1 * HOUR, 5, {"amount": 7.5, "category": "food"}),
    ("c2", T0 + 1.25 * HOUR, 6, {"amount": 0.1, "category": "food"}),
    ("c3", T0 + 3 * HOUR, 7, {"amount": 0.2, "category": "toys"}),
]


def _checked(  # type: ignore[no-untyped-def]
    make_project: Callable[..., Path],
    online_events: list[tuple],  # type: ignore[type-arg]
    profiles: tuple[str, ...] = ("c1", "c2", "c3"),
):
    config, spec = make(make_project)
    group = spec.group("purchases")
    with LocalStore.open(config, spec) as store:
        write_events(store, group, event_rows(group, EVENTS))
        write_states(store, group, event_rows(group, online_events), T0 + 40 * HOUR)
    return _profiles_then_checked(config, spec, profiles)


def _profiles_then_checked(  # type: ignore[no-untyped-def]
    config, spec, profiles: tuple[str, ...] = ("c1", "c2", "c3")
):
    """The profiles written, the code generated, the skew check run on the store."""
    with LocalStore.open(config, spec) as store:
        store.put_records(
            "profile",
            [{"customer_id": c, "updated_at": iso(T0), "tenure": 4} for c in profiles],
        )
    generate(config, spec)
    with LocalStore.open(config, spec) as store:
        store.adopt(state_runtime(spec.group("purchases")), online=True, offline=False)
        return skew_check(config, spec, "shop", sample=12, seed=3, store=store)


def test_training_equals_serving_for_aggregation_features(
    make_project: Callable[..., Path],
) -> None:
    report = _checked(make_project, EVENTS)
    assert report.ok, report.render()
    assert report.rows == 3  # c1, c2 and c3, each once
    assert "avg_purchase_value_7d" in report.columns


def test_a_skewed_online_state_fails_the_check(make_project: Callable[..., Path]) -> None:
    """The online state of c1 misses its 02:00 purchase (as a stream that lost it would): the
    check names the windows it changes, and only those."""
    skewed = [e for e in EVENTS if e[2] != 2]
    report = _checked(make_project, skewed)
    assert not report.ok
    failing = {c for c, n in report.by_feature().items() if n}
    # at c1's watermark + 1 µs the 1d window and the last two categories do not reach it
    assert failing == {"avg_purchase_value_7d", "purchase_count_lifetime"}, report.render()
    assert all(m.keys == {"customer_id": "c1"} for m in report.mismatches)
    assert "FAIL avg_purchase_value_7d" in report.render()


def test_an_entity_only_the_aggregation_group_holds_is_checked_too(
    make_project: Callable[..., Path],
) -> None:
    """The set's two groups share the customer: c3 has purchases (a state) but no profile, as
    a driver seen only on the stream has. Its row is checked all the same, and a skewed state
    of it fails the check (the keys were drawn from the profile group alone)."""
    report = _checked(make_project, EVENTS, profiles=("c1", "c2"))
    assert report.ok, report.render()
    assert report.rows == 3
    extra = ("c3", T0 + 3.5 * HOUR, 8, {"amount": 1.0, "category": "toys"})
    skewed = [*EVENTS, extra]  # online holds a purchase of c3 the history lacks
    report = _checked(make_project, skewed, profiles=("c1", "c2"))
    assert {m.keys["customer_id"] for m in report.mismatches} == {"c3"}, report.render()


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.integers(1, 5), st.sampled_from(["c1", "c2", "c3"]))
def test_a_state_missing_the_newest_events_of_the_history_fails_the_check(
    make_project: Callable[..., Path], count: int, customer: str
) -> None:
    """The history holds events newer than an entity's online state (its state did not fit a
    record at ingestion, or a write of it failed): serving misses them at any time after
    them. Compared at the state's own watermark, where the training set does not reach them
    either, the check could not tell; it compares after the entity's newest offline event."""
    newest = max(e[1] for e in EVENTS if e[0] == customer)
    later = [
        (customer, newest + (i + 1) * 60, 100 + i, {"amount": 1.5 + i, "category": "toys"})
        for i in range(count)
    ]
    config, spec = make(make_project)
    group = spec.group("purchases")
    with LocalStore.open(config, spec) as store:
        write_events(store, group, event_rows(group, [*EVENTS, *later]))
        write_states(store, group, event_rows(group, EVENTS), T0 + 40 * HOUR)
    report = _profiles_then_checked(config, spec)
    assert not report.ok
    assert {m.keys["customer_id"] for m in report.mismatches} == {customer}, report.render()
    assert report.by_feature()["purchase_count_lifetime"] == 1


def test_an_unreadable_state_is_a_finding_and_the_rest_is_still_checked(
    make_project: Callable[..., Path],
) -> None:
    """c1's state String is corrupted in the online store, c2's was built for another
    definition: each is reported (identifier, state feature, why) and the other entities are
    still compared; the CLI lists them and exits 1, in text and in --json."""
    import json

    from click.testing import CliRunner

    from fsgen.cli import main

    config, spec = make(make_project)
    group = spec.group("purchases")
    rows = event_rows(group, EVENTS)
    with LocalStore.open(config, spec) as store:
        write_events(store, group, rows)
        states = write_states(store, group, rows, T0 + 40 * HOUR)
        other = json.loads(states["c2"]["purchase_count__state"])
        other[1] = "0" * len(str(other[1]))
        store.put_records(
            "purchases",
            [
                {
                    "customer_id": "c1",
                    "purchased_at": iso(T0 + 41 * HOUR),
                    **states["c1"],
                    "max_purchase__state": '[3,"abc",12',
                },
                {
                    "customer_id": "c2",
                    "purchased_at": iso(T0 + 41 * HOUR),
                    **states["c2"],
                    "purchase_count__state": json.dumps(other, separators=(",", ":")),
                },
            ],
        )
    report = _profiles_then_checked(config, spec)
    assert not report.ok
    assert report.rows == 1  # c3, the only row whose states can be read
    assert not report.mismatches, report.render()
    found = [(u.group, u.record_id, u.feature) for u in report.unreadable]
    assert found == [
        ("purchases", "c1", "max_purchase__state"),
        ("purchases", "c2", "purchase_count__state"),
    ]
    assert "is not readable" in report.unreadable[0].reason
    assert "built for another definition" in report.unreadable[1].reason
    text = report.render()
    assert "UNREADABLE purchases 'c1' max_purchase__state: state of 'max_purchase'" in text
    assert "2 unreadable online states" in text.splitlines()[-1], text

    runner = CliRunner()
    base = ["--project", str(config.root)]
    assert runner.invoke(main, [*base, "apply", "--auto-approve"]).exit_code == 0
    result = runner.invoke(main, [*base, "skew-check", "shop"])
    assert result.exit_code == 1, result.output
    assert "UNREADABLE purchases 'c2' purchase_count__state" in result.output
    assert "Traceback" not in result.output and "error:" not in result.output
    result = runner.invoke(main, [*base, "skew-check", "shop", "--json"])
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert [u["record_id"] for u in body["unreadable"]] == ["c1", "c2"]
    assert body["rows"] == 1 and body["ok"] is False
