"""A dtype given as a Python type (``float`` for Fractional) used to raise at import, hiding
every other error of this file; now each is reported with its line."""

from fsgen import Entity, FeatureGroup, FeatureSet, Integral, String, on_demand

rider = Entity("rider_id", String, description="A rider")

trips = FeatureGroup(
    "trip-features", entity=rider, event_time="ts", owner="mobility", description="Trips"
)


@trips.feature(float, description="Average fare")
def avg_fare(total_fare: float, trip_count: int) -> float:
    return total_fare / max(trip_count, 1)


@trips.feature(Integral, description="Trips taken", tags=["volume"])
def trips_taken(trip_count: int) -> int:
    return trip_count


@trips.feature(Integral, description="Fare per trip, doubled")
def doubled_fare(avg_fare: float, surge) -> float:
    return avg_fare * 2


@on_demand(str, sources=[trips], description="Fare band of the request")
def fare_band(avg_fare: float, requested_km: float) -> str:
    return "high" if avg_fare * requested_km > 100 else "low"


trip_model = FeatureSet(
    "trip-model", [avg_fare, trips_taken, fare_band], owner="mobility", description="Trips"
)
