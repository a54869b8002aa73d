"""Imports the broken module: its failure is the same problem, reported once."""

from baredefs.parcels import weight_g
from fsgen import FeatureSet

delay_model = FeatureSet("delay-model", [weight_g], description="Delays", owner="ops")
