"""Turn the authoring objects a definitions package declares into a frozen ProjectSpec.

:class:`SpecBuilder` is the second half of :func:`fsgen.loader.check`: the loader imports the
package and collects its :class:`Declarations`; the builder normalizes them into spec objects
(source locations relative to the project root, raw-field types, dependency order, the three
hashes), collecting structural problems (unknown inputs, cycles, duplicates) as diagnostics
instead of raising. Rule checks live in :mod:`fsgen.validate`.

Parts: ``base`` (declarations, locations, diagnostics, annotations), ``inputs`` (parameters ->
raw fields, keys and feature dependencies; compute order), ``sets`` (feature sets), ``hashes``
(the group hashes) and ``builder`` (:class:`SpecBuilder`, which puts them together).
"""

from fsgen.specbuild.base import Declarations, relative_path
from fsgen.specbuild.builder import SpecBuilder
from fsgen.specbuild.hashes import with_aggregation_hashes, with_group_hashes

__all__ = [
    "Declarations",
    "SpecBuilder",
    "relative_path",
    "with_aggregation_hashes",
    "with_group_hashes",
]
