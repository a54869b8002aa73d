"""Inputs of features and aggregations: each parameter names a raw field (typed by its
annotation), the entity key, the event time or another feature; the group's raw fields merged
across its functions; the features' dependency order (cycles are FS105)."""

from __future__ import annotations

import inspect

from fsgen import authoring as a
from fsgen.spec import EntitySpec, InputRef, RawField, RawType
from fsgen.specbuild.base import (
    _RAW_TYPES,
    _SCALAR_RAW,
    BuilderBase,
    _annotation_text,
    _type_hints,
    _unwrap_optional,
)
from fsgen.types import DType, Scalar


class InputsBuilder(BuilderBase):
    """Parameters -> typed inputs and raw fields, and the features' compute order."""

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
