"""fsgen: declare each feature once; generate every path that computes or reads it.

This module re-exports the authoring API only; importing it stays cheap (no pandas, duckdb or
boto3).
"""

from fsgen.authoring import (
    Entity,
    FeatureGroup,
    FeatureSet,
    Offline,
    Online,
    Source,
    Throughput,
    on_demand,
)
from fsgen.types import DType, Fractional, Integral, List, Set, String, Vector

__version__ = "0.1.0"

__all__ = [
    "DType",
    "Entity",
    "FeatureGroup",
    "FeatureSet",
    "Fractional",
    "Integral",
    "List",
    "Offline",
    "Online",
    "Set",
    "Source",
    "String",
    "Throughput",
    "Vector",
    "__version__",
    "on_demand",
]
