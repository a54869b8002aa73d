"""fsgen: declare each feature once; generate every path that computes or reads it.

This module re-exports the authoring API. The names are resolved lazily, so importing a
submodule (the CLI, the stdlib-only runtime) does not pay for pydantic and friends.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "Entity": "fsgen.authoring",
    "FeatureGroup": "fsgen.authoring",
    "FeatureSet": "fsgen.authoring",
    "Offline": "fsgen.authoring",
    "Online": "fsgen.authoring",
    "Source": "fsgen.authoring",
    "Throughput": "fsgen.authoring",
    "on_demand": "fsgen.authoring",
    "pseudonymize": "fsgen.runtime.pii",
    "DType": "fsgen.types",
    "Fractional": "fsgen.types",
    "Integral": "fsgen.types",
    "List": "fsgen.types",
    "Set": "fsgen.types",
    "String": "fsgen.types",
    "Vector": "fsgen.types",
}

if TYPE_CHECKING:
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
    from fsgen.runtime.pii import pseudonymize
    from fsgen.types import DType, Fractional, Integral, List, Set, String, Vector


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fsgen' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


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
    "pseudonymize",
]
