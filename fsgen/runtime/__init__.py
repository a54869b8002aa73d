"""The small, standard-library-only runtime that generated artifacts import.

It must stay importable in an AWS Lambda with nothing but boto3 installed: no pydantic, no
pandas, no duckdb, and nothing from fsgen outside this package.
"""

from fsgen.runtime.encoding import (
    decode_value,
    encode_value,
    format_event_time,
    parse_event_time,
)
from fsgen.runtime.pipeline import (
    FeatureDef,
    FieldDef,
    GroupRuntime,
    RecordError,
    TransformError,
)

__all__ = [
    "FeatureDef",
    "FieldDef",
    "GroupRuntime",
    "RecordError",
    "TransformError",
    "decode_value",
    "encode_value",
    "format_event_time",
    "parse_event_time",
]
