"""Importing this project's generated modules (``<generated>/groups/<g>/runtime.py``, stream
handlers, feature-set parsers and handlers) by their package name, safely.

The generated package is a top-level package named after ``generated_dir`` (``generated``
by default), so two projects loaded in one interpreter (tests, a notebook with two
checkouts) would share one ``sys.modules`` entry. :func:`import_generated` puts this project's
root first on ``sys.path`` and forgets another project's generated package before importing,
so the import cannot pick up, or fail to find, the other project's code.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

from fsgen.config import ProjectConfig


def generated_module_name(config: ProjectConfig, module: str) -> str:
    """``<generated package>.<module>``, e.g. ``generated.groups.x.runtime``."""
    return f"{config.generated_dir.strip('/').replace('/', '.')}.{module}"


def import_generated(config: ProjectConfig, module: str) -> ModuleType:
    """``<generated package>.<module>`` of this project, e.g. ``groups.x.stream_handler``.

    Raises ImportError when the module does not exist (not generated yet).
    """
    name = generated_module_name(config, module)
    top = name.split(".", 1)[0]
    root = str(config.root)
    if root in sys.path:
        sys.path.remove(root)
    sys.path.insert(0, root)
    package = sys.modules.get(top)
    expected = [(config.root / top).resolve()]
    if (
        package is not None
        and [Path(p).resolve() for p in getattr(package, "__path__", [])] != expected
    ):
        for loaded in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
            del sys.modules[loaded]
    importlib.invalidate_caches()
    return importlib.import_module(name)


STALE_IMPORT = (ImportError, AttributeError)
"""what importing a generated module raises when it exists but names definitions that are gone
(a function renamed or removed since ``fsgen generate``), besides :func:`missing`'s case"""


def missing(exc: ImportError, name: str) -> bool:
    """Whether ``exc`` (from importing the generated module ``name``) says that module, or a
    package above it, does not exist: not generated yet. Otherwise the module exists and
    imports something that does not (a stale module)."""
    gone = exc.name if isinstance(exc, ModuleNotFoundError) else None
    return gone is not None and (name == gone or name.startswith(gone + "."))
