"""keys= given as a list of columns instead of a mapping of group to column(s)."""

from fsgen import FeatureSet
from refdefs.groups import weight_kg

keyed = FeatureSet(
    "keyed", [weight_kg], keys=["parcel_id"], description="Keys as a list", owner="ops"
)
