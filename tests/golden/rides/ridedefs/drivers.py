"""Driver activity per city, streamed from the trip service."""

from fsgen import Entity, FeatureGroup, Fractional, Integral, Online, Source, String, Vector
from fsgen.types import List

driver_city = Entity(keys={"city": String, "driver_id": Integral}, name="driver_city",
                     description="A driver operating in one city")

driver_stats = FeatureGroup(
    "driver-city-stats",
    entity=driver_city,
    event_time="ts",
    event_time_type=Fractional,
    online=Online(ttl="6h", storage="InMemory"),
    owner="dispatch-ml",
    description="Trips, acceptance and route embedding per driver and city",
    sources=[Source.kinesis("driver-events", region="eu-central-1")],
)


@driver_stats.feature(Integral, description="Completed trips today")
def trips_today(completed: int) -> int:
    return completed


@driver_stats.feature(Fractional, description="Share of offered trips accepted")
def acceptance_rate(accepted: int, offered: int) -> float:
    return accepted / offered if offered else 0.0


@driver_stats.feature(Vector(4), description="Embedding of the driver's recent routes")
def route_embedding(route_vector: list[float]) -> list[float]:
    return [round(x, 6) for x in route_vector]


@driver_stats.feature(List(String), description="Zones visited today, in order",
                      pii="pseudonymous")
def zones_today(zones: list[str]) -> list[str]:
    return [z.upper() for z in zones]
