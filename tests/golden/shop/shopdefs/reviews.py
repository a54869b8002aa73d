"""Review activity per product, kept offline as an Iceberg table."""

from fsgen import Entity, FeatureGroup, Integral, Offline, Online, String

reviewed_product = Entity("sku", String, description="A product's stock-keeping unit")

review_activity = FeatureGroup(
    "review-activity",
    entity=reviewed_product,
    event_time="reviewed_at",
    online=Online(ttl="7d"),
    offline=Offline(table_format="Iceberg"),
    owner="catalog-ml",
    description="Reviews written per product, day by day",
)


@review_activity.feature(Integral, description="Reviews written that day")
def reviews_written(reviews: int) -> int:
    return max(reviews, 0)


@review_activity.feature(String, description="Language of the latest review")
def latest_language(language: str) -> str:
    return language.strip().lower()
