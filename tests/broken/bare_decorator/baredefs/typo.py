"""A misspelt decorator of a group."""

from fsgen import Entity, FeatureGroup, Integral, String

depot = Entity("depot_code", String, description="A depot")
depots = FeatureGroup("depots", entity=depot, event_time="as_of", owner="ops", description="D")


@depots.featur(Integral, description="Parcels waiting")
def queue(queue: int) -> int:
    return queue
