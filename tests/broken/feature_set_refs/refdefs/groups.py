"""A parcel group and a scan-aggregation group."""

from fsgen import Entity, FeatureGroup, Fractional, Integral, String

parcel = Entity("parcel_id", String, description="A parcel")

parcels = FeatureGroup(
    "parcel-features", entity=parcel, event_time="updated_at", owner="ops", description="Parcels"
)
scans = FeatureGroup(
    "parcel-scans", entity=parcel, event_time="scanned_at", owner="ops", description="Scans"
)


@parcels.feature(Fractional, description="Weight in kilograms")
def weight_kg(weight_g: int) -> float:
    return weight_g / 1000.0


@scans.aggregation(Integral, function="count", windows=["1h"], hop="5m", description="Scans")
def scan_count(depot_id: int) -> int:
    return 1
