"""Order totals per shop."""

from fsgen import Entity, FeatureGroup, FeatureSet, Fractional, Integral, Online, String

shop = Entity("shop_id", String, description="A shop on the marketplace")

shop_orders = FeatureGroup(
    "shop-orders",
    entity=shop,
    event_time="as_of",
    online=Online(ttl="2d"),
    owner="marketplace-ml",
    description="Daily order totals per shop",
    max_staleness="2d",
)


@shop_orders.feature(Integral, description="Orders placed that day")
def orders(order_count: int) -> int:
    return max(order_count, 0)


@shop_orders.feature(Fractional, description="Average order value that day")
def avg_order_value(revenue: float, order_count: int) -> float:
    return revenue / max(order_count, 1)


ranking = FeatureSet(
    "shop-ranking",
    [orders, avg_order_value],
    description="Ranks shops in search",
    owner="marketplace-ml",
)
