"""A misspelt feature name and a group given by its name."""

from fsgen import FeatureSet

named = FeatureSet(
    "named", ["wieght_kg", "parcel-scans"], description="Names as strings", owner="ops"
)
