"""Inert stand-ins for fsgen's authoring API, used only inside a Lambda deployment package.

The definitions package (``featuredefs/``) says ``from fsgen import FeatureGroup, Integral...``
and runs its declarations at import time. The real authoring API builds validated objects
with pydantic, which a Lambda with only boto3 does not have, and the stream handler does not
need: it needs the feature *functions*, which the decorators return unchanged (the authoring
contract). ``fsgen package lambda`` therefore ships an ``fsgen/__init__.py`` that exports the
names below instead. Every declaration accepts what the real one accepts and keeps it; every
decorator returns the very function it was given, so ``featuredefs.customer.age`` is the same
code in a Lambda as in the batch job. The group's schema itself comes from the generated
``RUNTIME`` literal, never from these objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])


class _Declaration:
    """Keeps its arguments; nothing else happens at runtime."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.args = args
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return f"{type(self).__name__}(inert)"


class DType(_Declaration):
    pass


Integral = DType("Integral")
Fractional = DType("Fractional")
String = DType("String")


def List(element: object) -> DType:
    return DType("List", element)


def Set(element: object) -> DType:
    return DType("Set", element)


def Vector(dimension: int) -> DType:
    return DType("Vector", dimension)


class Entity(_Declaration):
    pass


class Online(_Declaration):
    pass


class Offline(_Declaration):
    pass


class Throughput(_Declaration):
    pass


class FeatureSet(_Declaration):
    pass


class Source(_Declaration):
    @classmethod
    def batch(cls, *args: object, **kwargs: object) -> Source:
        return cls("batch", *args, **kwargs)

    @classmethod
    def kinesis(cls, *args: object, **kwargs: object) -> Source:
        return cls("kinesis", *args, **kwargs)


def _identity(fn: F) -> F:
    return fn


class FeatureGroup(_Declaration):
    def feature(self, *args: object, **kwargs: object) -> Callable[[F], F]:
        """The decorator returns the function itself, exactly as the real one does."""
        return _identity

    def aggregation(self, *args: object, **kwargs: object) -> Callable[[F], F]:
        """As ``feature``: an aggregation's function is returned as it is."""
        return _identity


def on_demand(*args: object, **kwargs: object) -> Callable[[F], F]:
    return _identity


LAMBDA_INIT = '''"""fsgen inside a Lambda deployment package: the standard-library runtime only.

The authoring names resolve to inert stand-ins (fsgen.runtime.declarations), so the
definitions package imports without pydantic; feature functions are returned unchanged.
"""

from fsgen.runtime.declarations import (
    DType,
    Entity,
    FeatureGroup,
    FeatureSet,
    Fractional,
    Integral,
    List,
    Offline,
    Online,
    Set,
    Source,
    String,
    Throughput,
    Vector,
    on_demand,
)
from fsgen.runtime.pii import pseudonymize

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
    "on_demand",
    "pseudonymize",
]
'''
"""The ``fsgen/__init__.py`` a Lambda package ships."""
