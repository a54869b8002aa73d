"""A misspelt keyword of the authoring API."""

from fsgen import FeatureSet
from refdefs.groups import weight_kg

typo = FeatureSet("typo", [weight_kg], description="A typo", owners="ops")
