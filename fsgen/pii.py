"""PII controls: the classes, which changes a reviewer must see, and pseudonymization.

Every feature declares a PII class (validation rule FS112 rejects anything else):

``none``          not about a person
``pseudonymous``  about a person, through a pseudonymous identifier only
``personal``      identifies or describes a person (GDPR personal data)
``sensitive``     special-category data; kept out of online stores unless a group sets
                  ``allow_sensitive_online=True`` after review (rule FS208)

:func:`pseudonymize` (keyed HMAC-SHA256; see :mod:`fsgen.runtime.pii` for the output format
and where the key comes from) is re-exported here and from ``fsgen``.
:func:`pii_changes` finds, in a plan, every feature whose PII class is new or changes, so the
plan's text view can flag them (:func:`plan_annotations`) and the catalog can show them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fsgen.runtime.pii import (
    FORMAT_PREFIX,
    KEY_ENV,
    SECRET_ENV,
    PseudonymizationKeyError,
    clear_key_cache,
    pseudonymize,
)

if TYPE_CHECKING:
    from fsgen.plan.model import GroupState, Plan
    from fsgen.spec import ProjectSpec

#: PII classes from least to most restricted.
PII_CLASSES: tuple[str, ...] = ("none", "pseudonymous", "personal", "sensitive")
PII_PARAMETER = "fsgen:pii"

__all__ = [
    "FORMAT_PREFIX",
    "KEY_ENV",
    "PII_CLASSES",
    "SECRET_ENV",
    "PiiChange",
    "PseudonymizationKeyError",
    "clear_key_cache",
    "is_personal",
    "pii_changes",
    "plan_annotations",
    "pseudonymize",
    "spec_pii",
]


def is_personal(pii_class: str | None) -> bool:
    """True for every class that is about a person (anything but ``none``)."""
    return pii_class not in (None, "none")


def rank(pii_class: str | None) -> int:
    return PII_CLASSES.index(pii_class) if pii_class in PII_CLASSES else -1


@dataclass(frozen=True)
class PiiChange:
    """A feature whose PII class a plan creates or changes."""

    group: str
    feature: str
    old: str | None
    """None when the feature (or its group) is new."""
    new: str
    online: bool
    """The feature is (or will be) served from an online store."""

    @property
    def stricter(self) -> bool:
        return rank(self.new) > rank(self.old)

    def describe(self) -> str:
        old = "new feature" if self.old is None else self.old
        where = ", served online" if self.online and is_personal(self.new) else ""
        direction = (
            ""
            if self.old is None
            else (" (stricter)" if self.stricter else " (relaxed: review the reason)")
        )
        return f"{self.group}.{self.feature}: {old} -> {self.new}{direction}{where}"


def _feature_class(state: GroupState | None, feature: str) -> str | None:
    if state is None:
        return None
    found = state.feature(feature)
    return None if found is None else found.parameters.get(PII_PARAMETER)


def pii_changes(plan: Plan) -> list[PiiChange]:
    """Features whose PII class the plan introduces or changes, in plan order.

    A new feature of class ``none`` is not a PII change; a change from ``personal`` to
    ``none`` is (declassifying data is exactly what a reviewer must notice)."""
    out: list[PiiChange] = []
    for change in plan.changes:
        after = change.after
        if after is None or change.action == "destroy":
            continue
        for feature in after.features:
            new = feature.parameters.get(PII_PARAMETER)
            if new is None:
                continue  # identifier / event-time columns carry no metadata
            old = _feature_class(change.before, feature.name)
            if old == new or (old is None and not is_personal(new)):
                continue
            out.append(
                PiiChange(
                    group=after.name,
                    feature=feature.name,
                    old=old,
                    new=new,
                    online=after.online_enabled,
                )
            )
    return out


def plan_annotations(plan: Plan) -> list[str]:
    """Lines the plan's text view appends: a block naming every PII change (empty if none)."""
    changes = pii_changes(plan)
    if not changes:
        return []
    lines = ["PII review: personal data is added or reclassified:"]
    lines.extend(f"  ! {c.describe()}" for c in changes)
    return lines


def spec_pii(spec: ProjectSpec) -> dict[str, str]:
    """``group:feature`` (or on-demand name) -> PII class, for every feature of the spec."""
    out = {f"{g.name}:{f.name}": f.pii for g in spec.groups for f in g.features}
    out.update({od.name: od.pii for od in spec.on_demand})
    return out
