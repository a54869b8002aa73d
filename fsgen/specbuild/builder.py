"""The builder itself: declarations -> ProjectSpec, entity by entity and group by group
(features, aggregations, on-demand features and feature sets through their parts)."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Sequence

from fsgen import authoring as a
from fsgen.hashing import function_source, logic_hash
from fsgen.spec import (
    AggregationSpec,
    EntitySpec,
    EventTimeSpec,
    FeatureSpec,
    GroupSpec,
    InputKind,
    InputRef,
    KeySpec,
    OfflineSpec,
    OnDemandSpec,
    OnlineSpec,
    ProjectSpec,
    RawField,
    RawType,
    SourceSpec,
    StoredRef,
    ThroughputSpec,
)
from fsgen.specbuild.base import (
    Declarations,
    _module_of,
    _return_annotation,
    _type_hints,
    declared_dtype,
    relative_path,
)
from fsgen.specbuild.hashes import with_aggregation_hashes, with_group_hashes
from fsgen.specbuild.inputs import InputsBuilder
from fsgen.specbuild.sets import FeatureSetBuilder
from fsgen.types import DType, Scalar


class SpecBuilder(InputsBuilder, FeatureSetBuilder):
    """Declarations -> ProjectSpec, with every structural problem as a diagnostic."""

    def build(self, decls: Declarations) -> ProjectSpec | None:
        for problem in decls.problems():
            path = relative_path(problem.path, self.config.root)
            self.diags.append(problem.model_copy(update={"path": path}))
        entities = {id(e): self.entity(e) for e in decls.entities}
        self.duplicates("entity", [(e.name, e.location) for e in decls.entities])
        self.duplicates("feature group", [(g.name, g.location) for g in decls.groups])
        self.duplicates("feature set", [(f.name, f.location) for f in decls.feature_sets])
        groups = [self.group(g, entities[id(g.entity)]) for g in decls.groups]
        on_demand = [self.on_demand(od, decls.groups) for od in decls.on_demand]
        self.duplicates("on-demand feature", [(od.name, od.location) for od in decls.on_demand])
        feature_sets = [self.feature_set(fs, decls, groups) for fs in decls.feature_sets]
        return ProjectSpec(
            package=self.package,
            entities=tuple(sorted(entities.values(), key=lambda e: e.name)),
            groups=tuple(sorted(groups, key=lambda g: g.name)),
            on_demand=tuple(sorted((o for o in on_demand if o), key=lambda o: o.name)),
            feature_sets=tuple(sorted(feature_sets, key=lambda f: f.name)),
        )

    # ------------------------------------------------------------------ entities & groups

    def entity(self, e: a.Entity) -> EntitySpec:
        keys = []
        for name, dtype in e.keys.items():
            if not isinstance(dtype, DType):
                self.error(e.location, "FS110", f"entity key {name!r} has no fsgen dtype")
                continue
            keys.append(KeySpec(name=name, dtype=dtype))
        return EntitySpec(
            name=e.name,
            keys=tuple(keys),
            identifier=e.identifier,
            description=e.description,
            location=self.loc(e.location),
        )

    def group(self, g: a.FeatureGroup, entity: EntitySpec) -> GroupSpec:
        location = self.loc(g.location)
        self.duplicates(f"feature in group {g.name!r}", [(d.name, d.location) for d in g.features])
        names = {d.name for d in g.features}
        key_names = {k.name for k in entity.keys} | {entity.identifier}
        raw: dict[str, tuple[RawType, bool, list[str], a.Location]] = {}
        inputs: dict[str, tuple[InputRef, ...]] = {}
        for decl in g.features:
            inputs[decl.name] = self.feature_inputs(decl, names, key_names, g.event_time, raw)
        order = self.compute_order(g, inputs)
        features = []
        hashes: dict[str, str] = {}
        by_name = {d.name: d for d in g.features}
        for fname in order:
            decl = by_name[fname]
            deps = {
                i.name: hashes[i.name]
                for i in inputs[fname]
                if i.kind == "feature" and i.name in hashes
            }
            hashes[fname] = logic_hash(decl.fn, package=self.package, dependency_hashes=deps)
        for decl in g.features:
            features.append(
                FeatureSpec(
                    name=decl.name,
                    group=g.name,
                    dtype=declared_dtype(decl),
                    description=decl.description,
                    pii=decl.pii,
                    tags=dict(sorted(decl.tags.items())),
                    function=self.function_ref(decl.fn, decl.location),
                    inputs=inputs[decl.name],
                    return_annotation=_return_annotation(decl.fn),
                    source=function_source(decl.fn),
                    logic_hash=hashes.get(decl.name, ""),
                    location=self.loc(decl.location),
                )
            )
        aggregations = self.aggregations(g, key_names, raw)
        et_type = g.event_time_type if isinstance(g.event_time_type, DType) else None
        if et_type is None:
            self.error(g.location, "FS110", f"group {g.name!r}: event_time_type is not a dtype")
        spec = GroupSpec(
            name=g.name,
            entity=entity,
            event_time=EventTimeSpec(
                name=g.event_time, dtype=et_type or DType(scalar=Scalar.STRING)
            ),
            online=OnlineSpec(
                enabled=g.online.enabled,
                ttl_seconds=self.duration(g.online.ttl, g.location, "online ttl"),
                storage=g.online.storage,
            ),
            offline=OfflineSpec(
                enabled=g.offline.enabled,
                s3_uri=g.offline.s3_uri,
                table_format=g.offline.table_format,
                kms_key=g.offline.kms_key,
                disable_glue_table_creation=g.offline.disable_glue_table_creation,
            ),
            throughput=ThroughputSpec(
                mode=g.throughput.mode,
                read_units=g.throughput.read_units,
                write_units=g.throughput.write_units,
            ),
            owner=g.owner,
            description=g.description,
            tags=dict(sorted(g.tags.items())),
            features=tuple(features),
            compute_order=tuple(order),
            raw_fields=self.raw_fields(entity, g, raw),
            sources=tuple(
                SourceSpec(
                    kind=s.kind,
                    path=s.path,
                    format=s.format,
                    stream=s.stream,
                    region=s.region,
                    location=self.loc(s.location),
                )
                for s in g.sources
            ),
            max_staleness_seconds=self.duration(g.max_staleness, g.location, "max_staleness"),
            allow_sensitive_online=g.allow_sensitive_online,
            module=_module_of(g.location.path, self.config.root),
            location=location,
            aggregations=aggregations,
        )
        spec = with_group_hashes(spec)
        return with_aggregation_hashes(spec) if spec.aggregations else spec

    # ------------------------------------------------------------------ aggregations

    def aggregations(
        self,
        g: a.FeatureGroup,
        key_names: set[str],
        raw: dict[str, tuple[RawType, bool, list[str], a.Location]],
    ) -> tuple[AggregationSpec, ...]:
        decls: list[a.AggregationDecl] = list(getattr(g, "aggregations", []))
        # an aggregation named as another aggregation or a row feature of the group; two row
        # features of one name are the features' own duplicate, reported once, there
        names = {d.name for d in decls}
        features: dict[str, a.Location] = {}
        for f in g.features:
            if f.name in names:
                features.setdefault(f.name, f.location)
        self.duplicates(
            f"aggregation in group {g.name!r}",
            [(d.name, d.location) for d in decls] + list(features.items()),
        )
        return tuple(
            spec
            for spec in (self.aggregation(d, key_names, g.event_time, raw) for d in decls)
            if spec is not None
        )

    def aggregation(
        self,
        decl: a.AggregationDecl,
        key_names: set[str],
        event_time: str,
        raw: dict[str, tuple[RawType, bool, list[str], a.Location]],
    ) -> AggregationSpec | None:
        from fsgen.aggregation import parse_aggregation

        refs: list[InputRef] = []
        hints = _type_hints(decl.fn)
        for param in inspect.signature(decl.fn).parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                self.error(
                    decl.location,
                    "FS104",
                    f"aggregation {decl.name!r}: *{param.name} is not allowed; "
                    "each parameter names one field of the event",
                )
            elif param.name in key_names or param.name == event_time:
                kind: InputKind = "key" if param.name in key_names else "event_time"
                refs.append(InputRef(name=param.name, kind=kind))
                raw.setdefault(param.name, ("str", False, [], decl.location))[2].append(decl.name)
            else:
                typed = self.raw_type(decl, param.name, hints)  # type: ignore[arg-type]
                if typed is not None:
                    refs.append(InputRef(name=param.name, kind="raw"))
                    self.merge_raw(decl, param.name, typed, raw)  # type: ignore[arg-type]
        parsed = parse_aggregation(decl, _return_annotation(decl.fn))
        for code, message, hint in parsed.problems:
            self.error(decl.location, code, message, hint)
        if parsed.value_dtype is None:
            return None
        return AggregationSpec(
            name=decl.name,
            group=decl.group.name,
            dtype=decl.dtype if isinstance(decl.dtype, DType) else parsed.value_dtype,
            value_dtype=parsed.value_dtype,
            function=decl.function,
            windows=parsed.windows,
            hop_seconds=parsed.hop_seconds,
            lateness_seconds=parsed.lateness_seconds,
            n=decl.n,
            distinct=bool(decl.distinct),
            description=decl.description,
            pii=decl.pii,
            tags=dict(sorted(decl.tags.items())),
            transform=self.function_ref(decl.fn, decl.location),
            inputs=tuple(refs),
            return_annotation=_return_annotation(decl.fn),
            source=function_source(decl.fn),
            logic_hash=logic_hash(decl.fn, package=self.package),
            location=self.loc(decl.location),
        )

    # ------------------------------------------------------------------ on-demand & sets

    def on_demand(self, od: a.OnDemandDecl, groups: list[a.FeatureGroup]) -> OnDemandSpec | None:
        hints = _type_hints(od.fn)
        request: list[RawField] = []
        stored: list[tuple[str, StoredRef]] = []
        for param in inspect.signature(od.fn).parameters.values():
            owners = [g for g in od.sources if any(d.name == param.name for d in g.features)]
            if len(owners) > 1:
                self.error(
                    od.location,
                    "FS113",
                    f"on-demand feature {od.name!r}: {param.name!r} is a feature of "
                    f"{' and '.join(repr(g.name) for g in owners)}; rename the parameter",
                )
            elif owners:
                stored.append((param.name, StoredRef(group=owners[0].name, feature=param.name)))
            elif close := _close_feature(param.name, od.sources):
                owner, feature = close
                self.error(
                    od.location,
                    "FS113",
                    f"on-demand feature {od.name!r}: parameter {param.name!r} is no feature of "
                    f"its sources ({', '.join(repr(g.name) for g in od.sources)}), so it would "
                    f"be a request field every caller must send; did you mean {feature!r} (a "
                    f"feature of {owner!r})? Rename the parameter: a request field is not named "
                    "that close to a source feature",
                )
            else:
                typed = self.raw_type(od, param.name, hints)
                if typed:
                    request.append(
                        RawField(
                            name=param.name, type=typed[0], optional=typed[1], used_by=(od.name,)
                        )
                    )
        deps = {}
        for _, ref in stored:
            group = next(g for g in groups if g.name == ref.group)
            decl = next(d for d in group.features if d.name == ref.feature)
            deps[f"{ref.group}:{ref.feature}"] = logic_hash(decl.fn, package=self.package)
        return OnDemandSpec(
            name=od.name,
            dtype=declared_dtype(od),
            description=od.description,
            pii=od.pii,
            tags=dict(sorted(od.tags.items())),
            function=self.function_ref(od.fn, od.location),
            request_fields=tuple(request),
            stored_inputs=tuple(stored),
            return_annotation=_return_annotation(od.fn),
            source=function_source(od.fn),
            logic_hash=logic_hash(od.fn, package=self.package, dependency_hashes=deps),
            location=self.loc(od.location),
        )


def _close_feature(name: str, sources: Sequence[a.FeatureGroup]) -> tuple[str, str] | None:
    """(group, feature) of a source feature a parameter's name is one slip away from (a typo),
    or None: names of 5 characters or more, difflib's ratio at least 0.9."""
    if len(name) < 5:
        return None
    owner = {d.name: g.name for g in sources for d in g.features}
    close = difflib.get_close_matches(name, sorted(owner), n=1, cutoff=0.9)
    return (owner[close[0]], close[0]) if close else None
