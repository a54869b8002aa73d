"""The ``feature_sets/<set>/inference.py`` artifact: a SageMaker endpoint handler per feature
set, registered with codegen in :data:`fsgen.codegen.artifacts.BUILDERS`."""

from __future__ import annotations

import json
from collections.abc import Iterator

from fsgen.codegen.artifacts import Artifact, BuildContext
from fsgen.codegen.views import feature_set_header, snake
from fsgen.spec import FeatureSetSpec, ProjectSpec
from fsgen.types import Scalar

_SAMPLE = {"int": 1, "float": 1.0, "bool": True, "str": "..."}


def example_request(spec: ProjectSpec, fs: FeatureSetSpec) -> dict[str, object]:
    """A request showing every key column and request field, with placeholder values."""
    example: dict[str, object] = {}
    for group, columns in fs.keys.items():
        for column, key in zip(columns, spec.group(group).entity.keys, strict=True):
            example.setdefault(column, "..." if key.dtype.scalar is Scalar.STRING else 1)
    for item in fs.items:
        if item.kind == "on_demand":
            for field in spec.on_demand_feature(item.name).request_fields:
                example.setdefault(field.name, _SAMPLE.get(field.type, "..."))
    return example


def inference_artifacts(ctx: BuildContext) -> Iterator[Artifact]:
    """``feature_sets/<set>/inference.py`` for every feature set (codegen builder)."""
    for fs in ctx.spec.feature_sets:
        example = json.dumps(example_request(ctx.spec, fs))
        body = ctx.render(
            "inference.py.jinja",
            name=fs.name,
            snake=snake(fs.name),
            missing=fs.missing,
            example=example,
        )
        yield ctx.artifact(
            f"feature_sets/{snake(fs.name)}/inference.py",
            kind="inference",
            body=body,
            header=feature_set_header(ctx.spec, fs),
        )
