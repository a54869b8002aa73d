"""The deployed state a plan considers: this project's groups, and the ones it declares.

Several projects can share one account, one ``fsgen serve`` or one store directory. A plan (and
the freshness check before apply) sees only the groups tagged ``fsgen:project=<this project>``
plus those whose names the definitions declare (to refuse a takeover of another's group with a
clear FS301); the rest belong to someone else and are neither shown, destroyed nor fingerprinted.
The spec <-> SageMaker translation itself lives in :mod:`fsgen.sagemaker`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fsgen.hashing import sha256_of
from fsgen.plan.model import GroupState
from fsgen.sagemaker import is_managed


def in_scope(
    deployed: Mapping[str, GroupState], project: str, declared: Iterable[str]
) -> dict[str, GroupState]:
    """The deployed groups a plan for ``project`` declaring ``declared`` looks at."""
    names = set(declared)
    return {
        name: state
        for name, state in sorted(deployed.items())
        if name in names or is_managed(state, project)
    }


def state_fingerprint(states: Mapping[str, GroupState]) -> str:
    return sha256_of({name: states[name].model_dump(mode="json") for name in sorted(states)})
