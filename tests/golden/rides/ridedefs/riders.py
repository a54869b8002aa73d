"""Rider profile and the dispatch model's input contract."""

from fsgen import Entity, FeatureGroup, FeatureSet, Fractional, Integral, Source, String, on_demand

from ridedefs.drivers import acceptance_rate, driver_stats, route_embedding, trips_today

rider = Entity("rider_id", String, description="A person booking rides")

rider_profile = FeatureGroup(
    "rider-profile",
    entity=rider,
    event_time="updated",
    owner="dispatch-ml",
    description="Rider rating and tenure",
    sources=[Source.batch("data/riders.jsonl")],
)


@rider_profile.feature(Fractional, description="Average rating given by drivers")
def rider_rating(rating_sum: float, rating_count: int) -> float:
    return rating_sum / max(rating_count, 1)


@rider_profile.feature(Integral, description="1 for riders with fewer than 3 rides")
def is_new_rider(rides: int) -> int:
    return int(rides < 3)


@on_demand(Fractional, sources=[driver_stats],
           description="Quoted fare scaled down for drivers who accept little")
def adjusted_fare(fare: float, acceptance_rate: float) -> float:
    return fare * (0.5 + acceptance_rate / 2)


dispatch_model = FeatureSet(
    "dispatch-model",
    [trips_today, acceptance_rate, route_embedding, rider_rating, is_new_rider, adjusted_fare],
    description="Ranks drivers for a ride request",
    owner="dispatch-ml",
    keys={driver_stats: ["city", "driver_id"], rider_profile: "rider_id"},
    label_time="requested_at",
    labels=["accepted"],
    missing="error",
)
