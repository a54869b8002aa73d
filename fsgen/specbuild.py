"""Turn the authoring objects a definitions package declares into a frozen ProjectSpec.

:class:`SpecBuilder` is the second half of :func:`fsgen.loader.check`: the loader imports the
package and collects its :class:`Declarations`; the builder normalizes them into spec objects
(source locations relative to the project root, raw-field types, dependency order, the three
hashes), collecting structural problems (unknown inputs, cycles, duplicates) as diagnostics
instead of raising. Rule checks live in :mod:`fsgen.validate`.
"""

from __future__ import annotations

import inspect
import os
import sys
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fsgen import authoring as a
from fsgen.config import ProjectConfig
from fsgen.errors import Diagnostic
from fsgen.hashing import function_source, logic_hash, sha256_of
from fsgen.spec import (
    AggregationSpec,
    EntitySpec,
    EventTimeSpec,
    FeatureSetItem,
    FeatureSetSpec,
    FeatureSpec,
    FunctionRef,
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
    SourceLocation,
    SourceSpec,
    StoredRef,
    ThroughputSpec,
)
from fsgen.types import DType, Scalar

_RAW_TYPES: dict[object, RawType] = {
    int: "int",
    float: "float",
    str: "str",
    bool: "bool",
    list[int]: "list[int]",
    list[float]: "list[float]",
    list[str]: "list[str]",
    typing.List[int]: "list[int]",  # noqa: UP006
    typing.List[float]: "list[float]",  # noqa: UP006
    typing.List[str]: "list[str]",  # noqa: UP006
}
_SCALAR_RAW: dict[Scalar, RawType] = {
    Scalar.INTEGRAL: "int",
    Scalar.FRACTIONAL: "float",
    Scalar.STRING: "str",
}


@dataclass
class Declarations:
    """Authoring objects found in the definitions package, in load order."""

    modules: list[types.ModuleType] = field(default_factory=list)
    entities: list[a.Entity] = field(default_factory=list)
    groups: list[a.FeatureGroup] = field(default_factory=list)
    feature_sets: list[a.FeatureSet] = field(default_factory=list)
    on_demand: list[a.OnDemandDecl] = field(default_factory=list)


def relative_path(path: str, root: Path) -> str:
    try:
        rel = os.path.relpath(path, root)
    except ValueError:
        return path
    return rel.replace(os.sep, "/") if not rel.startswith("..") else path


# --------------------------------------------------------------------------- spec building


class SpecBuilder:
    """Declarations -> ProjectSpec, with every structural problem as a diagnostic."""

    def __init__(self, config: ProjectConfig, diags: list[Diagnostic]) -> None:
        self.config = config
        self.diags = diags
        self.package = config.definitions

    def loc(self, location: a.Location) -> SourceLocation:
        return SourceLocation(
            path=relative_path(location.path, self.config.root), line=location.line
        )

    def error(
        self,
        location: a.Location | SourceLocation,
        code: str,
        message: str,
        hint: str | None = None,
    ) -> None:
        sl = location if isinstance(location, SourceLocation) else self.loc(location)
        self.diags.append(
            Diagnostic(path=sl.path, line=sl.line, code=code, message=message, hint=hint)
        )

    def build(self, decls: Declarations) -> ProjectSpec | None:
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

    def duplicates(self, what: str, named: list[tuple[str, a.Location]]) -> None:
        first: dict[str, a.Location] = {}
        for name, location in named:
            if name in first:
                other = self.loc(first[name])
                self.error(
                    location,
                    "FS101",
                    f"duplicate {what} name {name!r}",
                    hint=f"first defined at {other}",
                )
                self.error(
                    first[name],
                    "FS101",
                    f"duplicate {what} name {name!r}",
                    hint=f"defined again at {self.loc(location)}",
                )
            else:
                first[name] = location

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
                    dtype=decl.dtype,
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
        self.duplicates(
            f"aggregation in group {g.name!r}",
            [(d.name, d.location) for d in decls] + [(d.name, d.location) for d in g.features],
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

    def duration(self, value: str | int | None, location: a.Location, what: str) -> int | None:
        try:
            return a.parse_duration(value)
        except ValueError as exc:
            self.error(location, "FS205", f"{what}: {exc}")
            return None

    def raw_fields(
        self,
        entity: EntitySpec,
        g: a.FeatureGroup,
        raw: dict[str, tuple[RawType, bool, list[str], a.Location]],
    ) -> tuple[RawField, ...]:
        fields = [
            RawField(
                name=k.name,
                type=_SCALAR_RAW[k.dtype.scalar],
                used_by=tuple(raw.pop(k.name, (None, None, [], None))[2]),
            )
            for k in entity.keys
        ]
        et = g.event_time_type.scalar if isinstance(g.event_time_type, DType) else Scalar.STRING
        fields.append(
            RawField(
                name=g.event_time,
                type=_SCALAR_RAW[et],
                used_by=tuple(raw.pop(g.event_time, (None, None, [], None))[2]),
            )
        )
        for name in sorted(raw):
            rtype, optional, used_by, _ = raw[name]
            fields.append(
                RawField(name=name, type=rtype, optional=optional, used_by=tuple(used_by))
            )
        return tuple(fields)

    def feature_inputs(
        self,
        decl: a.FeatureDecl,
        names: set[str],
        key_names: set[str],
        event_time: str,
        raw: dict[str, tuple[RawType, bool, list[str], a.Location]],
    ) -> tuple[InputRef, ...]:
        refs: list[InputRef] = []
        hints = _type_hints(decl.fn)
        for param in inspect.signature(decl.fn).parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                self.error(
                    decl.location,
                    "FS104",
                    f"feature {decl.name!r}: *{param.name} is not allowed; "
                    "each parameter names one input",
                )
                continue
            if param.name in key_names:
                refs.append(InputRef(name=param.name, kind="key"))
                raw.setdefault(param.name, ("str", False, [], decl.location))[2].append(decl.name)
            elif param.name == event_time:
                refs.append(InputRef(name=param.name, kind="event_time"))
                raw.setdefault(param.name, ("str", False, [], decl.location))[2].append(decl.name)
            elif param.name in names and param.name != decl.name:
                refs.append(InputRef(name=param.name, kind="feature"))
            else:
                rtype = self.raw_type(decl, param.name, hints)
                if rtype is None:
                    continue
                refs.append(InputRef(name=param.name, kind="raw"))
                self.merge_raw(decl, param.name, rtype, raw)
        return tuple(refs)

    def raw_type(
        self, decl: a.FeatureDecl | a.OnDemandDecl, param: str, hints: dict[str, object] | None
    ) -> tuple[RawType, bool] | None:
        what = "request field" if isinstance(decl, a.OnDemandDecl) else "raw field"
        if hints is None:
            self.error(
                decl.location,
                "FS105",
                f"feature {decl.name!r}: its annotations cannot be evaluated",
            )
            return None
        if param not in hints:
            self.error(
                decl.location,
                "FS104",
                f"feature {decl.name!r} depends on {param!r}, which is not defined",
                hint=f"add a parameter annotation for {what} {param!r} or define a "
                f"feature named {param!r}",
            )
            return None
        annotation, optional = _unwrap_optional(hints[param])
        rtype = _RAW_TYPES.get(annotation)
        if rtype is None:
            self.error(
                decl.location,
                "FS105",
                f"feature {decl.name!r}: {what} {param!r} has unsupported type "
                f"{_annotation_text(hints[param])}",
                hint="use int, float, str, bool, list[int], list[float] or list[str], "
                "optionally '| None'",
            )
            return None
        return rtype, optional

    def merge_raw(
        self,
        decl: a.FeatureDecl,
        name: str,
        typed: tuple[RawType, bool],
        raw: dict[str, tuple[RawType, bool, list[str], a.Location]],
    ) -> None:
        rtype, optional = typed
        if name in raw:
            old_type, old_optional, used_by, where = raw[name]
            if old_type != rtype:
                self.error(
                    decl.location,
                    "FS105",
                    f"raw field {name!r} is {rtype} here but {old_type} in feature {used_by[0]!r}",
                    hint=f"see {self.loc(where)}",
                )
            raw[name] = (old_type, old_optional and optional, [*used_by, decl.name], where)
        else:
            raw[name] = (rtype, optional, [decl.name], decl.location)

    def compute_order(
        self, g: a.FeatureGroup, inputs: dict[str, tuple[InputRef, ...]]
    ) -> list[str]:
        """Features in dependency order (stable by declaration); cycles are FS106 errors."""
        order: list[str] = []
        state: dict[str, int] = {}
        by_name = {d.name: d for d in g.features}

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = [*path[path.index(name) :], name]
                self.error(
                    by_name[name].location,
                    "FS106",
                    f"dependency cycle in group {g.name!r}: {' -> '.join(cycle)}",
                )
                return
            state[name] = 1
            for ref in inputs.get(name, ()):
                if ref.kind == "feature":
                    visit(ref.name, [*path, name])
            state[name] = 2
            order.append(name)

        for decl in g.features:
            visit(decl.name, [])
        return list(dict.fromkeys(order))

    def function_ref(self, fn: Callable[..., object], location: a.Location) -> FunctionRef:
        module = getattr(fn, "__module__", "") or ""
        name = getattr(fn, "__name__", "")
        owner = sys.modules.get(module)
        if owner is None or getattr(owner, name, None) is not fn:
            self.error(
                location,
                "FS104",
                f"function {name!r} must be defined at module level of {module!r} "
                "so generated code can import it",
            )
        return FunctionRef(module=module, name=name)

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
            dtype=od.dtype,
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

    def feature_set(
        self, fs: a.FeatureSet, decls: Declarations, groups: list[GroupSpec]
    ) -> FeatureSetSpec:
        by_group = {g.name: g for g in groups}
        items: list[FeatureSetItem] = []
        for ref in fs.features:
            items.extend(self.resolve_items(fs, ref, decls, by_group))
        counts: dict[str, int] = {}
        for item in items:
            counts[item.name] = counts.get(item.name, 0) + 1
        items = [
            i.model_copy(update={"column": f"{(i.group or '').replace('-', '_')}__{i.name}"})
            if counts[i.name] > 1 and i.group
            else i
            for i in items
        ]
        self.duplicates(
            f"column in feature set {fs.name!r}", [(i.column, fs.location) for i in items]
        )
        keys = self.set_keys(fs, items, decls, by_group)
        defaults: dict[str, str | int | float | None] = {}
        for ref, value in fs.defaults.items():
            resolved = self.resolve_items(fs, ref, decls, by_group)
            for item in resolved:
                column = next((i.column for i in items if i.qualified == item.qualified), None)
                if column is None:
                    self.error(
                        fs.location,
                        "FS109",
                        f"feature set {fs.name!r}: default given "
                        f"for {item.qualified!r}, which the set does not contain",
                    )
                else:
                    defaults[column] = self.default(fs, item, value, decls, by_group)
        if fs.missing not in ("null", "default", "error"):
            self.error(
                fs.location,
                "FS109",
                f"feature set {fs.name!r}: missing policy "
                f"{fs.missing!r} is not one of null, default, error",
            )
        spec = FeatureSetSpec(
            name=fs.name,
            description=fs.description,
            owner=fs.owner,
            items=tuple(items),
            keys=keys,
            label_time=fs.label_time,
            missing=fs.missing if fs.missing in ("null", "default", "error") else "null",
            defaults=dict(sorted(defaults.items())),
            ttl_seconds=self.duration(fs.ttl, fs.location, "feature set ttl"),
            labels=fs.labels,
            tags=dict(sorted(fs.tags.items())),
            location=self.loc(fs.location),
        )
        return spec.model_copy(
            update={
                "spec_hash": sha256_of(
                    spec.model_dump(mode="json", exclude={"location", "spec_hash"})
                )
            }
        )

    def default(
        self,
        fs: a.FeatureSet,
        item: FeatureSetItem,
        value: object,
        decls: Declarations,
        by_group: dict[str, GroupSpec],
    ) -> str | int | float | None:
        """``value`` if it can fill ``item``'s column, else None after an FS109 diagnostic."""
        from fsgen.validate import default_hint, default_problem

        if item.group:
            dtype = by_group[item.group].output(item.name).dtype
        else:
            dtype = next(o.dtype for o in decls.on_demand if o.name == item.name)
        problem = default_problem(dtype, value)
        if problem is None:
            return value  # type: ignore[return-value]
        self.error(
            fs.location,
            "FS109",
            f"feature set {fs.name!r}: default for {item.qualified!r} ({dtype}): {problem}",
            hint=default_hint(dtype),
        )
        return None

    def resolve_items(
        self, fs: a.FeatureSet, ref: object, decls: Declarations, by_group: dict[str, GroupSpec]
    ) -> Iterator[FeatureSetItem]:
        if isinstance(ref, a.FeatureGroup):
            for d in ref.features:
                yield FeatureSetItem(kind="stored", name=d.name, group=ref.name, column=d.name)
            resolved = by_group.get(ref.name)
            for name in resolved.output_names()[len(resolved.features) :] if resolved else ():
                yield FeatureSetItem(kind="stored", name=name, group=ref.name, column=name)
            return
        feature = getattr(ref, a.FEATURE_ATTR, None)
        if isinstance(feature, a.FeatureDecl):
            yield FeatureSetItem(
                kind="stored", name=feature.name, group=feature.group.name, column=feature.name
            )
            return
        aggregation = getattr(ref, a.AGGREGATION_ATTR, None)
        if isinstance(aggregation, a.AggregationDecl):  # every window of the aggregation
            group = by_group.get(aggregation.group.name)
            found = [x for x in group.aggregations if x.name == aggregation.name] if group else []
            for name in found[0].feature_names if found else ():
                yield FeatureSetItem(
                    kind="stored", name=name, group=aggregation.group.name, column=name
                )
            return
        od = getattr(ref, a.ON_DEMAND_ATTR, None)
        if isinstance(od, a.OnDemandDecl):
            yield FeatureSetItem(kind="on_demand", name=od.name, column=od.name)
            return
        if isinstance(ref, str):
            group_name, _, fname = ref.rpartition(":")
            matches = [
                FeatureSetItem(kind="stored", name=f, group=g.name, column=f)
                for g in by_group.values()
                if not group_name or g.name == group_name
                for f in g.output_names()
                if f == fname
            ]
            if not group_name:
                matches += [
                    FeatureSetItem(kind="on_demand", name=o.name, column=o.name)
                    for o in decls.on_demand
                    if o.name == fname
                ]
            if len(matches) == 1:
                yield matches[0]
                return
            why = "is ambiguous; write 'group:feature'" if matches else "is not a known feature"
            self.error(fs.location, "FS109", f"feature set {fs.name!r}: {ref!r} {why}")
            return
        self.error(
            fs.location,
            "FS109",
            f"feature set {fs.name!r}: {ref!r} is not a feature, on-demand feature, "
            "group or 'group:feature' string",
        )

    def set_keys(
        self,
        fs: a.FeatureSet,
        items: list[FeatureSetItem],
        decls: Declarations,
        by_group: dict[str, GroupSpec],
    ) -> dict[str, tuple[str, ...]]:
        wanted: dict[str, None] = {i.group: None for i in items if i.group}
        for item in items:
            if item.kind == "on_demand":
                od = next((o for o in decls.on_demand if o.name == item.name), None)
                for g in od.sources if od else ():
                    wanted.setdefault(g.name, None)
        given: dict[str, tuple[str, ...]] = {}
        for group, cols in fs.keys.items():
            name = group.name if isinstance(group, a.FeatureGroup) else str(group)
            given[name] = (cols,) if isinstance(cols, str) else tuple(cols)
            if name not in by_group:
                self.error(
                    fs.location,
                    "FS109",
                    f"feature set {fs.name!r}: keys name unknown group {name!r}",
                )
        keys: dict[str, tuple[str, ...]] = {}
        for name in wanted:
            group_spec = by_group.get(name)
            if group_spec is None:
                continue
            default = tuple(k.name for k in group_spec.entity.keys)
            cols = given.get(name, default)
            if len(cols) != len(default):
                self.error(
                    fs.location,
                    "FS109",
                    f"feature set {fs.name!r}: group {name!r} is keyed by "
                    f"{len(default)} column(s) {list(default)}, got {list(cols)}",
                )
            keys[name] = cols
        return keys


def with_group_hashes(g: GroupSpec) -> GroupSpec:
    """Fill the group's schema, logic and metadata hashes (locations excluded)."""
    schema = {
        "entity": g.entity.model_dump(mode="json", exclude={"location", "description"}),
        "event_time": g.event_time.model_dump(mode="json"),
        "columns": [[n, str(t)] for n, t in g.stored_columns()],
        "online": g.online.model_dump(mode="json"),
        "offline": g.offline.model_dump(mode="json"),
        "throughput": g.throughput.model_dump(mode="json"),
    }
    logic = {f.name: f.logic_hash for f in g.features}
    metadata = {
        "owner": g.owner,
        "description": g.description,
        "tags": g.tags,
        "max_staleness": g.max_staleness_seconds,
        "allow_sensitive": g.allow_sensitive_online,
        "entity_description": g.entity.description,
        "features": {
            f.name: {"description": f.description, "pii": f.pii, "tags": f.tags} for f in g.features
        },
    }
    return g.model_copy(
        update={
            "schema_hash": sha256_of(schema),
            "logic_hash": sha256_of(logic),
            "metadata_hash": sha256_of(metadata),
        }
    )


def with_aggregation_hashes(g: GroupSpec) -> GroupSpec:
    """Fold a group's aggregations into its three hashes (groups without any keep theirs)."""
    schema = [
        {
            "name": x.name,
            "function": x.function,
            "dtype": str(x.dtype),
            "value_dtype": str(x.value_dtype),
            "windows": [w.model_dump(mode="json") for w in x.windows],
            "hop": x.hop_seconds,
            "n": x.n,
            "distinct": x.distinct,
        }
        for x in g.aggregations
    ]
    logic = {x.name: [x.logic_hash, x.lateness_seconds] for x in g.aggregations}
    metadata = {
        x.name: {"description": x.description, "pii": x.pii, "tags": x.tags} for x in g.aggregations
    }
    return g.model_copy(
        update={
            "schema_hash": sha256_of({"group": g.schema_hash, "aggregations": schema}),
            "logic_hash": sha256_of({"group": g.logic_hash, "aggregations": logic}),
            "metadata_hash": sha256_of({"group": g.metadata_hash, "aggregations": metadata}),
        }
    )


def _module_of(path: str, root: Path) -> str:
    rel = relative_path(path, root)
    return rel[:-3].replace("/", ".").removesuffix(".__init__") if rel.endswith(".py") else rel


def _type_hints(fn: Callable[..., object]) -> dict[str, object] | None:
    try:
        return typing.get_type_hints(fn)
    except Exception:
        return None


def _unwrap_optional(annotation: object) -> tuple[object, bool]:
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if (origin is typing.Union or origin is types.UnionType) and type(None) in args:
        rest = [x for x in args if x is not type(None)]
        if len(rest) == 1:
            return rest[0], True
    return annotation, False


def _annotation_text(annotation: object) -> str:
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _return_annotation(fn: Callable[..., object]) -> str | None:
    try:
        ann = inspect.signature(fn).return_annotation
    except (TypeError, ValueError):
        return None
    if ann is inspect.Signature.empty:
        return None
    return _annotation_text(ann)
