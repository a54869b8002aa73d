"""Compute a plan against a backend and apply it: the Python API behind ``fsgen plan``,
``fsgen apply``, ``fsgen destroy`` and ``fsgen history``.

Apply runs exactly the stages of a reviewed :class:`Plan`, under an exclusive apply lock
(``<state_dir>/apply.lock``; a second apply waits up to ``lock_timeout`` seconds, then fails
naming the holder). Before the first stage it re-reads the deployed state and refuses when its
fingerprint differs from the plan's, or when the definitions changed since. Stages that delete
a group (replace, destroy) run only with ``allow_destructive``. A failing stage stops the apply;
what already ran stays applied and the next plan, which re-reads the backend, describes it
truthfully. Every apply, successful or not, is appended to ``<state_dir>/history.jsonl``.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from fsgen.backends.base import Backend, Progress
from fsgen.config import ProjectConfig
from fsgen.errors import ConfigError, FsgenError, StoreError
from fsgen.hashing import sha256_of
from fsgen.plan.diff import make_plan
from fsgen.plan.model import PLAN_FORMAT_VERSION, GroupState, Plan, Stage
from fsgen.plan.state import in_scope, state_fingerprint
from fsgen.sagemaker import (
    MANAGED_TAG,
    PROJECT_TAG,
    desired_state,
    is_managed,
    offline_s3_uri,
)
from fsgen.spec import ProjectSpec


class PlanError(FsgenError):
    """A plan cannot be computed or applied as asked (FS3xx)."""


class StalePlan(PlanError):
    """The deployed state or the definitions moved since the plan was computed."""


class ApplyFailed(PlanError):
    """A stage failed; earlier stages stay applied."""


def spec_fingerprint(spec: ProjectSpec) -> str:
    return sha256_of(
        {
            "groups": [[g.name, g.schema_hash, g.logic_hash, g.metadata_hash] for g in spec.groups],
            "feature_sets": [[f.name, f.spec_hash] for f in spec.feature_sets],
        }
    )


def changed_artifacts(config: ProjectConfig, spec: ProjectSpec) -> dict[str, str]:
    """Project-relative generated paths that change -> ``+`` created, ``~`` changed, ``-``
    removed."""
    from fsgen.codegen.emit import artifact_marks

    marks = artifact_marks(config, spec)
    return {f"{config.generated_dir}/{path}": marks[path] for path in sorted(marks)}


def compute_plan(
    config: ProjectConfig,
    spec: ProjectSpec,
    backend: Backend,
    *,
    destroy: bool = False,
    artifacts: bool = True,
) -> Plan:
    """The plan taking ``backend`` to the definitions (or, with ``destroy``, to nothing)."""
    if (
        backend.name == "aws"
        and not config.aws.role_arn
        and any(g.offline.enabled for g in spec.groups)
    ):
        raise ConfigError(
            "the aws backend needs [tool.fsgen.aws] role_arn for groups with an offline store"
        )
    placeholder = [
        g.name
        for g in spec.groups
        if g.offline.enabled and not (g.offline.s3_uri or config.aws.offline_s3_uri)
    ]
    if backend.name == "aws" and placeholder and not destroy:
        raise ConfigError(
            f"the aws backend needs an S3 URI for the offline store of {', '.join(placeholder)}: "
            "set [tool.fsgen.aws] offline_s3_uri (or Offline(s3_uri=...) on the group); "
            f"{offline_s3_uri(spec.group(placeholder[0]), config)} is the local placeholder"
        )
    deployed = deployed_in_scope(config, spec, backend)
    desired = [] if destroy else [desired_state(g, config) for g in spec.groups]
    for want in desired:
        have = deployed.get(want.name)
        if have is not None and not is_managed(have, config.project):
            raise PlanError(_foreign_group(config, backend.name, have))
    plan = make_plan(
        desired,
        deployed,
        project=config.project,
        backend=backend.name,
        state_fingerprint=state_fingerprint(deployed),
        spec_fingerprint=spec_fingerprint(spec),
        artifacts={} if destroy or not artifacts else changed_artifacts(config, spec),
    )
    creating = [
        c.after for c in plan.changes if c.action in ("create", "replace") and c.after is not None
    ]
    notes = backend.preflight(creating) if creating else []
    return plan.model_copy(update={"notes": (*plan.notes, *notes)}) if notes else plan


def deployed_in_scope(
    config: ProjectConfig, spec: ProjectSpec, backend: Backend
) -> dict[str, GroupState]:
    """The deployed groups this project's plans look at (see :mod:`fsgen.plan.state`)."""
    return in_scope(backend.deployed(), config.project, (g.name for g in spec.groups))


def _foreign_group(config: ProjectConfig, backend: str, have: GroupState) -> str:
    """FS301: a declared group's name is taken by a group this project does not manage."""
    owner = have.tags.get(PROJECT_TAG) if have.tags.get(MANAGED_TAG) == "fsgen" else None
    where = f"feature group {have.name!r} already exists on the {backend} backend"
    if owner is None:
        return (
            f"FS301: {where} and is not managed by fsgen; rename the group in the "
            "definitions or delete the existing one"
        )
    text = (
        f"FS301: {where} and belongs to fsgen project {owner!r} (tag fsgen:project), "
        f"not to this project {config.project!r}; fsgen does not take over another "
        "project's group: rename the group in the definitions"
    )
    if owner == config.definitions:
        text += (
            f". {owner!r} is also this project's definitions package, the identity every "
            "project had before [tool.fsgen] project: if this group was deployed from these "
            f'definitions, keep that identity with project = "{owner}" under [tool.fsgen] '
            "in pyproject.toml"
        )
    return text


def load_plan(path: Path) -> Plan:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise PlanError(f"{path}: cannot read plan file: {exc}") from None
    if data.get("format_version") != PLAN_FORMAT_VERSION:
        raise PlanError(
            f"{path}: plan format_version {data.get('format_version')!r} is not "
            f"{PLAN_FORMAT_VERSION}; run fsgen plan --out again"
        )
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        raise PlanError(
            f"{path}: not a valid fsgen plan: {exc.error_count()} error(s), first: "
            f"{exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}"
        ) from None


def who() -> str:
    user = os.environ.get("FSGEN_USER")
    if not user:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
    return f"{user}@{socket.gethostname()}"


@contextlib.contextmanager
def apply_lock(state_dir: Path, timeout: float = 10.0) -> Iterator[None]:
    """Exclusive per-backend apply lock; waits up to ``timeout`` seconds, then fails clearly."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "apply.lock"
    with open(path, "a+", encoding="utf-8") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.seek(0)
                    holder = fh.read().strip() or "another process"
                    raise StoreError(
                        f"another fsgen apply holds the lock {path} ({holder}); "
                        f"waited {timeout:g}s. Retry when it has finished"
                    ) from None
                time.sleep(0.05)
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()}, {who()}, since {_now()}\n")
            fh.flush()
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fh.flush()
            fcntl.flock(fh, fcntl.LOCK_UN)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def describe_stage(stage: Stage) -> str:
    if stage.kind == "create_group":
        return f"create feature group {stage.group}"
    if stage.kind == "delete_group":
        return f"delete feature group {stage.group}"
    if stage.kind == "update_group":
        additions = stage.request.get("FeatureAdditions")
        what = (
            "add " + ", ".join(str(d["FeatureName"]) for d in additions)
            if isinstance(additions, list)
            else "update store configuration"
        )
        return f"update feature group {stage.group}: {what}"
    if stage.kind == "update_feature_metadata":
        return f"update metadata of {stage.group}.{stage.request['FeatureName']}"
    if stage.kind == "record_ttl_change":
        return f"record the TTL change of {stage.group} (tag fsgen:ttl-history)"
    return f"tag feature group {stage.group}"


@dataclass
class ApplyResult:
    plan: Plan
    stages_done: int = 0
    regenerated: list[str] = field(default_factory=list)


def apply_plan(
    config: ProjectConfig,
    spec: ProjectSpec,
    backend: Backend,
    plan: Plan,
    *,
    allow_destructive: bool = False,
    progress: Progress = lambda _: None,
    lock_timeout: float = 10.0,
    regenerate: bool = True,
    confirm: Callable[[Plan], bool] | None = None,
) -> ApplyResult:
    """Apply ``plan`` (None-free: compute one first with :func:`compute_plan`).

    ``confirm`` is asked after the freshness checks, under the lock; returning False aborts.
    """
    with apply_lock(backend.state_dir, lock_timeout):
        _check_fresh(config, spec, backend, plan, allow_destructive)
        if confirm is not None and not confirm(plan):
            raise PlanError("apply cancelled; nothing was changed")
        result = ApplyResult(plan=plan)
        try:
            for number, stage in enumerate(plan.stages, start=1):
                progress(f"[{number}/{len(plan.stages)}] {describe_stage(stage)}")
                try:
                    backend.execute(stage, progress)
                except FsgenError as exc:
                    raise ApplyFailed(
                        f"FS304: stage {number}/{len(plan.stages)} "
                        f"({describe_stage(stage)}) failed: {exc}. {number - 1} stage(s) before "
                        "it were applied and stay applied; run 'fsgen plan' to see the current "
                        "state"
                    ) from exc
                result.stages_done = number
            if regenerate and plan.artifacts:
                from fsgen.codegen import generate

                generate(config, spec)
                result.regenerated = list(plan.artifacts)
        except FsgenError as exc:
            _record(backend, plan, "failed", result.stages_done, str(exc))
            raise
        _record(backend, plan, "applied", result.stages_done, None)
        return result


def check_fresh(config: ProjectConfig, spec: ProjectSpec, backend: Backend, plan: Plan) -> None:
    """FS302 unless ``plan`` was made for this backend, these definitions and the deployed
    state as it is now (a saved plan is checked before it is shown; :func:`apply_plan` checks
    again under the lock)."""
    if plan.backend != backend.name:
        raise StalePlan(
            f"FS302: the plan was made for the {plan.backend} backend, not {backend.name}"
        )
    if plan.spec_fingerprint != spec_fingerprint(spec):
        raise StalePlan(
            "FS302: the definitions changed since the plan was made; run 'fsgen plan' again"
        )
    current = state_fingerprint(deployed_in_scope(config, spec, backend))
    if current != plan.state_fingerprint:
        raise StalePlan(
            "FS302: the deployed state changed since the plan was made "
            f"(plan: {plan.state_fingerprint[:19]}, now: {current[:19]}); run "
            "'fsgen plan' again"
        )


def _check_fresh(
    config: ProjectConfig, spec: ProjectSpec, backend: Backend, plan: Plan, allow_destructive: bool
) -> None:
    check_fresh(config, spec, backend, plan)
    if plan.destructive and not allow_destructive:
        groups = sorted({s.group for s in plan.stages if s.kind == "delete_group"})
        raise PlanError(
            f"FS303: the plan deletes feature group(s) {', '.join(groups)} "
            "(replace or destroy), which drops their online store records; rerun "
            "with --allow-replace to allow it"
        )


def _record(backend: Backend, plan: Plan, result: str, stages_done: int, error: str | None) -> None:
    entry = {
        "when": _now(),
        "who": who(),
        "backend": backend.name,
        "result": result,
        "stages_done": stages_done,
        "stages_total": len(plan.stages),
        "error": error,
        "summary": _summary(plan),
        "plan": plan.model_dump(mode="json"),
    }
    backend.state_dir.mkdir(parents=True, exist_ok=True)
    with open(backend.state_dir / "history.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _summary(plan: Plan) -> str:
    from fsgen.plan.render import summary_line

    return summary_line(plan)


def read_history(state_dir: Path) -> list[dict[str, object]]:
    path = state_dir / "history.jsonl"
    if not path.exists():
        return []
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                raise StoreError(f"{path}:{number}: corrupt history line") from None
    return out
