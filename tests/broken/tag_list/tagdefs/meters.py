"""A feature whose tags are a list of words: SageMaker parameters are key/value pairs."""

from fsgen import Entity, FeatureGroup, Integral, String

meter = Entity("meter_id", String, description="A smart meter")

meter_profile = FeatureGroup(
    "meter-profile", entity=meter, event_time="updated_at", owner="grid", description="Meters"
)


@meter_profile.feature(Integral, description="Capacity in kW", tags=["capacity"])
def capacity_kw(capacity: int) -> int:
    return capacity
