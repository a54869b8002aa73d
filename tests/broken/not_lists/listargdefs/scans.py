"""windows= given one window as a string (it would iterate as '1', 'h')."""

from fsgen import Entity, FeatureGroup, Integral, String

parcel = Entity("parcel_id", String, description="A parcel")
scans = FeatureGroup(
    "parcel-scans", entity=parcel, event_time="scanned_at", owner="ops", description="Scans"
)


@scans.aggregation(Integral, function="count", windows="1h", hop="5m", description="Scans")
def scan_count(depot_id: int) -> int:
    return 1
