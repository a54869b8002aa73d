"""The spending model's input contract: a customer's purchase aggregations at each label time."""

from featuredefs.purchases import avg_purchase_value, purchase_count
from fsgen import FeatureSet

spending = FeatureSet(
    "spending",
    [avg_purchase_value, purchase_count],
    description="Spend-propensity model: a customer's purchases over time windows",
    owner="growth-ml",
    label_time="event_time",
)
