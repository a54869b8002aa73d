"""Card purchases as events: time-window aggregations per customer, from the purchase export
(batch backfill) and the purchase stream."""

from featuredefs.entities import customer
from fsgen import FeatureGroup, Fractional, Integral, Source

purchases = FeatureGroup(
    "purchases",
    entity=customer,
    event_time="purchased_at",
    owner="growth-ml",
    description="Card purchases, one event per purchase; aggregated per customer",
    tags={"domain": "customer"},
    sources=[Source.batch("data/purchases.csv"), Source.kinesis("customer-purchases")],
)


@purchases.aggregation(
    Fractional,
    function="mean",
    windows=["1d", "7d", "30d"],
    hop="1h",
    description="Average purchase value over the window",
)
def avg_purchase_value(amount: float) -> float:
    return amount


@purchases.aggregation(
    Integral,
    function="count",
    windows=["1h", "lifetime"],
    hop="5m",
    lateness="10m",
    description="Purchases over the window (refunds of amount 0 do not count)",
)
def purchase_count(amount: float) -> int | None:
    return 1 if amount > 0 else None
