"""Aggregation features beside row features: what a shop's model reads about a customer."""

from fsgen import Entity, FeatureGroup, FeatureSet, Fractional, Integral, List, String

customer = Entity("customer_id", String, description="A shopper")

orders = FeatureGroup(
    "orders",
    entity=customer,
    event_time="ordered_at",
    owner="growth-ml",
    description="Order events",
)
profile = FeatureGroup(
    "profile",
    entity=customer,
    event_time="updated_at",
    owner="growth-ml",
    description="Customer profile",
)


@profile.feature(Integral, description="Months since sign-up")
def tenure_months(months: int) -> int:
    return months


@orders.aggregation(
    Fractional,
    function="mean",
    windows=["1d", "7d", "30d"],
    hop="1h",
    description="Average order value",
)
def avg_order_value(amount: float) -> float:
    return amount


@orders.aggregation(
    Integral, function="count", windows=["1h", "lifetime"], hop="5m", lateness="10m",
    description="Orders",
)
def order_count(amount: float) -> int | None:
    return 1 if amount > 0 else None


@orders.aggregation(
    List(String), function="last_n", n=3, distinct=True, windows=["7d"], hop="1d",
    lateness="0s", description="Latest distinct categories",
)
def recent_categories(category: str) -> str:
    return category


churn = FeatureSet(
    "churn",
    [tenure_months, avg_order_value, "order_count_1h", recent_categories],
    label_time="label_time",
    owner="growth-ml",
    description="Churn model inputs",
)
