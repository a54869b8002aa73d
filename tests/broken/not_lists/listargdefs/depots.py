"""sources= given one Source instead of a list."""

from fsgen import Entity, FeatureGroup, Integral, Source

depot = Entity("depot_id", Integral, description="A depot")

depots = FeatureGroup(
    "depot-features",
    entity=depot,
    event_time="as_of",
    owner="ops",
    description="Depots",
    sources=Source.batch("data/depots.parquet"),
)
