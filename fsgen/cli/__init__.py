"""fsgen's command line. Each area's commands live in their own module; importing them here
registers them on :data:`main`."""

from fsgen.cli import dataset as _dataset  # noqa: F401
from fsgen.cli import generate as _generate  # noqa: F401
from fsgen.cli import governance as _governance  # noqa: F401
from fsgen.cli import inference as _inference  # noqa: F401
from fsgen.cli import ingest as _ingest  # noqa: F401
from fsgen.cli import plan as _plan  # noqa: F401
from fsgen.cli import project as _project  # noqa: F401  (registers commands)
from fsgen.cli import store as _store  # noqa: F401
from fsgen.cli import stream as _stream  # noqa: F401
from fsgen.cli._app import main

__all__ = ["main"]
