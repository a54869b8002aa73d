"""Plan and apply: compare the declared spec with a backend's deployed feature groups, show the
difference Terraform-style, and execute it as small stages.

``plan.model`` holds the data (a Plan is a frozen value; ``--json`` is its dump);
:mod:`fsgen.sagemaker` maps a GroupSpec and a SageMaker description to one comparable
:class:`GroupState` and builds every request body; ``plan.state`` picks the deployed groups a
project's plan considers (its own, and the names it declares); ``plan.diff`` is the pure differ
with the rule table, ``plan.render`` the text view, and ``plan.apply`` runs the stages against
a backend.
"""

from fsgen.plan.model import ChangeKind, GroupState, Plan, PropertyDiff, ResourceChange

__all__ = ["ChangeKind", "GroupState", "Plan", "PropertyDiff", "ResourceChange"]
