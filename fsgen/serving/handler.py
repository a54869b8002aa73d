"""Loading a feature set's generated endpoint handler (``<generated>/feature_sets/<set>/
inference.py``) the way SageMaker's inference toolkit does: import the module, then
``model_fn(model_dir)`` once and ``input_fn`` / ``predict_fn`` / ``output_fn`` per request.

Serving refuses a stale handler or parser: a parser generated from older definitions could
fill, order or expire values differently from the training set, which is the skew fsgen
exists to rule out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from fsgen.codegen.views import snake
from fsgen.config import ProjectConfig
from fsgen.errors import FsgenError
from fsgen.generated_imports import import_generated
from fsgen.runtime.endpoint import Endpoint, RecordSource, Request
from fsgen.spec import ProjectSpec


class ServingError(FsgenError):
    """The handler cannot be loaded or served."""


@dataclass(frozen=True)
class Handler:
    """The generated module's four entry points plus the loaded model state."""

    module: ModuleType
    endpoint: Endpoint

    def invoke(
        self,
        body: bytes | str,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> str:
        """What SageMaker does for one ``POST /invocations``."""
        data: Sequence[Request] = self.module.input_fn(body, content_type)
        prediction = self.module.predict_fn(data, self.endpoint)
        text: str = self.module.output_fn(prediction, accept)
        return text


def module_name(config: ProjectConfig, feature_set: str) -> str:
    package = config.generated_dir.rstrip("/").replace("/", ".")
    return f"{package}.feature_sets.{snake(feature_set)}.inference"


def check_fresh(config: ProjectConfig, spec: ProjectSpec, feature_set: str) -> None:
    """Refuse to serve when the set's generated parser or handler is missing or stale."""
    from fsgen.codegen import diff

    base = f"feature_sets/{snake(feature_set)}/"
    result = diff(config, spec)
    stale = [
        p
        for p in (*result.created, *result.updated)
        if p in (base + "parser.py", base + "inference.py")
    ]
    if stale:
        listed = ", ".join(f"{config.generated_dir}/{p}" for p in stale)
        raise ServingError(
            f"{listed} missing or out of date with the definitions; run "
            "'fsgen generate' (a stale parser could serve values that differ "
            "from the training set's)"
        )


def import_handler(config: ProjectConfig, feature_set: str) -> ModuleType:
    """The generated handler module of ``feature_set`` from this project's generated dir."""
    try:
        return import_generated(config, f"feature_sets.{snake(feature_set)}.inference")
    except ImportError as exc:
        raise ServingError(
            f"cannot import the handler {module_name(config, feature_set)}: "
            f"{exc}; run 'fsgen generate'"
        ) from None


def load_handler(
    config: ProjectConfig,
    spec: ProjectSpec,
    feature_set: str,
    model: str | Path | None,
    source: RecordSource,
    clock: Callable[[], float] | None = None,
    *,
    check: bool = True,
) -> Handler:
    """The generated handler of ``feature_set`` with ``model`` (a model.json file or a
    directory holding one; None: vectors only) reading records from ``source``."""
    spec.feature_set(feature_set)  # an unknown name raises with the known ones
    if check:
        check_fresh(config, spec, feature_set)
    module = import_handler(config, feature_set)
    from fsgen.runtime.endpoint import ModelError

    try:
        endpoint = module.make_endpoint(None if model is None else str(model), source, clock)
    except ModelError as exc:
        raise ServingError(str(exc)) from None
    return Handler(module=module, endpoint=endpoint)


__all__ = [
    "Handler",
    "ServingError",
    "check_fresh",
    "import_generated",
    "import_handler",
    "load_handler",
    "module_name",
]
