"""Parcels: ``@parcels.feature`` without its dtype (the function became the dtype)."""

from fsgen import Entity, FeatureGroup, Integral, String

parcel = Entity("parcel_id", String, description="A parcel")

parcels = FeatureGroup(
    "parcel-features", entity=parcel, event_time="updated_at", owner="ops", description="Parcels"
)


@parcels.feature(Integral, description="Weight in grams")
def weight_g(weight_g: int) -> int:
    return weight_g


@parcels.feature
def volume_cm3(volume_cm3: int) -> int:
    return volume_cm3
