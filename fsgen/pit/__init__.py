"""Point-in-time-correct training datasets (DESIGN semantics 5).

``build_dataset(config, spec, feature_set, labels)`` joins every label row with the record of
each group that was current at the label's time: the greatest event time <= T (ties: latest
api_invocation_time, then write_time), within the TTL, not deleted as of T. The local engine
is DuckDB (:mod:`fsgen.pit.local`); :mod:`fsgen.pit.athena` renders the same semantics as
Athena SQL and :mod:`fsgen.pit.athena_runner` runs it on Athena. Tests prove them equal, on
DuckDB and PostgreSQL, against an independent oracle.
"""

from __future__ import annotations

from fsgen.pit.dataset import build_dataset, finish
from fsgen.pit.model import PitError, PitPlan, plan_for

__all__ = ["PitError", "PitPlan", "build_dataset", "finish", "plan_for"]
