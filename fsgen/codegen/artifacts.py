"""Artifact builders and the registration point for new artifact kinds.

A builder is a function ``(BuildContext) -> Iterable[Artifact]``. :data:`BUILDERS` lists them
as ``"module:function"`` references, imported when generation runs, so another area adds an
artifact kind with one line here and its own module, without touching the emit logic:

```python
# fsgen/pit/athena.py
def pit_query_artifacts(ctx: BuildContext) -> Iterator[Artifact]:
    for fs in ctx.spec.feature_sets:
        yield ctx.artifact(f"feature_sets/{snake(fs.name)}/pit_query.athena.sql",
                           kind="pit_query", body=render_pit_sql(ctx.spec, fs.name),
                           header=feature_set_header(ctx.spec, fs))
```

Paths are POSIX and relative to the generated directory; two builders may not claim one path.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from fsgen.codegen import views
from fsgen.codegen.env import OVERRIDES_DIR, render, take_overrides, to_json
from fsgen.codegen.views import Header, snake
from fsgen.config import ProjectConfig
from fsgen.hashing import sha256_of
from fsgen.sagemaker import create_feature_group_request
from fsgen.spec import ProjectSpec

#: Every artifact builder, in order. Add "your.module:builder" to register a new kind.
BUILDERS: tuple[str, ...] = (
    "fsgen.codegen.artifacts:package_artifacts",
    "fsgen.codegen.artifacts:group_artifacts",
    "fsgen.codegen.artifacts:feature_set_artifacts",
    "fsgen.pit.athena:pit_query_artifacts",
    "fsgen.codegen.maintenance:maintenance_artifacts",
    "fsgen.pit.aggregate_dataset:aggregation_artifacts",
    "fsgen.serving.codegen:inference_artifacts",
    "fsgen.codegen.artifacts:catalog_artifacts",
    "fsgen.iam:iam_artifacts",
    "fsgen.glue:glue_artifacts",
)

_COMMENT = {".py": "# ", ".sql": "-- "}


@dataclass(frozen=True)
class Artifact:
    """One generated file: where it goes, its full text, and what it was generated from."""

    path: str
    kind: str
    content: str
    sources: tuple[str, ...]
    spec_hash: str
    templates: tuple[tuple[str, str], ...] = ()
    """Project templates (``templates/<name>``, sha256) that overrode packaged ones."""


@dataclass(frozen=True)
class BuildContext:
    spec: ProjectSpec
    config: ProjectConfig

    @property
    def package(self) -> str:
        """The import name of the generated package (its directory's name)."""
        return self.config.generated_dir.rstrip("/").rsplit("/", 1)[-1]

    def artifact(self, path: str, *, kind: str, body: str, header: Header) -> Artifact:
        """An artifact whose body gets the header its syntax allows.

        Python and SQL start with a comment block, Markdown with an HTML comment; JSON cannot
        hold comments, so its header lives in MANIFEST.json (and in the document itself where
        the format has a place for it, e.g. CloudFormation ``Metadata``).

        Project templates that rendered the body (see :mod:`fsgen.codegen.env`) are sources
        too: they are named in the header and their hashes folded into its spec hash.
        """
        overrides = take_overrides()
        if overrides:
            header = Header(
                sources=(
                    *header.sources,
                    *(f"{OVERRIDES_DIR}/{name} (template override)" for name in overrides),
                ),
                spec_hash=sha256_of({"spec": header.spec_hash, "templates": overrides}),
            )
        suffix = path[path.rfind(".") :]
        if suffix in _COMMENT:
            mark = _COMMENT[suffix]
            text = "".join(f"{mark}{line}\n" for line in header.lines()) + body
        elif suffix == ".md":
            text = "<!--\n" + "".join(f"{line}\n" for line in header.lines()) + "-->\n" + body
        else:
            text = body
        if not text.endswith("\n"):
            text += "\n"
        return Artifact(
            path=path,
            kind=kind,
            content=text,
            sources=header.sources,
            spec_hash=header.spec_hash,
            templates=tuple(overrides.items()),
        )

    def render(self, template_name: str, **context: object) -> str:
        return render(template_name, package=self.package, **context)


Builder = Callable[[BuildContext], Iterable[Artifact]]


def load_builders(names: Iterable[str] = BUILDERS) -> list[Builder]:
    builders = []
    for name in names:
        module, _, attr = name.partition(":")
        builders.append(getattr(importlib.import_module(module), attr))
    return builders


# --------------------------------------------------------------------------- core builders


def package_artifacts(ctx: BuildContext) -> Iterator[Artifact]:
    """``__init__.py`` files, so ``python -m <generated>.groups.<g>.batch_job`` works.

    Their hash covers only what they say (their docstring), so editing a feature never
    touches them in a pull request.
    """
    inits = {
        "__init__.py": f"Artifacts generated from the {ctx.config.definitions} definitions.",
        "groups/__init__.py": "One package per feature group.",
        "feature_sets/__init__.py": "One package per feature set.",
    }
    for g in ctx.spec.groups:
        inits[f"groups/{snake(g.name)}/__init__.py"] = f"Artifacts of feature group {g.name!r}."
    for fs in ctx.spec.feature_sets:
        inits[f"feature_sets/{snake(fs.name)}/__init__.py"] = (
            f"Artifacts of feature set {fs.name!r}."
        )
    for path, doc in inits.items():
        body = ctx.render("package_init.py.jinja", doc=doc)
        header = Header(sources=(f"{ctx.config.definitions} (package)",), spec_hash=sha256_of(doc))
        yield ctx.artifact(path, kind="package", body=body, header=header)


def group_artifacts(ctx: BuildContext) -> Iterator[Artifact]:
    for group in ctx.spec.groups:
        base = f"groups/{snake(group.name)}"
        header = views.group_header(group)
        request = create_feature_group_request(group, ctx.config)
        yield ctx.artifact(
            f"{base}/feature_group.json",
            kind="feature_group",
            header=header,
            body=ctx.render("feature_group.json.jinja", request=request),
        )
        cfn = views.cloudformation_template(group, ctx.config, header)
        yield ctx.artifact(
            f"{base}/cloudformation.json",
            kind="cloudformation",
            header=header,
            body=ctx.render("cloudformation.json.jinja", cfn=cfn),
        )
        view = views.group_view(group)
        yield ctx.artifact(
            f"{base}/runtime.py",
            kind="group_runtime",
            header=header,
            body=ctx.render("runtime.py.jinja", g=view),
        )
        yield ctx.artifact(
            f"{base}/batch_job.py",
            kind="batch_job",
            header=header,
            body=ctx.render("batch_job.py.jinja", g=view),
        )
        yield ctx.artifact(
            f"{base}/stream_handler.py",
            kind="stream_handler",
            header=header,
            body=ctx.render("stream_handler.py.jinja", g=view),
        )
        if group.aggregations:
            # its offline rows are events and its latest state lives online only: a "latest
            # record" query would return each entity's last event time and nothing else
            continue
        yield ctx.artifact(
            f"{base}/snapshot.athena.sql",
            kind="snapshot_sql",
            header=header,
            body=ctx.render("snapshot.athena.sql.jinja", s=views.snapshot_view(group, ctx.config)),
        )


def feature_set_artifacts(ctx: BuildContext) -> Iterator[Artifact]:
    for fs in ctx.spec.feature_sets:
        view = views.feature_set_view(ctx.spec, fs)
        yield ctx.artifact(
            f"feature_sets/{view.package}/parser.py",
            kind="parser",
            header=view.header,
            body=ctx.render("parser.py.jinja", fs=view),
        )


def catalog_artifacts(ctx: BuildContext) -> Iterator[Artifact]:
    from fsgen.codegen.catalog import catalog_data

    header = Header(
        sources=tuple(
            sorted(
                {g.location.path for g in ctx.spec.groups}
                | {f.location.path for f in ctx.spec.feature_sets}
            )
        ),
        spec_hash=views.project_hash(ctx.spec),
    )
    data = catalog_data(ctx.spec)
    document = {
        "_generated": {
            "by": "fsgen",
            "note": "DO NOT EDIT",
            "sources": list(header.sources),
            "spec-hash": header.spec_hash,
            "regenerate": "fsgen generate",
        },
        **data,
    }
    yield ctx.artifact("catalog.json", kind="catalog", header=header, body=to_json(document) + "\n")
    yield ctx.artifact(
        "catalog.md", kind="catalog", header=header, body=ctx.render("catalog.md.jinja", c=data)
    )
