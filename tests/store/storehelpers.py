"""Helpers shared by the store tests (imported as a plain module: tests have no packages)."""

from __future__ import annotations

import textwrap
from pathlib import Path

DEFS = '''
"""Definitions used by the store tests."""

from fsgen import Entity, FeatureGroup, Fractional, Integral, List, Online, String

user = Entity("user_id", String, description="A user")
item = Entity(keys={"store_id": Integral, "sku": String}, name="store_item",
              description="A stocked item")

user_events = FeatureGroup(
    "user-events", entity=user, event_time="ts", online=Online(ttl="1d", storage="InMemory"),
    owner="store-tests", description="Every value kind",
)


@user_events.feature(Fractional, description="Amount per count")
def score(amount: float, count: int) -> float:
    return amount / count


@user_events.feature(Integral, description="Count doubled")
def double_count(count: int) -> int:
    return count * 2


@user_events.feature(String, description="Normalized name")
def label(name: str) -> str:
    return name.strip().lower()


@user_events.feature(List(String), description="Tags split on |")
def tag_list(tags: str) -> list[str]:
    return [t for t in tags.split("|") if t]


@user_events.feature(Fractional, description="Amount, missing when negative")
def positive_amount(amount: float) -> float | None:
    return None if amount < 0 else amount


item_stock = FeatureGroup(
    "item-stock", entity=item, event_time="at", event_time_type=Fractional,
    online=Online(ttl="1h"), owner="store-tests", description="Composite key",
)


@item_stock.feature(Integral, description="Units on hand")
def units_on_hand(units: int) -> int:
    return units
'''


def make_project(root: Path, package: str = "storetestdefs", table_format: str = "Glue") -> Path:
    """The store tests' project; ``table_format="Iceberg"`` declares both groups'
    offline stores as Iceberg tables (everything else equal)."""
    defs = textwrap.dedent(DEFS)
    if table_format != "Glue":
        defs = defs.replace(
            'owner="store-tests"',
            f'offline=Offline(table_format="{table_format}"), owner="store-tests"',
        ).replace("List, Online,", "List, Offline, Online,")
    (root / package).mkdir(parents=True)
    (root / package / "__init__.py").write_text('"""Store test definitions."""\n')
    (root / package / "groups.py").write_text(defs)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "storetest"\nversion = "0"\n\n[tool.fsgen]\ndefinitions = "{package}"\n'
    )
    return root


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def user_row(
    uid: str,
    ts: str,
    amount: object = 10.0,
    count: object = 2,
    name: object = "Ann",
    tags: object = "a|b",
) -> dict[str, object]:
    return {"user_id": uid, "ts": ts, "amount": amount, "count": count, "name": name, "tags": tags}
