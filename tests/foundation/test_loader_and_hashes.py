"""Loading is pure and deterministic; the three hashes move only when they should."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fsgen.loader import load
from fsgen.spec import ProjectSpec

REPO = Path(__file__).resolve().parents[2]

BASE = """\
from fsgen import Entity, FeatureGroup, Fractional, Integral, String

SCALE = 2

customer = Entity("customer_id", String, description="c")
g = FeatureGroup("grp", entity=customer, event_time="ts", owner="o", description="d")


def helper(x: float) -> float:
    return x * SCALE


@g.feature(Fractional, description="scaled spend")
def spend(total: float) -> float:
    return helper(total)


@g.feature(Integral, description="big spender")
def big(spend: float) -> int:
    return int(spend > 100)
"""


def load_src(make_project: Callable[..., Path], src: str) -> ProjectSpec:
    return load(make_project({"featuredefs/defs.py": src}))


def test_example_project_loads_and_two_loads_are_equal() -> None:
    first = load(REPO)
    second = load(REPO)
    assert first == second
    assert first.summary() == (
        "3 feature groups, 13 features (5 from 2 aggregations), 2 feature sets"
    )
    merchant = first.group("merchant-features")
    assert merchant.compute_order.index("chargeback_rate") < merchant.compute_order.index(
        "is_high_risk"
    )
    assert first.feature_set("fraud-model").keys == {
        "customer-features": ("customer_id",),
        "merchant-features": ("merchant_id",),
    }


def test_a_changed_file_is_seen_on_the_next_load(make_project: Callable[..., Path]) -> None:
    root = make_project({"featuredefs/defs.py": BASE})
    before = load(root).group("grp")
    (root / "featuredefs/defs.py").write_text(BASE.replace("x * SCALE", "x * SCALE + 1"))
    after = load(root).group("grp")
    assert before.logic_hash != after.logic_hash


def test_comments_docstrings_and_formatting_do_not_change_logic(
    make_project: Callable[..., Path],
) -> None:
    base = load_src(make_project, BASE).group("grp")
    cosmetic = BASE.replace(
        "    return helper(total)",
        '    """Docstring."""\n    # a comment\n    return helper(\n        total,\n    )',
    )
    edited = load_src(make_project, cosmetic).group("grp")
    assert edited.feature("spend").logic_hash == base.feature("spend").logic_hash
    assert (edited.schema_hash, edited.logic_hash, edited.metadata_hash) == (
        base.schema_hash,
        base.logic_hash,
        base.metadata_hash,
    )


def test_moving_code_changes_location_not_hashes(make_project: Callable[..., Path]) -> None:
    base = load_src(make_project, BASE).group("grp")
    moved = load_src(make_project, "# moved down\n\n\n" + BASE).group("grp")
    assert moved.feature("spend").location.line == base.feature("spend").location.line + 3
    assert (moved.schema_hash, moved.logic_hash, moved.metadata_hash) == (
        base.schema_hash,
        base.logic_hash,
        base.metadata_hash,
    )


def test_logic_changes_propagate_through_helpers_constants_and_dependencies(
    make_project: Callable[..., Path],
) -> None:
    base = load_src(make_project, BASE).group("grp")
    for edit in (
        ("x * SCALE", "x * SCALE * 1.5"),
        ("SCALE = 2", "SCALE = 3"),
        ("return helper(total)", "return helper(total) + 1"),
    ):
        changed = load_src(make_project, BASE.replace(*edit)).group("grp")
        assert changed.feature("spend").logic_hash != base.feature("spend").logic_hash, edit
        # 'big' depends on 'spend', so its logic hash moves too
        assert changed.feature("big").logic_hash != base.feature("big").logic_hash, edit
        assert changed.schema_hash == base.schema_hash
        assert changed.metadata_hash == base.metadata_hash


def test_metadata_edit_is_not_a_schema_or_logic_change(make_project: Callable[..., Path]) -> None:
    base = load_src(make_project, BASE).group("grp")
    edited = load_src(make_project, BASE.replace("big spender", "spends a lot")).group("grp")
    assert edited.metadata_hash != base.metadata_hash
    assert (edited.schema_hash, edited.logic_hash) == (base.schema_hash, base.logic_hash)


def test_type_change_is_a_schema_change(make_project: Callable[..., Path]) -> None:
    base = load_src(make_project, BASE).group("grp")
    edited = load_src(
        make_project,
        BASE.replace(
            '@g.feature(Integral, description="big spender")\ndef big(spend: float) -> int:',
            '@g.feature(Fractional, description="big spender")\ndef big(spend: float) -> float:',
        ),
    ).group("grp")
    assert edited.schema_hash != base.schema_hash


def test_inputs_are_classified(make_project: Callable[..., Path]) -> None:
    spec = load_src(
        make_project,
        BASE
        + """

@g.feature(String, description="pass-through of the raw field")
def tier(tier: str | None, customer_id: str, ts: str) -> str:
    return tier or customer_id
""",
    )
    group = spec.group("grp")
    kinds = {i.name: i.kind for i in group.feature("tier").inputs}
    assert kinds == {"tier": "raw", "customer_id": "key", "ts": "event_time"}
    assert [i.kind for i in group.feature("big").inputs] == ["feature"]
    raw = {r.name: (r.type, r.optional) for r in group.raw_fields}
    assert raw == {
        "customer_id": ("str", False),
        "ts": ("str", False),
        "tier": ("str", True),
        "total": ("float", False),
    }


def test_composite_entity_gets_a_lossless_identifier(make_project: Callable[..., Path]) -> None:
    spec = load_src(
        make_project,
        """
from fsgen import Entity, FeatureGroup, Integral, String

item = Entity(keys={"store_id": Integral, "sku": String}, name="store_item")
g = FeatureGroup("stock", entity=item, event_time="ts", owner="o", description="d")

@g.feature(Integral, description="units")
def units(units: int) -> int:
    return units
""",
    )
    group = spec.group("stock")
    assert group.identifier == "store_item_key"
    assert [c for c, _ in group.stored_columns()] == [
        "store_item_key",
        "store_id",
        "sku",
        "ts",
        "units",
    ]


def test_an_edit_within_the_same_second_and_size_is_seen(
    make_project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as on a machine that caches .pyc
    root = make_project({"featuredefs/defs.py": BASE})
    path = root / "featuredefs/defs.py"
    stat = path.stat()
    before = load(root).group("grp")
    edited = BASE.replace("SCALE = 2", "SCALE = 3")
    assert len(edited) == len(BASE)
    path.write_text(edited)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime, same size
    assert load(root).group("grp").logic_hash != before.logic_hash
