"""Feature sets: their items resolved across groups (a feature, an aggregation window, an
aggregation or a whole group), output columns, defaults checked against their dtypes, and keys."""

from __future__ import annotations

from collections.abc import Iterator

from fsgen import authoring as a
from fsgen.hashing import sha256_of
from fsgen.spec import FeatureSetItem, FeatureSetSpec, GroupSpec
from fsgen.specbuild.base import BuilderBase, Declarations, declared_dtype


class FeatureSetBuilder(BuilderBase):
    """Feature set declarations -> FeatureSetSpec (items, columns, defaults, keys)."""

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
            dtype = next(declared_dtype(o) for o in decls.on_demand if o.name == item.name)
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
            hint = None if matches else unknown_feature_hint(ref, decls, by_group)
            self.error(fs.location, "FS109", f"feature set {fs.name!r}: {ref!r} {why}", hint)
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
                import difflib

                close = difflib.get_close_matches(name, sorted(by_group), n=1)
                self.error(
                    fs.location,
                    "FS109",
                    f"feature set {fs.name!r}: keys name unknown group {name!r}",
                    f"did you mean {close[0]!r}?" if close else None,
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


def unknown_feature_hint(
    ref: str, decls: Declarations, by_group: dict[str, GroupSpec]
) -> str | None:
    """For a feature set entry that names nothing: how to list a whole group when it names
    one, else the closest feature names."""
    import difflib

    group = by_group.get(ref)
    if group is not None:
        return (
            f"{ref!r} is a feature group: list the FeatureGroup object itself for all its "
            f"features, or '{ref}:<feature>' for one"
        )
    names = sorted(
        {f for g in by_group.values() for f in g.output_names()}
        | {f"{g.name}:{f}" for g in by_group.values() for f in g.output_names()}
        | {o.name for o in decls.on_demand}
    )
    close = difflib.get_close_matches(ref, names, n=1)
    return f"did you mean {close[0]!r}?" if close else None
