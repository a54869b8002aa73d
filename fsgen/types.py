"""Feature dtypes and every mapping from them, in one table.

A dtype is a frozen value: a scalar (Integral, Fractional, String) or a collection
(List/Set of a scalar, Vector of Fractional with a fixed dimension). Each target system
(SageMaker, Python, DuckDB, Athena/Glue, Arrow) reads its name from here and only here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict


class Scalar(StrEnum):
    INTEGRAL = "Integral"
    FRACTIONAL = "Fractional"
    STRING = "String"


CollectionKind = Literal["List", "Set", "Vector"]

MAX_VECTOR_DIMENSION = 8192

#: scalar -> (python, duckdb, athena, arrow)
_SCALAR_TABLE: dict[Scalar, tuple[str, str, str, str]] = {
    Scalar.INTEGRAL: ("int", "BIGINT", "bigint", "int64"),
    Scalar.FRACTIONAL: ("float", "DOUBLE", "double", "float64"),
    Scalar.STRING: ("str", "VARCHAR", "string", "string"),
}


class DType(BaseModel):
    """A feature's type. ``collection`` is None for scalars."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scalar: Scalar
    collection: CollectionKind | None = None
    dimension: int | None = None

    def __str__(self) -> str:
        if self.collection is None:
            return self.scalar.value
        if self.collection == "Vector":
            return f"Vector({self.dimension})"
        return f"{self.collection}({self.scalar.value})"

    @property
    def is_collection(self) -> bool:
        return self.collection is not None

    def sagemaker_definition(self, name: str) -> dict[str, object]:
        """The FeatureDefinition entry of CreateFeatureGroup for a feature of this type."""
        out: dict[str, object] = {"FeatureName": name, "FeatureType": self.scalar.value}
        if self.collection is not None:
            out["CollectionType"] = self.collection
            if self.collection == "Vector":
                out["CollectionConfig"] = {"VectorConfig": {"Dimension": self.dimension}}
        return out

    @property
    def python_type(self) -> str:
        inner = _SCALAR_TABLE[self.scalar][0]
        return f"list[{inner}]" if self.is_collection else inner

    @property
    def duckdb_type(self) -> str:
        inner = _SCALAR_TABLE[self.scalar][1]
        return f"{inner}[]" if self.is_collection else inner

    @property
    def athena_type(self) -> str:
        inner = _SCALAR_TABLE[self.scalar][2]
        return f"array<{inner}>" if self.is_collection else inner

    @property
    def arrow_type(self) -> str:
        inner = _SCALAR_TABLE[self.scalar][3]
        return f"list<{inner}>" if self.is_collection else inner

    @property
    def glue_type(self) -> str:
        return self.athena_type


Integral = DType(scalar=Scalar.INTEGRAL)
Fractional = DType(scalar=Scalar.FRACTIONAL)
String = DType(scalar=Scalar.STRING)


def List(element: DType) -> DType:
    """An ordered collection of ``element`` values (repeats allowed)."""
    return DType(scalar=_scalar_of(element, "List"), collection="List")


def Set(element: DType) -> DType:
    """An unordered collection of unique ``element`` values."""
    return DType(scalar=_scalar_of(element, "Set"), collection="Set")


def Vector(dimension: int) -> DType:
    """A fixed-size list of Fractional values (embeddings)."""
    if not isinstance(dimension, int) or isinstance(dimension, bool) or dimension < 1:
        raise TypeError(f"Vector dimension must be a positive int, got {dimension!r}")
    return DType(scalar=Scalar.FRACTIONAL, collection="Vector", dimension=dimension)


def _scalar_of(element: DType, what: str) -> Scalar:
    if not isinstance(element, DType) or element.is_collection:
        raise TypeError(f"{what}() takes a scalar dtype (Integral, Fractional, String)")
    return element.scalar


def python_annotation_matches(dtype: DType, annotation: str) -> bool:
    """Does a return annotation (as source text, normalized) fit ``dtype``?

    ``T | None`` is accepted for every dtype: a feature may be missing for a record.
    """
    text = annotation.replace(" ", "")
    for suffix in ("|None",):
        if text.endswith(suffix):
            text = text[: -len(suffix)]
    if text.startswith("None|"):
        text = text[len("None|") :]
    text = text.replace("typing.", "").replace("List[", "list[").replace("Set[", "set[")
    inner = _SCALAR_TABLE[dtype.scalar][0]
    if not dtype.is_collection:
        allowed = {inner}
        if dtype.scalar is Scalar.INTEGRAL:
            allowed.add("bool")
        return text in allowed
    allowed = {f"list[{inner}]"}
    if dtype.collection == "Set":
        allowed |= {f"set[{inner}]", f"frozenset[{inner}]"}
    return text in allowed


__all__ = [
    "MAX_VECTOR_DIMENSION",
    "DType",
    "Fractional",
    "Integral",
    "List",
    "Scalar",
    "Set",
    "String",
    "Vector",
    "python_annotation_matches",
]
