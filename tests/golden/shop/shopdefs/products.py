"""Product statistics, refreshed hourly from the catalog service."""

from fsgen import Entity, FeatureGroup, FeatureSet, Fractional, Integral, Online, Source, String

product = Entity("product_id", Integral, description="A product in the catalog")

product_stats = FeatureGroup(
    "product-stats",
    entity=product,
    event_time="observed_at",
    online=Online(ttl="1d"),
    owner="catalog-ml",
    description="Price band, rating and reviews per product",
    tags={"domain": "catalog"},
    sources=[Source.batch("data/products.csv")],
)

PRICE_BANDS = ((10.0, "low"), (100.0, "mid"))


@product_stats.feature(String, description="Price band: low, mid or high")
def price_band(price: float) -> str:
    for limit, band in PRICE_BANDS:
        if price < limit:
            return band
    return "high"


@product_stats.feature(Integral, description="Number of published reviews")
def review_count(review_count: int) -> int:
    return max(review_count, 0)


@product_stats.feature(Fractional, description="Average star rating, 0 without reviews",
                       tags={"unit": "stars"})
def rating(star_total: int, review_count: int) -> float:
    return star_total / review_count if review_count else 0.0


ranking_model = FeatureSet(
    "ranking-model",
    [rating, review_count, price_band],
    description="Orders search results",
    owner="search-ml",
    label_time="event_time",
    labels=["clicked"],
    missing="null",
)
