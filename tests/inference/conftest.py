"""The inference tests' fixtures (defined in inference_helpers), and isolation: tests here
import other projects' generated packages, so each test restores ``sys.modules`` entries of
the generated package and ``sys.path`` as they were."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from inference_helpers import project

__all__ = ["project"]


@pytest.fixture(autouse=True)
def _restore_generated_modules() -> Iterator[None]:
    path = list(sys.path)
    saved = {
        name: module
        for name, module in sys.modules.items()
        if name == "generated" or name.startswith("generated.")
    }
    yield
    for name in [m for m in sys.modules if m == "generated" or m.startswith("generated.")]:
        del sys.modules[name]
    sys.modules.update(saved)
    sys.path[:] = path
