"""The catalog's page data: the spec (through :func:`fsgen.codegen.catalog.catalog_data`, the
same data as ``generated/catalog.json``) enriched with what only a live project knows: offline
store statistics, the audit trail (applies and ingestions), and the generated artifacts with
whether the files on disk are current.

Everything a template shows is decided here (links, badges; the SVG charts in
:mod:`fsgen.catalog.charts`); the templates only lay it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote

from fsgen.catalog.charts import histogram_svg
from fsgen.catalog.stats import FeatureStats, GroupStats, group_stats
from fsgen.codegen.catalog import catalog_data
from fsgen.pii import is_personal

if TYPE_CHECKING:
    from fsgen.audit import AuditEvent
    from fsgen.config import ProjectConfig
    from fsgen.spec import ProjectSpec

Item = dict[str, object]


def group_page(name: str) -> str:
    return f"groups/{quote(name)}.html"


def feature_page(group: str, name: str) -> str:
    return f"features/{quote(group)}/{quote(name)}.html"


def on_demand_page(name: str) -> str:
    return f"on-demand/{quote(name)}.html"


def feature_set_page(name: str) -> str:
    return f"feature-sets/{quote(name)}.html"


@dataclass
class ArtifactRef:
    path: str
    kind: str
    state: str
    """``current``, ``stale`` (on disk but different) or ``missing``."""
    groups: tuple[str, ...] = ()
    """For IAM policies: the groups whose ARN the policy names."""


@dataclass
class Catalog:
    project: str
    summary: str
    groups: list[Item]
    on_demand: list[Item]
    feature_sets: list[Item]
    rows: list[Item] = field(default_factory=list)
    """One search row per group, feature, on-demand feature and feature set (index page)."""
    notes: list[str] = field(default_factory=list)

    @property
    def owners(self) -> list[str]:
        return sorted({str(r["owner"]) for r in self.rows if r["owner"]})

    @property
    def pii_classes(self) -> list[str]:
        from fsgen.pii import PII_CLASSES

        return list(PII_CLASSES)

    @property
    def personal_features(self) -> list[Item]:
        return [
            r
            for r in self.rows
            if r["type"] in ("feature", "on-demand") and is_personal(str(r["pii"]))
        ]


# ------------------------------------------------------------------------------ artifacts


def artifact_refs(config: ProjectConfig, spec: ProjectSpec) -> tuple[list[ArtifactRef], str | None]:
    """Every generated artifact with its on-disk state; (``[]``, reason) when codegen fails."""
    from fsgen.codegen import build
    from fsgen.errors import FsgenError

    try:
        artifacts = build(config, spec)
    except FsgenError as exc:
        return [], f"generated artifacts unavailable: {exc}"
    refs = []
    for a in artifacts:
        target = config.generated_path / a.path
        if not target.exists():
            state = "missing"
        else:
            state = "current" if target.read_bytes() == a.content.encode("utf-8") else "stale"
        named = tuple(g.name for g in spec.groups if f'feature-group/{g.name}"' in a.content)
        refs.append(
            ArtifactRef(
                path=f"{config.generated_dir}/{a.path}",
                kind=a.kind,
                state=state,
                groups=named if a.kind == "iam_policy" else (),
            )
        )
    return refs, None


def _group_artifacts(
    refs: list[ArtifactRef], config: ProjectConfig, group: str, sets: list[str]
) -> list[ArtifactRef]:
    from fsgen.codegen.views import snake

    prefix = config.generated_dir
    wanted = [
        f"{prefix}/groups/{snake(group)}/",
        *(f"{prefix}/feature_sets/{snake(s)}/" for s in sets),
    ]
    out = [
        r
        for r in refs
        if r.kind not in ("package", "manifest")
        and (r.path.startswith(tuple(wanted)) or r.kind == "catalog")
    ]
    out += [r for r in refs if r.kind == "iam_policy" and group in r.groups]
    return sorted(out, key=lambda r: r.path)


# --------------------------------------------------------------------------------- history


def _event_item(event: AuditEvent, group: str, feature: str | None = None) -> Item | None:
    diffs: list[str] = []
    raw = event.details.get("diffs")
    if isinstance(raw, dict):
        diffs = [str(d) for d in raw.get(group, [])]
    action = ""
    actions = event.details.get("actions")
    if isinstance(actions, dict):
        action = str(actions.get(group, ""))
    if feature is not None and event.kind == "apply":
        mine = [d for d in diffs if d.startswith(f"features.{feature}")]
        if not mine and action not in ("create", "replace", "destroy"):
            return None
        diffs = mine
    return {
        "when": event.when,
        "kind": event.kind,
        "who": event.who,
        "result": event.result,
        "backend": event.backend,
        "summary": event.summary,
        "action": action,
        "diffs": diffs,
        "pii": [d for d in diffs if ".parameters.fsgen:pii" in d],
        "rejects": event.details.get("rejects_path"),
        "source": event.details.get("source"),
        "error": event.details.get("error"),
    }


def _history(config: ProjectConfig) -> dict[str, list[AuditEvent]]:
    from fsgen import audit

    by_group: dict[str, list[AuditEvent]] = {}
    for event in reversed(audit.events(config)):  # newest first
        for g in event.groups:
            by_group.setdefault(g, []).append(event)
    return by_group


# ----------------------------------------------------------------------------- statistics


def _stats_item(stats: FeatureStats | None, pii: str, reviewed: str | None) -> Item | None:
    if stats is None:
        return None
    return {
        "rows": stats.rows,
        "nulls": stats.nulls,
        "null_rate": stats.null_rate,
        "min": stats.min,
        "max": stats.max,
        "mean": stats.mean,
        "distinct": stats.distinct,
        "mean_length": stats.mean_length,
        "kind": stats.kind,
        "withheld": stats.withheld,
        "pii": pii,
        "reviewed": reviewed,
        "bars": [
            {"label": b.label, "count": b.count, "low": b.low, "high": b.high} for b in stats.bars
        ],
        "svg": histogram_svg(stats),
    }


def value_statistics_optins(config: ProjectConfig, spec: ProjectSpec) -> dict[str, str]:
    """``[tool.fsgen.catalog] value_statistics``, checked: every key names a declared feature
    (``group:feature``) and every reason is non-empty."""
    from fsgen.errors import ConfigError

    known = {f"{g.name}:{f.name}" for g in spec.groups for f in g.features}
    where = f"{config.root / 'pyproject.toml'} [tool.fsgen.catalog] value_statistics"
    optins = dict(config.catalog.value_statistics)
    unknown = sorted(k for k in optins if k not in known)
    if unknown:
        raise ConfigError(
            f"{where}: no such feature {', '.join(map(repr, unknown))} (write 'group:feature')"
        )
    blank = sorted(k for k, why in optins.items() if not why.strip())
    if blank:
        raise ConfigError(
            f"{where}: {', '.join(map(repr, blank))} needs the review's reason as its value"
        )
    return optins


# ------------------------------------------------------------------------------- assemble


def build_catalog(config: ProjectConfig, spec: ProjectSpec, *, stats: bool = True) -> Catalog:
    data = catalog_data(spec)
    optins = value_statistics_optins(config, spec)
    refs, note = artifact_refs(config, spec)
    history = _history(config)
    notes = [note] if note else []
    groups: list[Item] = list(data["groups"])  # type: ignore[call-overload]
    catalog = Catalog(
        project=config.project,
        summary=spec.summary(),
        groups=groups,
        on_demand=list(data["on_demand"]),  # type: ignore[call-overload]
        feature_sets=list(data["feature_sets"]),  # type: ignore[call-overload]
        notes=notes,
    )
    for g in groups:
        _enrich_group(config, spec, g, refs, history.get(str(g["name"]), []), stats, optins)
    for od in catalog.on_demand:
        od["page"] = on_demand_page(str(od["name"]))
        stored_inputs: list[str] = od["stored_inputs"]  # type: ignore[assignment]
        used_by: list[str] = od["feature_sets"]  # type: ignore[assignment]
        od["inputs_links"] = [
            {"name": ref, "page": feature_page(*ref.split(":", 1))} for ref in stored_inputs
        ]
        od["feature_set_links"] = [{"name": s, "page": feature_set_page(s)} for s in used_by]
    for fs in catalog.feature_sets:
        fs["page"] = feature_set_page(str(fs["name"]))
        set_groups = sorted({str(c["group"]) for c in fs["columns"] if c["group"]})  # type: ignore[attr-defined]
        fs["group_links"] = [{"name": g, "page": group_page(g)} for g in set_groups]
        fs["history"] = _set_history(history, set_groups)
        for col in fs["columns"]:  # type: ignore[attr-defined]
            col["page"] = (
                feature_page(col["group"], col["feature"])
                if col["group"]
                else on_demand_page(col["feature"])
            )
            col["pii"] = (
                spec.group(col["group"]).output(col["feature"]).pii
                if col["group"]
                else spec.on_demand_feature(col["feature"]).pii
            )
        fs["personal"] = [
            {"name": c["column"], "pii": c["pii"], "page": c["page"]}
            for c in fs["columns"]  # type: ignore[attr-defined]
            if is_personal(str(c["pii"]))
        ]
    catalog.rows = _rows(catalog)
    return catalog


def _set_history(history: dict[str, list[AuditEvent]], groups: list[str]) -> list[Item]:
    """Events touching any of a feature set's groups, newest first, each once; diffs are
    prefixed with their group."""
    seen: dict[int, tuple[AuditEvent, list[str]]] = {}
    for g in groups:
        for ev in history.get(g, []):
            seen.setdefault(id(ev), (ev, []))[1].append(g)
    items: list[Item] = []
    for ev, touched in sorted(seen.values(), key=lambda p: p[0].when, reverse=True):
        parts = [(g, i) for g in touched if (i := _event_item(ev, g)) is not None]
        if not parts:
            continue
        item = dict(parts[0][1])
        diffs = [f"{g}: {d}" for g, i in parts for d in i["diffs"]]  # type: ignore[attr-defined]
        item["diffs"] = diffs
        item["pii"] = [d for d in diffs if ".parameters.fsgen:pii" in d]
        item["action"] = ", ".join(f"{g} {i['action']}" for g, i in parts if i["action"])
        items.append(item)
    return items


def _enrich_group(
    config: ProjectConfig,
    spec: ProjectSpec,
    g: Item,
    refs: list[ArtifactRef],
    events: list[AuditEvent],
    with_stats: bool,
    optins: dict[str, str],
) -> None:
    name = str(g["name"])
    group = spec.group(name)
    withheld = frozenset(
        f.name for f in group.features if is_personal(f.pii) and f"{name}:{f.name}" not in optins
    ) | frozenset(
        w
        for a in group.aggregations
        if is_personal(a.pii)
        for w in a.feature_names
        if f"{name}:{w}" not in optins
    )
    gstats: GroupStats | None = (
        group_stats(config.store_path, group, withheld) if with_stats else None
    )
    sets = sorted({s for f in g["features"] for s in f["feature_sets"]})  # type: ignore[attr-defined]
    g["page"] = group_page(name)
    g["stats"] = (
        None
        if gstats is None
        else {"rows": gstats.rows, "records": gstats.records, "files": gstats.files}
    )
    g["artifacts"] = [vars(r) for r in _group_artifacts(refs, config, name, sets)]
    g["history"] = [e for e in (_event_item(ev, name) for ev in events) if e]
    g["feature_set_links"] = [{"name": s, "page": feature_set_page(s)} for s in sets]
    g["personal"] = [
        f["name"]
        for f in g["features"]  # type: ignore[attr-defined]
        if is_personal(str(f["pii"]))
    ]
    dependents: dict[str, list[str]] = {}
    for f in group.features:
        for ref in f.inputs:
            if ref.kind == "feature":
                dependents.setdefault(ref.name, []).append(f.name)
    for f in g["features"]:  # type: ignore[attr-defined]
        fname = str(f["name"])
        f["group"] = name
        f["page"] = feature_page(name, fname)
        f["group_page"] = g["page"]
        f["depends_on"] = [
            {"name": i["name"], "page": feature_page(name, i["name"])}
            for i in f["inputs"]
            if i["kind"] == "feature"
        ]
        f["used_by"] = [
            {"name": d, "page": feature_page(name, d)} for d in dependents.get(fname, [])
        ]
        f["feature_set_links"] = [
            {"name": s, "page": feature_set_page(s)} for s in f["feature_sets"]
        ]
        f["on_demand_links"] = [
            {"name": od.name, "page": on_demand_page(od.name)}
            for od in spec.on_demand
            if any(r.group == name and r.feature == fname for _, r in od.stored_inputs)
        ]
        f["stats"] = _stats_item(
            gstats.features.get(fname) if gstats else None,
            str(f["pii"]),
            optins.get(f"{name}:{fname}") if is_personal(str(f["pii"])) else None,
        )
        f["group_tags"] = {k: v for k, v in dict(g["tags"]).items() if k not in f["tags"]}  # type: ignore[call-overload, operator]
        f["artifacts"] = [
            vars(r)
            for r in _group_artifacts(refs, config, name, list(f["feature_sets"]))
            if r.kind != "iam_policy"
        ]
        f["history"] = [e for e in (_event_item(ev, name, fname) for ev in events) if e]
        f["online"] = group.online.enabled


def _rows(catalog: Catalog) -> list[Item]:
    rows: list[Item] = []
    for g in catalog.groups:
        rows.append(
            {
                "type": "group",
                "name": g["name"],
                "qualified": g["name"],
                "page": g["page"],
                "owner": g["owner"],
                "pii": "",
                "tags": _tags(g["tags"]),
                "dtype": "",
                "description": g["description"],
                "group": "",
            }
        )
        for f in g["features"]:  # type: ignore[attr-defined]
            rows.append(
                {
                    "type": "feature",
                    "name": f["name"],
                    "qualified": f"{g['name']}:{f['name']}",
                    "page": f["page"],
                    "owner": g["owner"],
                    "pii": f["pii"],
                    "tags": _tags({**g["tags"], **f["tags"]}),  # type: ignore[dict-item]
                    "dtype": f["dtype"],
                    "description": f["description"],
                    "group": g["name"],
                }
            )
    for od in catalog.on_demand:
        sets: list[str] = od["feature_sets"]  # type: ignore[assignment]
        owners = sorted({str(fs["owner"]) for fs in catalog.feature_sets if fs["name"] in sets})
        rows.append(
            {
                "type": "on-demand",
                "name": od["name"],
                "qualified": od["name"],
                "page": od["page"],
                "owner": ", ".join(owners),
                "pii": od["pii"],
                "tags": _tags(od["tags"]),
                "dtype": od["dtype"],
                "description": od["description"],
                "group": "",
            }
        )
    for fs in catalog.feature_sets:
        rows.append(
            {
                "type": "feature set",
                "name": fs["name"],
                "qualified": fs["name"],
                "page": fs["page"],
                "owner": fs["owner"],
                "pii": "",
                "tags": [],
                "dtype": "",
                "description": fs["description"],
                "group": "",
            }
        )
    return rows


def _tags(tags: object) -> list[str]:
    return [f"{k}={v}" for k, v in sorted(dict(tags).items())]  # type: ignore[call-overload]


def output_pages(catalog: Catalog) -> list[tuple[str, str, Item]]:
    """(relative path, template, context item) for every page."""
    pages: list[tuple[str, str, Item]] = []
    for g in catalog.groups:
        pages.append((str(g["page"]), "group.html.jinja", g))
        for f in g["features"]:  # type: ignore[attr-defined]
            pages.append((str(f["page"]), "feature.html.jinja", f))
    pages += [(str(od["page"]), "on_demand.html.jinja", od) for od in catalog.on_demand]
    pages += [(str(fs["page"]), "feature_set.html.jinja", fs) for fs in catalog.feature_sets]
    return pages


def depth_prefix(page: str) -> str:
    """The relative path back to the catalog root from ``page``."""
    return "../" * page.count("/")


__all__ = ["Catalog", "build_catalog", "output_pages"]
