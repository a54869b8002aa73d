"""A feature set's own TTL holds at serving time exactly as in its training datasets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fsgen.codegen.views import feature_set_view
from fsgen.loader import load
from fsgen.runtime.inference import Column, FeatureSetRuntime, GroupReader

DAY = 86_400
EVENT = 1_700_000_000.0


def runtime(max_age: int | None) -> FeatureSetRuntime:
    reader = GroupReader(
        name="g",
        identifier="id",
        keys=(("id", "id", "str"),),
        event_time="ts",
        event_time_kind="Fractional",
        columns=(("id", "String", None), ("ts", "Fractional", None), ("x", "Integral", None)),
        ttl_seconds=30 * DAY,
        max_age_seconds=max_age,
    )
    return FeatureSetRuntime(
        name="s",
        columns=(Column(name="x", kind="stored", group="g", feature="x"),),
        groups=(reader,),
        on_demand=(),
        missing="null",
    )


RECORD = [
    {"FeatureName": "id", "ValueAsString": "a"},
    {"FeatureName": "ts", "ValueAsString": repr(EVENT)},
    {"FeatureName": "x", "ValueAsString": "7"},
]


def test_feature_set_ttl_applies_even_when_expires_at_is_later() -> None:
    rt = runtime(max_age=3600)
    expires = EVENT + 30 * DAY
    assert rt.decode("g", RECORD, expires, now=EVENT + 3600) is not None  # exactly TTL old
    assert rt.decode("g", RECORD, expires, now=EVENT + 3601) is None
    assert rt.decode("g", RECORD, None, now=EVENT + 3601) is None


def test_without_feature_set_ttl_the_group_ttl_and_expires_at_rule() -> None:
    rt = runtime(max_age=None)
    assert rt.decode("g", RECORD, None, now=EVENT + 30 * DAY) is not None
    assert rt.decode("g", RECORD, None, now=EVENT + 30 * DAY + 1) is None
    assert rt.decode("g", RECORD, EVENT + 10, now=EVENT + 11) is None


def test_generated_parser_carries_the_feature_set_ttl(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "featuredefs/defs.py": """
        from fsgen import Entity, FeatureGroup, FeatureSet, Integral, Online, String

        e = Entity("id", String)
        g = FeatureGroup("g", entity=e, event_time="ts", online=Online(ttl="30d"), owner="o",
                         description="d")

        @g.feature(Integral, description="x")
        def x(x: int) -> int:
            return x

        short = FeatureSet("short", [x], ttl="1h")
        plain = FeatureSet("plain", [x])
        """
        }
    )
    spec = load(root)
    assert "max_age_seconds=3600" in feature_set_view(spec, spec.feature_set("short")).runtime
    assert "max_age_seconds" not in feature_set_view(spec, spec.feature_set("plain")).runtime
