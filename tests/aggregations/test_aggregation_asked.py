"""Only what is asked is read: ``finalize_record(features=...)`` decodes only the states of the
aggregations named and finalizes only their windows, with a full finalize's values; the
generated parser asks GetRecord for, and reads, only the states its feature set's columns use."""

from __future__ import annotations

import pytest

from fsgen.runtime.aggregate import (
    AggregationDef,
    AggregationError,
    AggregationState,
    encode_states,
    finalize_record,
)

S = 1_000_000
HOUR = 3600 * S


def test_only_the_features_asked_are_decoded_and_finalized() -> None:
    """finalize_record(features=...) answers exactly the full finalize's values of them, and
    does not read the states of the other aggregations (a corrupt one is not noticed)."""
    a = AggregationDef("a", "mean", "Fractional", (HOUR, 24 * HOUR, None), HOUR, HOUR)
    b = AggregationDef("b", "count", "Fractional", (HOUR, 24 * HOUR), HOUR, HOUR)
    sa, sb = AggregationState(a), AggregationState(b)
    for i in range(200):
        for s in (sa, sb):
            s.apply(i * HOUR // 5, i, f"{i:x}", 0.1 * i)
    record = encode_states([sa, sb])
    t = 41 * HOUR
    full = finalize_record([a, b], record, t)
    for asked in (["a_1h"], ["a_lifetime", "b_1d"], ["b_1h", "b_1d"], ["a_1d", "nope"]):
        got = finalize_record([a, b], record, t, asked)
        assert repr(got) == repr({k: v for k, v in full.items() if k in asked})
    broken = {**record, b.state_column: "not a state"}
    assert repr(finalize_record([a, b], broken, t, ["a_1h"])) == repr({"a_1h": full["a_1h"]})
    with pytest.raises(AggregationError, match="state of 'b' is not readable"):
        finalize_record([a, b], broken, t, ["b_1h"])
    # a partial answer cached first is completed, not returned short, on a full read
    fresh = encode_states([sa, sb])
    finalize_record([a, b], fresh, t + 1, ["a_1h"])
    assert repr(finalize_record([a, b], fresh, t + 1)) == repr(full)


def test_the_parser_asks_for_and_reads_only_the_states_its_columns_use() -> None:
    from fsgen.runtime.inference import Column, FeatureSetRuntime, GroupReader

    a = AggregationDef("a", "mean", "Fractional", (HOUR, 24 * HOUR, None), HOUR, HOUR)
    b = AggregationDef("b", "count", "Fractional", (HOUR, 24 * HOUR), HOUR, HOUR)
    c = AggregationDef("c", "last", "Fractional", (HOUR,), HOUR, HOUR)
    reader = GroupReader(
        name="g",
        identifier="k",
        keys=(("k", "k", "str"),),
        event_time="t",
        event_time_kind="String",
        columns=(
            ("k", "String", None),
            ("t", "String", None),
            *tuple((d.state_column, "String", None) for d in (a, b, c)),
        ),
        aggregations=(a, b, c),
    )
    columns = tuple(Column(n, "stored", "g", n) for n in ("b_1d", "a_1h", "a_lifetime"))
    runtime = FeatureSetRuntime("s", columns, (reader,), ())
    assert runtime.feature_names("g") == [a.state_column, b.state_column]
    states = [AggregationState(d) for d in (a, b, c)]
    for i in range(100):
        for s in states:
            s.apply(i * HOUR // 3, i, f"{i:x}", 0.5 * i)
    record = encode_states(states)
    full = finalize_record([a, b, c], record, 40 * HOUR)
    response = {
        "Record": [
            {"FeatureName": a.state_column, "ValueAsString": record[a.state_column]},
            {"FeatureName": b.state_column, "ValueAsString": record[b.state_column]},
            {"FeatureName": c.state_column, "ValueAsString": "corrupt, and not asked for"},
        ]
    }
    vector = runtime.from_get_record({"g": response}, {"k": "x"}, now=40 * 3600.0)
    assert repr(vector) == repr([full["b_1d"], full["a_1h"], full["a_lifetime"]])
