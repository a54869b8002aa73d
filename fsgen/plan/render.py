"""The text view of a Plan, in Terraform's grammar. Rendered from the same object ``--json``
dumps, so the two cannot disagree."""

from __future__ import annotations

import json
import re

from fsgen.pii import plan_annotations
from fsgen.plan.model import ChangeKind, GroupState, Plan, PropertyDiff, ResourceChange
from fsgen.sagemaker import STATE_PARAM

EMPTY = "No changes. Feature store matches the definitions."

_HEADER = {
    "create": ("+", "will be created"),
    "update": ("~", "will be updated in-place"),
    "replace": ("-/+", "must be replaced"),
    "destroy": ("-", "will be destroyed"),
}

_KIND_NOTE = {
    ChangeKind.REPLACE: "# forces replacement",
    ChangeKind.BACKFILL: "# logic changed: backfill needed",
    ChangeKind.NOT_APPLIED: "# set only at creation: not applied",
}


def show(value: object) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str) and value.startswith("sha256:"):
        return json.dumps(value[:19] + "…", ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False)


def render_plan(plan: Plan) -> str:
    lines: list[str] = []
    visible = [c for c in plan.changes if c.diffs or c.action in ("create", "destroy")]
    if visible:
        lines.append("fsgen will perform the following actions:")
        for change in plan.changes:
            lines.append("")
            lines.extend(render_change(change))
        if plan.stages:
            lines.append("")
            lines.append(stages_line(plan))
    elif plan.changes:  # notes only
        for change in plan.changes:
            lines.extend(render_change(change))
            lines.append("")
    if plan.backfill:
        lines.append("")
        lines.append("Backfill needed:")
        lines.extend(f"  {line}" for line in backfill_lines(plan))
    for note in plan.notes:
        lines.append("")
        lines.append(f"Warning: {note}")
    pii_review = plan_annotations(plan)
    if pii_review:
        lines.append("")
        lines.extend(pii_review)
    if plan.artifacts:
        lines.append("")
        lines.append("Generated artifacts that change:")
        created, removed = set(plan.artifacts_created), set(plan.artifacts_removed)
        lines.extend(
            f"  {'+' if path in created else '-' if path in removed else '~'} {path}"
            + ("  (no longer generated: removed)" if path in removed else "")
            for path in plan.artifacts
        )
    if not visible and not plan.artifacts:
        lines.append(EMPTY)
        return "\n".join(lines).strip("\n") + "\n"
    lines.append("")
    lines.append(summary_line(plan))
    return "\n".join(lines).strip("\n") + "\n"


#: a stage's kind as the API call (or the local step) that runs it
_STAGE_NAMES = {
    "create_group": "CreateFeatureGroup",
    "delete_group": "DeleteFeatureGroup",
    "update_group": "UpdateFeatureGroup",
    "update_feature_metadata": "UpdateFeatureMetadata (descriptions, parameters)",
    "set_tags": "AddTags/DeleteTags (fsgen's tags)",
    "record_ttl_change": "AddTags (the TTL change in fsgen:ttl-history)",
}


def stages_line(plan: Plan) -> str:
    """What ``fsgen apply`` will run, counted by kind in order of first appearance (``--json``
    has each stage's request)."""
    counts: dict[str, int] = {}
    for stage in plan.stages:
        counts[stage.kind] = counts.get(stage.kind, 0) + 1
    parts = ", ".join(f"{n} {_STAGE_NAMES.get(kind, kind)}" for kind, n in counts.items())
    total = len(plan.stages)
    return f"Apply runs {total} stage{'s' if total != 1 else ''}: {parts}."


def backfill_lines(plan: Plan) -> list[str]:
    """Per group, the stored values a change left stale and the command that recomputes them:
    values computed by an old transformation are re-ingested; aggregation states built for an
    old definition are rebuilt from the offline event history by ``fsgen backfill`` (on the
    aws backend, which cannot read that history back, by ingesting it again)."""
    lines: list[str] = []
    for group, features in plan.backfill.items():
        states = [f for f in features if f.endswith("__state")]
        logic = [f for f in features if not f.endswith("__state")]
        if logic:
            lines.append(
                f"{group}: {', '.join(logic)}: computed by the old logic "
                f"(re-ingest: fsgen ingest {group} ...)"
            )
        if states:
            rebuild = (
                f"fsgen --backend aws ingest {group} over the group's whole event history, or "
                "its generated batch job; fsgen backfill reads the local store only"
                if plan.backend == "aws"
                else f"fsgen backfill {group}"
            )
            lines.append(
                f"{group}: {', '.join(states)}: states built for the old aggregation "
                f"definition (rebuild: {rebuild})"
            )
    return lines


def summary_line(plan: Plan) -> str:
    changed = sum(1 for c in plan.changes if c.action == "update" and c.diffs)
    return (
        f"Plan: {plan.count('create')} to add, {changed} to change, "
        f"{plan.count('replace')} to replace, {plan.count('destroy')} to destroy."
    )


def apply_summary(plan: Plan) -> str:
    changed = sum(1 for c in plan.changes if c.action == "update" and c.diffs)
    return (
        f"Apply complete! {plan.count('create')} added, {changed} changed, "
        f"{plan.count('replace')} replaced, {plan.count('destroy')} destroyed."
    )


def destroy_summary(plan: Plan, kept: str) -> str:
    """Terraform's closing line of a destroy, then each group deleted and where its offline
    history stays (``kept``: the backend's words for it)."""
    groups = [c.group for c in plan.changes if c.action == "destroy"]
    lines = [f"Destroy complete! Resources: {len(groups)} destroyed."]
    lines.extend(
        f"  - feature_group {json.dumps(g)}: deleted, with its online store records" for g in groups
    )
    lines.append(f"Offline history kept: {kept}")
    return "\n".join(lines)


def render_change(change: ResourceChange) -> list[str]:
    sign, verb = _HEADER[change.action]
    if change.action == "update" and not change.diffs:
        sign, verb = " ", "has changes that are not applied"
    lines = [f"  # feature group {change.group!r} {verb}"]
    if change.data_loss:
        lines.append(f"  # data loss: {change.data_loss}")
    lines.append(f"{sign:>3} feature_group {json.dumps(change.group)} {{")
    if change.action == "create":
        assert change.after is not None
        lines.extend(_whole(change.after, "+"))
    elif change.action == "destroy":
        assert change.before is not None
        lines.extend(_whole(change.before, "-"))
    else:
        hashes = [d for d in change.diffs if _is_hash_tag(d)]
        for diff in (*change.diffs, *change.notes):
            if not _is_hash_tag(diff):
                lines.append(_diff_line(diff))
        if hashes:
            lines.append(
                f"      ~ tags.fsgen:*-hash ({len(hashes)} definition hash"
                f"{'es' if len(hashes) != 1 else ''} updated)"
            )
        if change.unchanged_features:
            n = change.unchanged_features
            lines.append(f"        # ({n} unchanged feature{'s' if n != 1 else ''} hidden)")
    lines.append("    }")
    return lines


def _is_hash_tag(diff: PropertyDiff) -> bool:
    return diff.path.startswith("tags.fsgen:") and diff.path.endswith("-hash")


def _diff_line(diff: PropertyDiff) -> str:
    note = _KIND_NOTE.get(diff.kind, "")
    if diff.kind is ChangeKind.BACKFILL and diff.path.endswith(f".parameters.{STATE_PARAM}"):
        note = "# definition changed: states rebuilt by a backfill"
    if diff.path == "online_ttl_seconds":
        diff = diff.model_copy(
            update={
                "old": duration(diff.old) if isinstance(diff.old, int) else diff.old,
                "new": duration(diff.new) if isinstance(diff.new, int) else diff.new,
            }
        )
    if diff.old is None and diff.kind is not ChangeKind.BACKFILL:
        text = f"      + {diff.path} = {show(diff.new)}"
    elif diff.new is None and diff.kind is not ChangeKind.BACKFILL:
        text = f"      - {diff.path} = {show(diff.old)}"
    else:
        text = f"      ~ {diff.path} = {show(diff.old)} -> {show(diff.new)}"
    return f"{text} {note}" if note else text


def _whole(state: GroupState, sign: str) -> list[str]:
    pad = f"      {sign} "
    out = [
        f"{pad}record_identifier  = {show(state.record_identifier)}",
        f"{pad}event_time_feature = {show(state.event_time_feature)}",
        f"{pad}online_store       = {_online(state)}",
        f"{pad}offline_store      = {_offline(state)}",
    ]
    for feature in state.features:
        out.append(f"{pad}feature {show(feature.name)} {feature.type}")
    return out


def _online(state: GroupState) -> str:
    if not state.online_enabled:
        return "disabled"
    ttl = f"ttl {duration(state.online_ttl_seconds)}" if state.online_ttl_seconds else "no ttl"
    return f"{state.online_storage_type}, {ttl}"


def duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _offline(state: GroupState) -> str:
    if not state.offline_enabled:
        return "disabled"
    return f"{state.offline_table_format} at {state.offline_s3_uri}"


# ----------------------------------------------------------------------------- colour

_SIGN = re.compile(r"^(\s*)(-/\+|\+|~|-|!)(?= )")
_SGR = {"+": "32", "~": "33", "-": "31", "!": "33"}
_RESET = "\x1b[0m"


def _sgr(codes: str, text: str) -> str:
    return f"\x1b[{codes}m{text}{_RESET}"


def paint(text: str) -> str:
    """``text`` (a rendered plan) with Terraform's colours as ANSI escapes: ``+`` green, ``~``
    yellow, ``-`` red, ``-/+`` red and green, headers and the summary bold, what forces a
    replacement or loses data red. For terminals only; the plain text is what pipes get."""
    out = []
    for line in text.split("\n"):
        m = _SIGN.match(line)
        if m:
            sign = m.group(2)
            mark = (
                _sgr("31", "-") + "/" + _sgr("32", "+") if sign == "-/+" else _sgr(_SGR[sign], sign)
            )
            line = m.group(1) + mark + line[m.end(2) :]
        for note in ("# forces replacement", "# data loss:"):
            line = line.replace(note, _sgr("31", note))
        if line.startswith("  # feature group"):
            line = _sgr("1", line)
        elif line.startswith(
            ("Plan:", "Apply complete!", "Destroy complete!", "fsgen will perform")
        ):
            line = _sgr("1", line)
        elif line.startswith("Warning:"):
            line = _sgr("1;33", "Warning:") + line[len("Warning:") :]
        out.append(line)
    return "\n".join(out)
