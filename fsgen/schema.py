"""The pydantic input model of a feature group: the raw record contract, as data.

The model is what documentation, ``--json`` schema export and the catalog show. The runtime's
stdlib validator (:func:`fsgen.runtime.pipeline.coerce`) enforces the same contract without
pydantic, so it can run inside a Lambda; ``tests/foundation/test_schema_parity.py`` proves the
two accept the same values and produce the same results.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints, create_model

from fsgen.spec import GroupSpec, OnDemandSpec, RawField


def _json_array(value: object) -> object:
    """A collection given as text is a JSON array (how a CSV cell holds one)."""
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        return decoded if isinstance(decoded, list) else value
    return value


def _no_bool(value: object) -> object:
    """A boolean is no number (pydantic's lax mode reads True as 1)."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


_JSON_TEXT = BeforeValidator(_json_array)
_NO_BOOL = BeforeValidator(_no_bool)
_INT = Annotated[int, _NO_BOOL]
_FLOAT = Annotated[float, _NO_BOOL]
_PY_TYPES: dict[str, Any] = {
    "int": _INT,
    "float": _FLOAT,
    "str": str,
    "bool": bool,
    "list[int]": Annotated[list[_INT], _JSON_TEXT],
    "list[float]": Annotated[list[_FLOAT], _JSON_TEXT],
    "list[str]": Annotated[list[str], _JSON_TEXT],
}


class RawRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, frozen=True)


def field_type(raw: RawField) -> Any:
    base = _PY_TYPES[raw.type]
    if raw.optional:
        return base | None
    if raw.type == "str":  # empty text is a missing value (a CSV cell cannot tell them apart)
        return Annotated[str, StringConstraints(min_length=1)]
    return base


def input_model(group: GroupSpec) -> type[BaseModel]:
    """``<Group>Input``: one field per raw input (keys and event time included)."""
    return _model(group.name, group.raw_fields)


def request_model(od: OnDemandSpec) -> type[BaseModel]:
    return _model(od.name, od.request_fields)


def _model(name: str, fields: tuple[RawField, ...]) -> type[BaseModel]:
    definitions: dict[str, Any] = {
        f.name: (field_type(f), None if f.optional else ...) for f in fields
    }
    class_name = "".join(part.capitalize() for part in name.replace("-", "_").split("_"))
    return create_model(f"{class_name}Input", __base__=RawRecord, **definitions)


def json_schema(group: GroupSpec) -> dict[str, Any]:
    return input_model(group).model_json_schema()
