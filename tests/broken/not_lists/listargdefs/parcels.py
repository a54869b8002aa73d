"""An on-demand feature whose sources= is one group instead of a list."""

from fsgen import Entity, FeatureGroup, Fractional, Online, String, on_demand

parcel = Entity("parcel_id", String, description="A parcel")
parcels = FeatureGroup(
    "parcel-features",
    entity=parcel,
    event_time="updated_at",
    owner="ops",
    description="Parcels",
    online=Online(ttl="30d"),
)


@parcels.feature(Fractional, description="Weight in kilograms")
def weight_kg(weight_g: int) -> float:
    return weight_g / 1000.0


@on_demand(Fractional, sources=parcels, description="Price per kilogram")
def price_per_kg(price: float, weight_kg: float) -> float:
    return price / max(weight_kg, 0.001)
